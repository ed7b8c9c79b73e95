import CalgateMacros
import Foundation

/// A recurrence rule set that cannot be expanded, naming the bad line or part.
@MemberwiseInit
public struct RecurrenceError: Error, Sendable, CustomStringConvertible {
    /// A human-readable explanation that names the offending line, rule part or value.
    public let description: String
}

/// Expands RFC 5545 recurrence (the lines Google Calendar sends in `recurrence`, and RRULEs converted from Microsoft Graph) into occurrences.
///
/// Supported: `FREQ` = `DAILY`, `WEEKLY`, `MONTHLY`, `YEARLY`; `INTERVAL`, `COUNT`, `UNTIL`, `BYDAY` (with ordinals for
/// `MONTHLY`/`YEARLY`), `BYMONTHDAY`, `BYMONTH`, `BYSETPOS`, `BYHOUR`, `BYMINUTE`, `BYSECOND` and `WKST`, plus `EXDATE`
/// and `RDATE` lines. `BYYEARDAY`, `BYWEEKNO`, sub-daily frequencies and `EXRULE` are rejected as unsupported.
/// The expander keeps no shared mutable state and is safe to call from any thread.
public enum RecurrenceExpander {

    /// Start instants of the occurrences of a series that begin before `to` and end after `from` (an occurrence
    /// lasts `duration` seconds), in order, at most `limit` of them.
    ///
    /// - Parameters:
    ///   - rules: Lines such as "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20261231T235959Z", "EXDATE;TZID=Europe/Berlin:20261208T100000",
    ///     "EXDATE:20261215T090000Z", "EXDATE;VALUE=DATE:20261224", "RDATE;TZID=America/New_York:20261230T150000" (several
    ///     comma-separated values per EXDATE/RDATE line allowed). Unknown properties (e.g. "X-FOO:...") are ignored; a
    ///     malformed RRULE/EXDATE/RDATE throws. At most one RRULE is allowed; none means the series is just `start` (+ RDATEs).
    ///   - start: DTSTART as an instant; the rule is evaluated in wall-clock time of `timeZone` (IANA id), so a 09:00
    ///     weekly meeting stays at 09:00 local across DST changes. For `allDay` series the wall date of `start` in UTC is
    ///     the DTSTART date and occurrences are returned as UTC midnights of each date.
    ///   - duration: Length of each occurrence in seconds, used for the overlap test with the window.
    ///   - timeZone: IANA identifier of the series time zone (also used to interpret floating EXDATE/RDATE/UNTIL values
    ///     of timed series); an unknown identifier throws.
    ///   - allDay: Whether the series consists of whole days (evaluated on UTC dates).
    ///   - from: Inclusive start of the window; an occurrence that started earlier but ends after `from` is included
    ///     (a zero-length occurrence exactly at `from` is included too).
    ///   - to: Exclusive end of the window; occurrences starting at or after `to` are omitted.
    ///   - limit: Maximum number of instants returned (the earliest ones).
    /// - Returns: Sorted, de-duplicated start instants. The first occurrence is DTSTART itself (RFC 5545), counted by
    ///   COUNT even if it does not match the BYxxx parts; EXDATEs remove matching occurrences (and RDATEs).
    /// - Throws: ``RecurrenceError`` naming the malformed or unsupported line, part or value.
    public static func occurrences(
        rules: [String], start: Date, duration: TimeInterval, timeZone: String, allDay: Bool,
        from: Date, to: Date, limit: Int = 5000
    ) throws(RecurrenceError) -> [Date] {
        guard let namedZone = TimeZone(identifier: timeZone) else {
            throw RecurrenceError(description: "unknown time zone \"\(timeZone)\"")
        }
        let zone = allDay ? Zone(timeZone: nil) : Zone(timeZone: namedZone)

        var rule: Rule?
        var exclusions: [DateValue] = []
        var additions: [DateValue] = []
        for raw in rules {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let name = ContentLine.propertyName(of: line)
            switch name {
            case "RRULE":
                let content = try ContentLine(parsing: line)
                if rule != nil {
                    throw RecurrenceError(description: "more than one RRULE is not supported (second one: \"\(line)\")")
                }
                rule = try Rule(parsing: content.value, line: line)
            case "EXDATE":
                exclusions += try DateValue.parseList(try ContentLine(parsing: line), line: line)
            case "RDATE":
                additions += try DateValue.parseList(try ContentLine(parsing: line), line: line)
            case "EXRULE":
                throw RecurrenceError(description: "EXRULE is not supported: \"\(line)\"")
            default:
                continue
            }
        }

        guard limit > 0, from < to else { return [] }
        let expansion = Expansion(
            rule: rule, start: start, duration: duration, zone: zone, allDay: allDay,
            from: from, to: to, limit: limit)
        return expansion.run(exclusions: exclusions, additions: additions)
    }

    // MARK: - Calendar arithmetic (proleptic Gregorian, days since 1970-01-01)

    private static let secondsPerDay = 86_400
    /// Largest magnitude of a UTC offset, used for conservative bounds.
    private static let maxOffset = 14 * 3_600 + 3_600
    private static let weekdayNames = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]

    private static func isLeap(_ year: Int) -> Bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    private static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Weekday of a day number: 0 = Monday ... 6 = Sunday.
    private static func weekday(_ days: Int) -> Int {
        ((days % 7) + 7 + 3) % 7
    }

    // MARK: - Time zones

    /// A time zone, or UTC when `timeZone` is nil.
    private struct Zone {
        let timeZone: TimeZone?

        func offset(atInstant seconds: Int) -> Int {
            guard let timeZone else { return 0 }
            return timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
        }

        func local(ofInstant seconds: Int) -> Int {
            seconds + offset(atInstant: seconds)
        }

        /// The instant of a wall-clock time. Repeated times (DST fall-back) take the first instant; skipped times
        /// (spring-forward gap) use the offset before the gap, as RFC 5545 prescribes (02:30 becomes 03:30).
        func instant(ofLocal local: Int) -> Int {
            guard timeZone != nil else { return local }
            let before = offset(atInstant: local - RecurrenceExpander.secondsPerDay)
            let after = offset(atInstant: local + RecurrenceExpander.secondsPerDay)
            var best: Int?
            for candidate in before == after ? [before] : [before, after] {
                let t = local - candidate
                if offset(atInstant: t) == candidate {
                    best = min(best ?? t, t)
                }
            }
            return best ?? (local - before)
        }
    }

    // MARK: - Content lines

    private struct ContentLine {
        let name: String
        let parameters: [String: String]
        let value: String

        /// Upper-cased property name (text before the first ';', ':' or whitespace).
        static func propertyName(of line: String) -> String {
            let end = line.firstIndex(where: { $0 == ";" || $0 == ":" || $0.isWhitespace }) ?? line.endIndex
            return line[..<end].trimmingCharacters(in: .whitespaces).uppercased()
        }

        init(parsing line: String) throws(RecurrenceError) {
            // Split "NAME;P1=V1;P2=\"V:2\":VALUE" at ';' and the first ':' outside double quotes.
            var segments: [String] = []
            var current = ""
            var inQuotes = false
            var valueStart: String.Index?
            var index = line.startIndex
            while index < line.endIndex {
                let ch = line[index]
                if ch == "\"" {
                    inQuotes.toggle()
                    current.append(ch)
                } else if !inQuotes && ch == ";" {
                    segments.append(current)
                    current = ""
                } else if !inQuotes && ch == ":" {
                    valueStart = line.index(after: index)
                    break
                } else {
                    current.append(ch)
                }
                index = line.index(after: index)
            }
            guard let valueStart else {
                throw RecurrenceError(description: "malformed line (no ':' before the value): \"\(line)\"")
            }
            segments.append(current)
            name = segments[0].trimmingCharacters(in: .whitespaces).uppercased()
            var parameters: [String: String] = [:]
            for segment in segments.dropFirst() {
                guard let eq = segment.firstIndex(of: "=") else {
                    throw RecurrenceError(description: "malformed parameter \"\(segment)\" in \"\(line)\"")
                }
                let key = segment[..<eq].trimmingCharacters(in: .whitespaces).uppercased()
                var val = segment[segment.index(after: eq)...].trimmingCharacters(in: .whitespaces)
                if val.count >= 2, val.hasPrefix("\""), val.hasSuffix("\"") {
                    val = String(val.dropFirst().dropLast())
                }
                parameters[key] = val
            }
            self.parameters = parameters
            value = line[valueStart...].trimmingCharacters(in: .whitespaces)
        }
    }

    // MARK: - Date values

    private enum Anchor {
        case utc
        case zone(TimeZone)
        case floating
    }

    private enum DateValue {
        /// A calendar date as a day number.
        case date(day: Int)
        /// A wall-clock date-time (seconds since the 1970 epoch of the wall clock) and how to anchor it.
        case dateTime(local: Int, anchor: Anchor)

        /// Instant of a date-time value; floating values use `zone`.
        func instant(floatingIn zone: Zone) -> Int? {
            guard case let .dateTime(local, anchor) = self else { return nil }
            switch anchor {
            case .utc: return local
            case .zone(let tz): return Zone(timeZone: tz).instant(ofLocal: local)
            case .floating: return zone.instant(ofLocal: local)
            }
        }

        /// The wall date as written.
        var writtenDay: Int {
            switch self {
            case .date(let day): return day
            case .dateTime(let local, _): return CivilDate.floorDivide(local, RecurrenceExpander.secondsPerDay)
            }
        }

        static func parseList(_ content: ContentLine, line: String) throws(RecurrenceError) -> [DateValue] {
            var tz: TimeZone?
            if let tzid = content.parameters["TZID"] {
                guard let zone = TimeZone(identifier: tzid) else {
                    throw RecurrenceError(description: "unknown time zone \"\(tzid)\" in \"\(line)\"")
                }
                tz = zone
            }
            if let kind = content.parameters["VALUE"]?.uppercased(),
                !["DATE", "DATE-TIME", "PERIOD"].contains(kind)
            {
                throw RecurrenceError(description: "unsupported VALUE=\(kind) in \"\(line)\"")
            }
            var result: [DateValue] = []
            for piece in content.value.split(separator: ",", omittingEmptySubsequences: false) {
                var text = piece.trimmingCharacters(in: .whitespaces)
                if let slash = text.firstIndex(of: "/") {
                    // PERIOD value: only the start matters.
                    text = String(text[..<slash])
                }
                result.append(try parse(text, timeZone: tz, context: "\"\(line)\""))
            }
            return result
        }

        static func parse(_ raw: String, timeZone: TimeZone?, context: String) throws(RecurrenceError) -> DateValue {
            let text = raw.uppercased()
            let bytes = Array(text.utf8)
            let bad = RecurrenceError(description: "bad date \"\(raw)\" in \(context)")
            func number(_ range: Range<Int>) -> Int? {
                var value = 0
                for i in range {
                    let b = bytes[i]
                    guard b >= 48 && b <= 57 else { return nil }
                    value = value * 10 + Int(b - 48)
                }
                return value
            }
            guard bytes.count >= 8, let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
                (1...12).contains(month), day >= 1, day <= RecurrenceExpander.daysInMonth(year, month)
            else { throw bad }
            let dayNumber = CivilDate.days(year: year, month: month, day: day)
            if bytes.count == 8 { return .date(day: dayNumber) }
            let isUTC = bytes.count == 16 && bytes[15] == UInt8(ascii: "Z")
            guard bytes.count == 15 || isUTC, bytes[8] == UInt8(ascii: "T"),
                let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
                hour < 24, minute < 60, second <= 60
            else { throw bad }
            let local = dayNumber * RecurrenceExpander.secondsPerDay + hour * 3_600 + minute * 60 + second
            if isUTC { return .dateTime(local: local, anchor: .utc) }
            if let timeZone { return .dateTime(local: local, anchor: .zone(timeZone)) }
            return .dateTime(local: local, anchor: .floating)
        }
    }

    // MARK: - RRULE

    private struct Rule {
        enum Frequency: String {
            case daily = "DAILY", weekly = "WEEKLY", monthly = "MONTHLY", yearly = "YEARLY"
        }

        struct WeekdayNum {
            let ordinal: Int?
            let weekday: Int
        }

        var frequency: Frequency = .daily
        var interval = 1
        var count: Int?
        var until: DateValue?
        var byDay: [WeekdayNum] = []
        var byMonthDay: [Int] = []
        var byMonth: [Int] = []
        var bySetPos: [Int] = []
        var byHour: [Int] = []
        var byMinute: [Int] = []
        var bySecond: [Int] = []
        var weekStart = 0

        init(parsing value: String, line: String) throws(RecurrenceError) {
            var seen = Set<String>()
            var frequency: Frequency?
            for rawPart in value.split(separator: ";", omittingEmptySubsequences: true) {
                let part = rawPart.trimmingCharacters(in: .whitespaces)
                if part.isEmpty { continue }
                guard let eq = part.firstIndex(of: "=") else {
                    throw RecurrenceError(description: "malformed RRULE part \"\(part)\" (expected NAME=VALUE) in \"\(line)\"")
                }
                let key = part[..<eq].trimmingCharacters(in: .whitespaces).uppercased()
                let val = part[part.index(after: eq)...].trimmingCharacters(in: .whitespaces).uppercased()
                guard !key.isEmpty else {
                    throw RecurrenceError(description: "malformed RRULE part \"\(part)\" in \"\(line)\"")
                }
                guard seen.insert(key).inserted else {
                    throw RecurrenceError(description: "duplicate RRULE part \(key) in \"\(line)\"")
                }
                guard !val.isEmpty else {
                    throw RecurrenceError(description: "empty value for RRULE part \(key) in \"\(line)\"")
                }
                switch key {
                case "FREQ":
                    if let known = Frequency(rawValue: val) {
                        frequency = known
                    } else if ["HOURLY", "MINUTELY", "SECONDLY"].contains(val) {
                        throw RecurrenceError(description: "FREQ=\(val) is unsupported (only DAILY, WEEKLY, MONTHLY and YEARLY) in \"\(line)\"")
                    } else {
                        throw RecurrenceError(description: "unknown FREQ=\(val) in \"\(line)\"")
                    }
                case "INTERVAL":
                    interval = try Self.integer(val, key: key, line: line, allowed: 1...Int.max)
                case "COUNT":
                    count = try Self.integer(val, key: key, line: line, allowed: 1...Int.max)
                case "UNTIL":
                    until = try DateValue.parse(val, timeZone: nil, context: "UNTIL of \"\(line)\"")
                case "BYDAY":
                    byDay = try Self.list(val, key: key, line: line) { (item) throws(RecurrenceError) in
                        try Self.weekdayNum(item, line: line)
                    }
                case "BYMONTHDAY":
                    byMonthDay = try Self.integers(val, key: key, line: line, allowed: -31...31)
                case "BYMONTH":
                    byMonth = try Self.integers(val, key: key, line: line, allowed: 1...12)
                case "BYSETPOS":
                    bySetPos = try Self.integers(val, key: key, line: line, allowed: -366...366)
                case "BYHOUR":
                    byHour = try Self.integers(val, key: key, line: line, allowed: 0...23, allowZero: true)
                case "BYMINUTE":
                    byMinute = try Self.integers(val, key: key, line: line, allowed: 0...59, allowZero: true)
                case "BYSECOND":
                    bySecond = try Self.integers(val, key: key, line: line, allowed: 0...60, allowZero: true)
                case "WKST":
                    guard let day = RecurrenceExpander.weekdayNames.firstIndex(of: val) else {
                        throw RecurrenceError(description: "bad day name \"\(val)\" in WKST of \"\(line)\"")
                    }
                    weekStart = day
                case "BYYEARDAY", "BYWEEKNO":
                    throw RecurrenceError(description: "\(key) is unsupported in \"\(line)\"")
                default:
                    throw RecurrenceError(description: "unknown RRULE part \"\(part)\" in \"\(line)\"")
                }
            }
            guard let frequency else {
                throw RecurrenceError(description: "RRULE has no FREQ: \"\(line)\"")
            }
            self.frequency = frequency
            if count != nil && until != nil {
                throw RecurrenceError(description: "COUNT and UNTIL must not both be present in \"\(line)\"")
            }
            for entry in byDay {
                guard let ordinal = entry.ordinal else { continue }
                let name = "\(ordinal)\(RecurrenceExpander.weekdayNames[entry.weekday])"
                switch frequency {
                case .daily, .weekly:
                    throw RecurrenceError(description: "BYDAY ordinal \(name) is only allowed with FREQ=MONTHLY or YEARLY in \"\(line)\"")
                case .monthly where abs(ordinal) > 5:
                    throw RecurrenceError(description: "BYDAY ordinal \(name) out of range -5...5 for FREQ=MONTHLY in \"\(line)\"")
                default:
                    break
                }
            }
        }

        private static func integer(
            _ text: String, key: String, line: String, allowed: ClosedRange<Int>
        ) throws(RecurrenceError) -> Int {
            guard let value = Int(text) else {
                throw RecurrenceError(description: "malformed number \"\(text)\" in \(key) of \"\(line)\"")
            }
            guard allowed.contains(value) else {
                throw RecurrenceError(description: "\(key)=\(text) out of range (must be at least \(allowed.lowerBound)) in \"\(line)\"")
            }
            return value
        }

        private static func list<T>(
            _ text: String, key: String, line: String, _ parseItem: (String) throws(RecurrenceError) -> T
        ) throws(RecurrenceError) -> [T] {
            var result: [T] = []
            for piece in text.split(separator: ",", omittingEmptySubsequences: false) {
                let item = piece.trimmingCharacters(in: .whitespaces)
                guard !item.isEmpty else {
                    throw RecurrenceError(description: "empty item in \(key) of \"\(line)\"")
                }
                result.append(try parseItem(item))
            }
            return result
        }

        private static func integers(
            _ text: String, key: String, line: String, allowed: ClosedRange<Int>, allowZero: Bool = false
        ) throws(RecurrenceError) -> [Int] {
            try list(text, key: key, line: line) { (item) throws(RecurrenceError) -> Int in
                guard let value = Int(item) else {
                    throw RecurrenceError(description: "malformed number \"\(item)\" in \(key) of \"\(line)\"")
                }
                guard allowed.contains(value), allowZero || value != 0 else {
                    throw RecurrenceError(description: "\(key) value \(item) out of range \(allowed.lowerBound)...\(allowed.upperBound)\(allowZero ? "" : " (0 not allowed)") in \"\(line)\"")
                }
                return value
            }
        }

        private static func weekdayNum(_ item: String, line: String) throws(RecurrenceError) -> WeekdayNum {
            guard item.count >= 2,
                let weekday = RecurrenceExpander.weekdayNames.firstIndex(of: String(item.suffix(2)))
            else {
                throw RecurrenceError(description: "bad day name \"\(item)\" in BYDAY of \"\(line)\"")
            }
            let prefix = String(item.dropLast(2))
            if prefix.isEmpty { return WeekdayNum(ordinal: nil, weekday: weekday) }
            guard let ordinal = Int(prefix) else {
                throw RecurrenceError(description: "malformed BYDAY ordinal \"\(item)\" in \"\(line)\"")
            }
            guard ordinal != 0, abs(ordinal) <= 53 else {
                throw RecurrenceError(description: "BYDAY ordinal \(item) out of range (1...53 or -53...-1) in \"\(line)\"")
            }
            return WeekdayNum(ordinal: ordinal, weekday: weekday)
        }
    }

    // MARK: - Expansion

    private struct Expansion {
        let rule: Rule?
        let start: Date
        let duration: TimeInterval
        let zone: Zone
        let allDay: Bool
        let from: Double
        let to: Double
        let limit: Int

        /// DTSTART instant in whole seconds (UTC midnight for all-day series).
        let startInstant: Int
        /// DTSTART as returned to the caller.
        let firstOccurrence: Date
        let startDay: Int
        let startTimeOfDay: Int

        /// Upper bound on the number of periods (days, weeks, months or years) examined.
        static let maxPeriods = 100_000
        static let maxYear = 9_999

        init(rule: Rule?, start: Date, duration: TimeInterval, zone: Zone, allDay: Bool, from: Date, to: Date, limit: Int) {
            self.rule = rule
            self.start = start
            self.duration = duration.isFinite ? max(duration, 0) : 0
            self.zone = zone
            self.allDay = allDay
            self.from = from.timeIntervalSince1970
            self.to = to.timeIntervalSince1970
            self.limit = limit
            let seconds = Int(start.timeIntervalSince1970.rounded(.down))
            if allDay {
                let day = CivilDate.floorDivide(seconds, RecurrenceExpander.secondsPerDay)
                startInstant = day * RecurrenceExpander.secondsPerDay
                firstOccurrence = Date(timeIntervalSince1970: TimeInterval(startInstant))
                startDay = day
                startTimeOfDay = 0
            } else {
                startInstant = seconds
                firstOccurrence = start
                let local = zone.local(ofInstant: seconds)
                startDay = CivilDate.floorDivide(local, RecurrenceExpander.secondsPerDay)
                startTimeOfDay = local - startDay * RecurrenceExpander.secondsPerDay
            }
        }

        func inWindow(_ t: Double) -> Bool {
            t < to && (t + duration > from || t >= from)
        }

        func run(exclusions: [DateValue], additions: [DateValue]) -> [Date] {
            var excludedInstants = Set<Int>()
            var excludedDays = Set<Int>()
            for value in exclusions {
                switch value {
                case .date(let day):
                    excludedDays.insert(day)
                case .dateTime:
                    if allDay {
                        excludedDays.insert(value.writtenDay)
                    } else if let instant = value.instant(floatingIn: zone) {
                        excludedInstants.insert(instant)
                    }
                }
            }
            func isExcluded(instant: Int, localDay: Int) -> Bool {
                excludedInstants.contains(instant) || excludedDays.contains(localDay)
            }

            var result: [Double] = []
            if !isExcluded(instant: startInstant, localDay: startDay), inWindow(firstOccurrence.timeIntervalSince1970) {
                result.append(firstOccurrence.timeIntervalSince1970)
            }
            for value in additions {
                let instant: Int
                if allDay {
                    instant = value.writtenDay * RecurrenceExpander.secondsPerDay
                } else if case .date(let day) = value {
                    instant = zone.instant(ofLocal: day * RecurrenceExpander.secondsPerDay + startTimeOfDay)
                } else {
                    instant = value.instant(floatingIn: zone) ?? 0
                }
                let localDay = CivilDate.floorDivide(zone.local(ofInstant: instant), RecurrenceExpander.secondsPerDay)
                if !isExcluded(instant: instant, localDay: localDay), inWindow(TimeInterval(instant)) {
                    result.append(TimeInterval(instant))
                }
            }
            if let rule {
                result += expand(rule) { instant, local in
                    isExcluded(instant: instant, localDay: CivilDate.floorDivide(local, RecurrenceExpander.secondsPerDay))
                }
            }
            var seen = Set<Double>()
            let unique = result.sorted().filter { seen.insert($0).inserted }
            return unique.prefix(limit).map { Date(timeIntervalSince1970: $0) }
        }

        /// In-window, non-excluded rule occurrences after DTSTART, in order, at most `limit`.
        private func expand(_ rule: Rule, isExcluded: (_ instant: Int, _ local: Int) -> Bool) -> [Double] {
            if let count = rule.count, count <= 1 { return [] }
            let perDay = RecurrenceExpander.secondsPerDay
            let (startYear, startMonth, startDayOfMonth) = CivilDate.date(days: startDay)
            let startWeekday = RecurrenceExpander.weekday(startDay)
            let weekStart0 = startDay - (startWeekday - rule.weekStart + 7) % 7
            let startMonthIndex = startYear * 12 + (startMonth - 1)

            var untilDay: Int?
            var untilInstant: Int?
            if let until = rule.until {
                if case .date(let day) = until {
                    untilDay = day
                } else {
                    untilInstant = until.instant(floatingIn: zone)
                }
            }

            let times = timesOfDay(rule)
            let weeklyDays = Set(rule.byDay.isEmpty ? [startWeekday] : rule.byDay.map(\.weekday))
            let monthFilter = Set(rule.byMonth)

            // Skip whole periods that end before the window when COUNT does not force counting from DTSTART.
            var k = 0
            let earliest = from - duration - Double(2 * perDay)
            if rule.count == nil, earliest > Double(startInstant), earliest < 1e14 {
                let targetDay = CivilDate.floorDivide(Int(earliest), perDay)
                let (ty, tm, _) = CivilDate.date(days: targetDay)
                let skipped: Int
                switch rule.frequency {
                case .daily: skipped = (targetDay - startDay) / rule.interval
                case .weekly: skipped = (targetDay - weekStart0) / 7 / rule.interval
                case .monthly: skipped = (ty * 12 + tm - 1 - startMonthIndex) / rule.interval
                case .yearly: skipped = (ty - startYear) / rule.interval
                }
                k = max(0, skipped - 1)
            }

            var emitted = 1  // DTSTART
            var collected: [Double] = []
            var periods = 0
            periodLoop: while periods < Self.maxPeriods {
                periods += 1
                let (step, overflow) = k.multipliedReportingOverflow(by: rule.interval)
                if overflow || step > 4_000_000 { break }
                k += 1

                // First day of the period and the candidate days in it.
                let firstDay: Int
                var days: [Int]
                switch rule.frequency {
                case .daily:
                    firstDay = startDay + step
                    days = dailyCandidates(rule, day: firstDay, monthFilter: monthFilter)
                case .weekly:
                    firstDay = weekStart0 + 7 * step
                    days = (0..<7).map { firstDay + $0 }.filter { day in
                        weeklyDays.contains(RecurrenceExpander.weekday(day)) && passesMonthAndMonthDay(rule, day: day, monthFilter: monthFilter)
                    }
                case .monthly:
                    let monthIndex = startMonthIndex + step
                    let year = CivilDate.floorDivide(monthIndex, 12)
                    let month = monthIndex - year * 12 + 1
                    if year > Self.maxYear { break periodLoop }
                    firstDay = CivilDate.days(year: year, month: month, day: 1)
                    days =
                        monthFilter.isEmpty || monthFilter.contains(month)
                        ? monthCandidates(rule, year: year, month: month, defaultDay: startDayOfMonth) : []
                case .yearly:
                    let year = startYear + step
                    if year > Self.maxYear { break periodLoop }
                    firstDay = CivilDate.days(year: year, month: 1, day: 1)
                    days = yearCandidates(rule, year: year, defaultMonth: startMonth, defaultDay: startDayOfMonth)
                }

                let periodEarliest = firstDay * perDay - RecurrenceExpander.maxOffset
                if Double(periodEarliest) >= to { break }
                if let untilDay, firstDay > untilDay { break }
                if let untilInstant, periodEarliest > untilInstant { break }
                if CivilDate.date(days: firstDay).year > Self.maxYear { break }
                if days.isEmpty { continue }

                days = Array(Set(days)).sorted()
                var locals: [Int] = []
                locals.reserveCapacity(days.count * times.count)
                for day in days {
                    for time in times { locals.append(day * perDay + time) }
                }
                locals.sort()
                if !rule.bySetPos.isEmpty {
                    let n = locals.count
                    let picked = Set(
                        rule.bySetPos.compactMap { pos -> Int? in
                            let index = pos > 0 ? pos - 1 : n + pos
                            return index >= 0 && index < n ? locals[index] : nil
                        })
                    locals = picked.sorted()
                }

                for local in locals {
                    let instant = zone.instant(ofLocal: local)
                    if instant <= startInstant { continue }
                    if let untilDay, CivilDate.floorDivide(local, perDay) > untilDay { break periodLoop }
                    if let untilInstant, instant > untilInstant { break periodLoop }
                    if Double(instant) >= to { break periodLoop }
                    emitted += 1
                    if !isExcluded(instant, local), inWindow(Double(instant)) {
                        collected.append(Double(instant))
                        if collected.count >= limit { break periodLoop }
                    }
                    if let count = rule.count, emitted >= count { break periodLoop }
                }
            }
            return collected
        }

        /// Seconds after local midnight at which occurrences happen on each candidate day.
        private func timesOfDay(_ rule: Rule) -> [Int] {
            if rule.byHour.isEmpty && rule.byMinute.isEmpty && rule.bySecond.isEmpty {
                return [startTimeOfDay]
            }
            let hours = rule.byHour.isEmpty ? [startTimeOfDay / 3_600] : rule.byHour
            let minutes = rule.byMinute.isEmpty ? [startTimeOfDay / 60 % 60] : rule.byMinute
            let seconds = rule.bySecond.isEmpty ? [startTimeOfDay % 60] : rule.bySecond
            var result = Set<Int>()
            for h in hours {
                for m in minutes {
                    for s in seconds { result.insert(h * 3_600 + m * 60 + s) }
                }
            }
            return result.sorted()
        }

        private func passesMonthAndMonthDay(_ rule: Rule, day: Int, monthFilter: Set<Int>) -> Bool {
            if monthFilter.isEmpty && rule.byMonthDay.isEmpty { return true }
            let (year, month, dayOfMonth) = CivilDate.date(days: day)
            if !monthFilter.isEmpty && !monthFilter.contains(month) { return false }
            if !rule.byMonthDay.isEmpty {
                let length = RecurrenceExpander.daysInMonth(year, month)
                return rule.byMonthDay.contains { n in (n > 0 ? n : length + 1 + n) == dayOfMonth }
            }
            return true
        }

        private func dailyCandidates(_ rule: Rule, day: Int, monthFilter: Set<Int>) -> [Int] {
            if !rule.byDay.isEmpty && !rule.byDay.contains(where: { $0.weekday == RecurrenceExpander.weekday(day) }) {
                return []
            }
            return passesMonthAndMonthDay(rule, day: day, monthFilter: monthFilter) ? [day] : []
        }

        /// Days in [first, last] matching BYDAY; ordinals count within that range.
        private func expandByDay(_ rule: Rule, first: Int, last: Int) -> [Int] {
            var result: [Int] = []
            for entry in rule.byDay {
                let firstMatch = first + (entry.weekday - RecurrenceExpander.weekday(first) + 7) % 7
                let lastMatch = last - (RecurrenceExpander.weekday(last) - entry.weekday + 7) % 7
                if let ordinal = entry.ordinal {
                    let day = ordinal > 0 ? firstMatch + (ordinal - 1) * 7 : lastMatch + (ordinal + 1) * 7
                    if day >= first && day <= last { result.append(day) }
                } else {
                    result.append(contentsOf: stride(from: firstMatch, through: last, by: 7))
                }
            }
            return result
        }

        private func monthDays(_ rule: Rule, year: Int, month: Int) -> [Int] {
            let first = CivilDate.days(year: year, month: month, day: 1)
            let length = RecurrenceExpander.daysInMonth(year, month)
            return rule.byMonthDay.compactMap { n in
                let dayOfMonth = n > 0 ? n : length + 1 + n
                return dayOfMonth >= 1 && dayOfMonth <= length ? first + dayOfMonth - 1 : nil
            }
        }

        private func monthCandidates(_ rule: Rule, year: Int, month: Int, defaultDay: Int) -> [Int] {
            let first = CivilDate.days(year: year, month: month, day: 1)
            let length = RecurrenceExpander.daysInMonth(year, month)
            if !rule.byMonthDay.isEmpty {
                let days = monthDays(rule, year: year, month: month)
                if rule.byDay.isEmpty { return days }
                let allowed = Set(expandByDay(rule, first: first, last: first + length - 1))
                return days.filter(allowed.contains)
            }
            if !rule.byDay.isEmpty {
                return expandByDay(rule, first: first, last: first + length - 1)
            }
            return defaultDay <= length ? [first + defaultDay - 1] : []
        }

        private func yearCandidates(_ rule: Rule, year: Int, defaultMonth: Int, defaultDay: Int) -> [Int] {
            let months = rule.byMonth.isEmpty ? Array(1...12) : rule.byMonth
            if !rule.byDay.isEmpty {
                var days: [Int]
                if rule.byMonth.isEmpty {
                    let first = CivilDate.days(year: year, month: 1, day: 1)
                    let last = CivilDate.days(year: year, month: 12, day: 31)
                    days = expandByDay(rule, first: first, last: last)
                } else {
                    days = months.flatMap { month in
                        let first = CivilDate.days(year: year, month: month, day: 1)
                        return expandByDay(rule, first: first, last: first + RecurrenceExpander.daysInMonth(year, month) - 1)
                    }
                }
                if !rule.byMonthDay.isEmpty {
                    days = days.filter { passesMonthAndMonthDay(rule, day: $0, monthFilter: []) }
                }
                return days
            }
            if !rule.byMonthDay.isEmpty {
                return months.flatMap { monthDays(rule, year: year, month: $0) }
            }
            let candidateMonths = rule.byMonth.isEmpty ? [defaultMonth] : rule.byMonth
            return candidateMonths.compactMap { month in
                defaultDay <= RecurrenceExpander.daysInMonth(year, month)
                    ? CivilDate.days(year: year, month: month, day: defaultDay) : nil
            }
        }
    }
}
