import Foundation

/// A recurrence rule set that cannot be expanded, naming the bad line or part.
public struct RecurrenceError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let description: String

    /// Creates an error.
    public init(description: String) {
        self.description = description
    }
}

/// Expands RFC 5545 recurrence (the lines Google sends in `recurrence`, and RRULEs converted from Graph patterns)
/// into occurrence start instants. Rules are evaluated in wall-clock time of the series' zone, so a 09:00 weekly
/// meeting stays at 09:00 local across DST changes.
///
/// Supported: FREQ DAILY/WEEKLY/MONTHLY/YEARLY, INTERVAL, COUNT, UNTIL (date, UTC or floating date-time), BYDAY (with
/// ordinals for MONTHLY/YEARLY), BYMONTHDAY (negative too), BYMONTH, BYSETPOS, WKST; EXDATE and RDATE (TZID, UTC,
/// VALUE=DATE, several values per line). Anything else in an RRULE is refused by name.
public enum RecurrenceExpander {
    struct Rule {
        enum Frequency: String { case daily = "DAILY", weekly = "WEEKLY", monthly = "MONTHLY", yearly = "YEARLY" }
        var frequency: Frequency
        var interval = 1
        var count: Int?
        var until: Date?
        var byDay: [(ordinal: Int?, weekday: Int)] = []
        var byMonthDay: [Int] = []
        var byMonth: [Int] = []
        var bySetPos: [Int] = []
        var weekStart = 2
    }

    static let weekdays = ["SU": 1, "MO": 2, "TU": 3, "WE": 4, "TH": 5, "FR": 6, "SA": 7]

    /// Start instants of the occurrences that begin before `to` and end after `from` (each lasts `duration`), in
    /// order, at most `limit`. For `allDay` series the dates are evaluated in UTC and returned as UTC midnights.
    public static func occurrences(
        rules: [String], start: Date, duration: TimeInterval, timeZone: String, allDay: Bool, from: Date, to: Date, limit: Int = 5000
    ) throws(RecurrenceError) -> [Date] {
        guard let zone = allDay ? TimeZone(identifier: "UTC") : TimeZone(identifier: timeZone) else {
            throw RecurrenceError(description: "unknown time zone \"\(timeZone)\"")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var rule: Rule?
        var exclusions: [(date: Date?, day: DateComponents?)] = []
        var additions: [Date] = []
        for line in rules {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard let colon = trimmed.firstIndex(of: ":") else { throw RecurrenceError(description: "\"\(line)\" is not a property line") }
            let head = trimmed[..<colon].uppercased()
            let value = String(trimmed[trimmed.index(after: colon)...])
            let name = head.split(separator: ";").first.map(String.init) ?? ""
            switch name {
            case "RRULE":
                guard rule == nil else { throw RecurrenceError(description: "more than one RRULE") }
                rule = try parseRule(value, calendar: calendar)
            case "EXDATE", "RDATE":
                let parameters = head.split(separator: ";").dropFirst()
                let tzid = parameters.first { $0.hasPrefix("TZID=") }.map { String($0.dropFirst(5)) }
                var local = calendar
                if let tzid {
                    // TZID values keep their case in the original line.
                    let original = trimmed[..<colon].split(separator: ";").first { $0.uppercased().hasPrefix("TZID=") }.map { String($0.dropFirst(5)) } ?? tzid
                    guard let named = TimeZone(identifier: original) else { throw RecurrenceError(description: "\(name) has unknown TZID \"\(original)\"") }
                    local.timeZone = named
                }
                for item in value.split(separator: ",") {
                    let text = String(item).trimmingCharacters(in: .whitespaces)
                    if text.count == 8 {
                        guard let day = dateComponents(text) else { throw RecurrenceError(description: "\(name) value \"\(text)\" is not a date") }
                        if name == "EXDATE" {
                            exclusions.append((nil, day))
                        } else if let date = calendar.date(from: merge(day, time: calendar.dateComponents([.hour, .minute, .second], from: start))) {
                            additions.append(date)
                        }
                    } else {
                        guard let date = parseDateTime(text, calendar: local) else {
                            throw RecurrenceError(description: "\(name) value \"\(text)\" is not a date-time")
                        }
                        if name == "EXDATE" { exclusions.append((date, nil)) } else { additions.append(date) }
                    }
                }
            default:
                continue
            }
        }
        var starts: [Date] = [start]
        if let rule {
            starts = try expand(rule, start: start, calendar: calendar, from: from.addingTimeInterval(-max(duration, 0)), to: to, limit: limit)
        }
        starts += additions
        let excluded = Set(exclusions.compactMap(\.date).map { $0.timeIntervalSince1970.rounded() })
        let excludedDays = exclusions.compactMap(\.day).map { [$0.year ?? 0, $0.month ?? 0, $0.day ?? 0] }
        var seen: Set<Double> = []
        var result: [Date] = []
        for occurrence in starts.sorted() {
            let key = occurrence.timeIntervalSince1970.rounded()
            guard seen.insert(key).inserted, !excluded.contains(key) else { continue }
            let parts = calendar.dateComponents([.year, .month, .day], from: occurrence)
            if excludedDays.contains([parts.year ?? 0, parts.month ?? 0, parts.day ?? 0]) { continue }
            guard occurrence < to, occurrence.addingTimeInterval(max(duration, 0)) > from || (duration <= 0 && occurrence >= from) else { continue }
            result.append(occurrence)
            if result.count >= limit { break }
        }
        return result
    }

    static func parseRule(_ text: String, calendar: Calendar) throws(RecurrenceError) -> Rule {
        var parts: [String: String] = [:]
        for piece in text.split(separator: ";") where !piece.isEmpty {
            let pair = piece.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw RecurrenceError(description: "RRULE part \"\(piece)\" is not NAME=VALUE") }
            parts[pair[0].uppercased()] = pair[1].uppercased()
        }
        guard let frequencyText = parts["FREQ"] else { throw RecurrenceError(description: "RRULE has no FREQ") }
        guard let frequency = Rule.Frequency(rawValue: frequencyText) else {
            throw RecurrenceError(description: "RRULE FREQ=\(frequencyText) is unsupported (DAILY, WEEKLY, MONTHLY, YEARLY)")
        }
        var rule = Rule(frequency: frequency)
        func integer(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws(RecurrenceError) -> Int {
            guard let value = Int(text), range.contains(value) else { throw RecurrenceError(description: "RRULE \(name)=\(text) is out of range") }
            return value
        }
        for (name, value) in parts {
            switch name {
            case "FREQ": break
            case "INTERVAL": rule.interval = try integer(value, name, 1...10_000)
            case "COUNT": rule.count = try integer(value, name, 1...100_000)
            case "UNTIL":
                if value.count == 8 {
                    guard let day = dateComponents(value), let date = calendar.date(from: merge(day, time: DateComponents(hour: 23, minute: 59, second: 59))) else {
                        throw RecurrenceError(description: "RRULE UNTIL=\(value) is not a date")
                    }
                    rule.until = date
                } else {
                    guard let date = parseDateTime(value, calendar: calendar) else { throw RecurrenceError(description: "RRULE UNTIL=\(value) is not a date-time") }
                    rule.until = date
                }
            case "BYDAY":
                for item in value.split(separator: ",") {
                    let text = String(item)
                    let day = String(text.suffix(2))
                    guard let weekday = weekdays[day] else { throw RecurrenceError(description: "RRULE BYDAY has an unknown day \"\(text)\"") }
                    let prefix = text.dropLast(2)
                    var ordinal: Int?
                    if !prefix.isEmpty {
                        guard let number = Int(prefix), number != 0, abs(number) <= 53 else {
                            throw RecurrenceError(description: "RRULE BYDAY ordinal in \"\(text)\" is out of range")
                        }
                        guard frequency == .monthly || frequency == .yearly else {
                            throw RecurrenceError(description: "RRULE BYDAY ordinals (\(text)) need FREQ=MONTHLY or YEARLY")
                        }
                        ordinal = number
                    }
                    rule.byDay.append((ordinal, weekday))
                }
            case "BYMONTHDAY":
                rule.byMonthDay = try value.split(separator: ",").map { item throws(RecurrenceError) in
                    let day = try integer(String(item), name, -31...31)
                    guard day != 0 else { throw RecurrenceError(description: "RRULE BYMONTHDAY=0 is invalid") }
                    return day
                }
            case "BYMONTH":
                rule.byMonth = try value.split(separator: ",").map { item throws(RecurrenceError) in try integer(String(item), name, 1...12) }
            case "BYSETPOS":
                rule.bySetPos = try value.split(separator: ",").map { item throws(RecurrenceError) in
                    let position = try integer(String(item), name, -366...366)
                    guard position != 0 else { throw RecurrenceError(description: "RRULE BYSETPOS=0 is invalid") }
                    return position
                }
            case "WKST":
                guard let weekday = weekdays[value] else { throw RecurrenceError(description: "RRULE WKST=\(value) is not a day") }
                rule.weekStart = weekday
            default:
                throw RecurrenceError(description: "RRULE part \(name) is unsupported")
            }
        }
        guard rule.count == nil || rule.until == nil else { throw RecurrenceError(description: "RRULE has both COUNT and UNTIL") }
        return rule
    }

    static func expand(_ rule: Rule, start: Date, calendar: Calendar, from: Date, to: Date, limit: Int) throws(RecurrenceError) -> [Date] {
        let time = calendar.dateComponents([.hour, .minute, .second], from: start)
        let first = calendar.dateComponents([.year, .month, .day, .weekday], from: start)
        // DTSTART is always the first occurrence and counts towards COUNT.
        var result: [Date] = [start]
        var generated = 1
        var inWindow = start >= from ? 1 : 0
        for period in 0..<100_000 {
            // Periods only move forward: once one begins after the window (or UNTIL), nothing later can be in it.
            if let bound = periodBound(rule, period: period, first: first, calendar: calendar), bound > min(to, rule.until ?? to) {
                return result
            }
            var days = candidates(rule, period: period, first: first, calendar: calendar)
            if !rule.bySetPos.isEmpty {
                let sorted = days.sorted { ($0.year ?? 0, $0.month ?? 0, $0.day ?? 0) < ($1.year ?? 0, $1.month ?? 0, $1.day ?? 0) }
                days = rule.bySetPos.compactMap { position in
                    let index = position > 0 ? position - 1 : sorted.count + position
                    return sorted.indices.contains(index) ? sorted[index] : nil
                }
            }
            for date in days.compactMap({ calendar.date(from: merge($0, time: time)) }).sorted() where date > start {
                if let until = rule.until, date > until { return result }
                if let count = rule.count, generated >= count { return result }
                if date >= to || inWindow > limit || generated >= 1_000_000 { return result }
                generated += 1
                // Occurrences before the window only count towards COUNT; they are not kept.
                if date >= from {
                    inWindow += 1
                    result.append(date)
                }
            }
        }
        return result
    }

    /// The first day of period `index`, to know when iteration has passed the window.
    static func periodBound(_ rule: Rule, period: Int, first: DateComponents, calendar: Calendar) -> Date? {
        guard let base = calendar.date(from: DateComponents(year: first.year, month: first.month, day: first.day)) else { return nil }
        switch rule.frequency {
        case .daily: return calendar.date(byAdding: .day, value: period * rule.interval, to: base)
        case .weekly: return calendar.date(byAdding: .day, value: period * rule.interval * 7 - 7, to: base)
        case .monthly:
            let monthStart = calendar.date(from: DateComponents(year: first.year, month: first.month, day: 1)) ?? base
            return calendar.date(byAdding: .month, value: period * rule.interval, to: monthStart)
        case .yearly:
            return calendar.date(from: DateComponents(year: (first.year ?? 1970) + period * rule.interval, month: 1, day: 1))
        }
    }

    /// The candidate days (year, month, day) of period `index`.
    static func candidates(_ rule: Rule, period: Int, first: DateComponents, calendar: Calendar) -> [DateComponents] {
        guard let base = calendar.date(from: DateComponents(year: first.year, month: first.month, day: first.day)) else { return [] }
        func day(_ date: Date) -> DateComponents { calendar.dateComponents([.year, .month, .day, .weekday], from: date) }
        func monthOK(_ parts: DateComponents) -> Bool { rule.byMonth.isEmpty || rule.byMonth.contains(parts.month ?? 0) }
        func monthDayOK(_ parts: DateComponents, daysInMonth: Int) -> Bool {
            rule.byMonthDay.isEmpty || rule.byMonthDay.contains { $0 > 0 ? $0 == parts.day : daysInMonth + $0 + 1 == parts.day }
        }
        func daysIn(year: Int, month: Int) -> Int {
            guard let date = calendar.date(from: DateComponents(year: year, month: month, day: 1)) else { return 30 }
            return calendar.range(of: .day, in: .month, for: date)?.count ?? 30
        }
        switch rule.frequency {
        case .daily:
            guard let date = calendar.date(byAdding: .day, value: period * rule.interval, to: base) else { return [] }
            let parts = day(date)
            let weekdayOK = rule.byDay.isEmpty || rule.byDay.contains { $0.weekday == parts.weekday }
            return monthOK(parts) && weekdayOK && monthDayOK(parts, daysInMonth: daysIn(year: parts.year!, month: parts.month!)) ? [parts] : []
        case .weekly:
            // The week (starting on WKST) containing DTSTART, then every INTERVAL weeks.
            let offset = ((first.weekday ?? 1) - rule.weekStart + 7) % 7
            guard let weekStart = calendar.date(byAdding: .day, value: -offset + period * rule.interval * 7, to: base) else { return [] }
            let wanted = rule.byDay.isEmpty ? [first.weekday ?? 1] : rule.byDay.map(\.weekday)
            return (0..<7).compactMap { calendar.date(byAdding: .day, value: $0, to: weekStart) }.map(day)
                .filter { wanted.contains($0.weekday ?? 0) && monthOK($0) }
        case .monthly:
            guard let monthDate = calendar.date(byAdding: .month, value: period * rule.interval, to: calendar.date(from: DateComponents(year: first.year, month: first.month, day: 1))!) else { return [] }
            let parts = calendar.dateComponents([.year, .month], from: monthDate)
            guard rule.byMonth.isEmpty || rule.byMonth.contains(parts.month ?? 0) else { return [] }
            return monthDays(rule, year: parts.year!, month: parts.month!, defaultDay: first.day ?? 1, calendar: calendar)
        case .yearly:
            let year = (first.year ?? 1970) + period * rule.interval
            let months = rule.byMonth.isEmpty ? [first.month ?? 1] : rule.byMonth
            if !rule.byDay.isEmpty && rule.byMonth.isEmpty && rule.byMonthDay.isEmpty {
                // Ordinals count within the year.
                return yearDays(rule, year: year, calendar: calendar)
            }
            return months.flatMap { monthDays(rule, year: year, month: $0, defaultDay: first.day ?? 1, calendar: calendar) }
        }
    }

    static func monthDays(_ rule: Rule, year: Int, month: Int, defaultDay: Int, calendar: Calendar) -> [DateComponents] {
        guard let firstOfMonth = calendar.date(from: DateComponents(year: year, month: month, day: 1)),
              let count = calendar.range(of: .day, in: .month, for: firstOfMonth)?.count
        else { return [] }
        let all = (1...count).map { dayNumber -> DateComponents in
            var parts = calendar.dateComponents([.year, .month, .day, .weekday], from: calendar.date(byAdding: .day, value: dayNumber - 1, to: firstOfMonth)!)
            parts.day = dayNumber
            return parts
        }
        var days = all
        if !rule.byMonthDay.isEmpty {
            let wanted = Set(rule.byMonthDay.map { $0 > 0 ? $0 : count + $0 + 1 })
            days = days.filter { wanted.contains($0.day ?? 0) }
        }
        if !rule.byDay.isEmpty {
            days = days.filter { parts in
                rule.byDay.contains { entry in
                    guard entry.weekday == parts.weekday else { return false }
                    guard let ordinal = entry.ordinal else { return true }
                    let same = all.filter { $0.weekday == entry.weekday }
                    let index = ordinal > 0 ? ordinal - 1 : same.count + ordinal
                    return same.indices.contains(index) && same[index].day == parts.day
                }
            }
        }
        if rule.byMonthDay.isEmpty && rule.byDay.isEmpty {
            days = days.filter { $0.day == defaultDay }
        }
        return days
    }

    static func yearDays(_ rule: Rule, year: Int, calendar: Calendar) -> [DateComponents] {
        guard let january = calendar.date(from: DateComponents(year: year, month: 1, day: 1)),
              let count = calendar.range(of: .day, in: .year, for: january)?.count
        else { return [] }
        let all = (0..<count).compactMap { calendar.date(byAdding: .day, value: $0, to: january) }
            .map { calendar.dateComponents([.year, .month, .day, .weekday], from: $0) }
        return all.filter { parts in
            rule.byDay.contains { entry in
                guard entry.weekday == parts.weekday else { return false }
                guard let ordinal = entry.ordinal else { return true }
                let same = all.filter { $0.weekday == entry.weekday }
                let index = ordinal > 0 ? ordinal - 1 : same.count + ordinal
                return same.indices.contains(index) && same[index].month == parts.month && same[index].day == parts.day
            }
        }
    }

    static func merge(_ day: DateComponents, time: DateComponents) -> DateComponents {
        DateComponents(year: day.year, month: day.month, day: day.day, hour: time.hour ?? 0, minute: time.minute ?? 0, second: time.second ?? 0)
    }

    /// `YYYYMMDD`.
    static func dateComponents(_ text: String) -> DateComponents? {
        guard text.count == 8, text.allSatisfy(\.isNumber), let year = Int(text.prefix(4)),
              let month = Int(text.dropFirst(4).prefix(2)), let day = Int(text.suffix(2)),
              (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        return DateComponents(year: year, month: month, day: day)
    }

    /// `YYYYMMDDTHHMMSS` (in the calendar's zone) or with a trailing `Z` (UTC).
    static func parseDateTime(_ text: String, calendar: Calendar) -> Date? {
        var body = text
        var local = calendar
        if body.hasSuffix("Z") {
            body.removeLast()
            local.timeZone = TimeZone(identifier: "UTC")!
        }
        let pieces = body.split(separator: "T").map(String.init)
        guard pieces.count == 2, pieces[1].count == 6, pieces[1].allSatisfy(\.isNumber), let day = dateComponents(pieces[0]),
              let hour = Int(pieces[1].prefix(2)), let minute = Int(pieces[1].dropFirst(2).prefix(2)), let second = Int(pieces[1].suffix(2)),
              hour < 24, minute < 60, second < 61
        else { return nil }
        return local.date(from: DateComponents(year: day.year, month: day.month, day: day.day, hour: hour, minute: minute, second: second))
    }
}

/// A series' occurrences in a window, without those its exceptions replace (moved, edited or cancelled instances
/// come as their own rows, named by their original start).
public enum SeriesExpansion {
    /// One occurrence.
    public struct Occurrence: Sendable, Hashable {
        /// When it happens.
        public var time: AppointmentTime
        /// The slot it fills (its identity within the series).
        public var originalStart: Date
    }

    /// Expands a series whose first instance is `time` under `recurrence`, skipping the slots `exceptions` name.
    public static func occurrences(
        time: AppointmentTime, recurrence: [String], exceptions: [Appointment], from: Date, to: Date, limit: Int = 2000
    ) throws(RecurrenceError) -> [Occurrence] {
        let start: Date, duration: TimeInterval, zone: String, allDay: Bool
        switch time {
        case .timed(let first, let end, let timeZone):
            (start, duration, zone, allDay) = (first, end.timeIntervalSince(first), timeZone ?? "UTC", false)
        case .allDay(let startDate, let endDate):
            guard let first = day(startDate) else { throw RecurrenceError(description: "series start date \(startDate) is not a date") }
            let last = day(endDate) ?? first.addingTimeInterval(86_400)
            (start, duration, zone, allDay) = (first, max(86_400, last.timeIntervalSince(first)), "UTC", true)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: allDay ? "UTC" : zone) ?? TimeZone(identifier: "UTC")!
        var replacedInstants: Set<Double> = []
        var replacedDays: Set<String> = []
        for exception in exceptions {
            guard let original = exception.originalStart else { continue }
            if original.count == 10 { replacedDays.insert(original) } else if let instant = instant(original) {
                replacedInstants.insert(instant.timeIntervalSince1970.rounded())
            }
        }
        let starts = try RecurrenceExpander.occurrences(
            rules: recurrence, start: start, duration: duration, timeZone: zone, allDay: allDay, from: from, to: to, limit: limit
        )
        return starts.compactMap { occurrence in
            if replacedInstants.contains(occurrence.timeIntervalSince1970.rounded()) { return nil }
            let parts = calendar.dateComponents([.year, .month, .day], from: occurrence)
            let local = String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
            if replacedDays.contains(local) { return nil }
            if allDay {
                let end = occurrence.addingTimeInterval(duration)
                let endParts = calendar.dateComponents([.year, .month, .day], from: end)
                let endDay = String(format: "%04d-%02d-%02d", endParts.year ?? 0, endParts.month ?? 0, endParts.day ?? 0)
                return Occurrence(time: .allDay(startDate: local, endDate: endDay), originalStart: occurrence)
            }
            return Occurrence(time: .timed(start: occurrence, end: occurrence.addingTimeInterval(duration), timeZone: zone), originalStart: occurrence)
        }
    }

    static func day(_ text: String) -> Date? {
        guard text.count == 10 else { return nil }
        return instant(text + "T00:00:00Z")
    }

    static func instant(_ text: String) -> Date? {
        if let date = ISO8601DateFormatter().date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }
}

/// Recognises the same meeting arriving through two connected sources (e.g. an invitation in both a Google and a
/// Microsoft calendar): same start and end instant (time zones normalised), same title (case and spacing
/// ignored), and overlapping attendees when both sides list any. calgate never copies between providers; it only
/// shows such a meeting once.
public enum DuplicateDetector {
    /// What a listed appointment is compared on.
    public struct Candidate: Sendable, Hashable {
        /// Start instant.
        public var start: Date
        /// End instant.
        public var end: Date
        /// Title.
        public var title: String
        /// Attendee addresses.
        public var attendees: Set<String>
        /// Where it came from (items of one connection are never duplicates of each other).
        public var origin: String

        /// Creates a candidate.
        public init(start: Date, end: Date, title: String, attendees: Set<String>, origin: String) {
            self.start = start
            self.end = end
            self.title = title
            self.attendees = attendees
            self.origin = origin
        }
    }

    /// For each candidate, the index of the earlier candidate it duplicates (nil when it is the first of its kind).
    public static func duplicates(of candidates: [Candidate?]) -> [Int?] {
        var result: [Int?] = Array(repeating: nil, count: candidates.count)
        var groups: [String: [Int]] = [:]
        for (index, candidate) in candidates.enumerated() {
            guard let candidate else { continue }
            let key = "\(candidate.start.timeIntervalSince1970.rounded())|\(candidate.end.timeIntervalSince1970.rounded())|\(normalise(candidate.title))"
            if let match = groups[key, default: []].first(where: { earlier in
                guard let other = candidates[earlier], other.origin != candidate.origin else { return false }
                return other.attendees.isEmpty || candidate.attendees.isEmpty || !other.attendees.isDisjoint(with: candidate.attendees)
            }) {
                result[index] = match
            } else {
                groups[key, default: []].append(index)
            }
        }
        return result
    }

    /// Lower-cased, trimmed, inner whitespace collapsed.
    public static func normalise(_ title: String) -> String {
        title.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}
