import CalgateMacros
import Foundation

/// Graph's `patternedRecurrence`: how often a series repeats (`pattern`) and for how long (`range`).
///
/// Fields are optional and plain strings, exactly as Graph sends them (nulls and fields irrelevant to the type,
/// such as `month: 0` on a weekly pattern, are allowed); `GraphRecurrenceConverter` validates them.
@MemberwiseInit
public struct GraphPatternedRecurrence: Decodable, Sendable, Hashable {
    /// The frequency of the series.
    public var pattern: Pattern
    /// The duration of the series.
    public var range: Range

    /// Graph's `recurrencePattern`.
    @MemberwiseInit
    public struct Pattern: Decodable, Sendable, Hashable {
        /// `daily`, `weekly`, `absoluteMonthly`, `relativeMonthly`, `absoluteYearly` or `relativeYearly`.
        public var type: String? = nil
        /// Units of `type` between occurrences (days, weeks, months or years); must be at least 1.
        public var interval: Int? = nil
        /// The month (1-12) of yearly patterns.
        public var month: Int? = nil
        /// The day of the month (1-31) of absolute monthly and yearly patterns.
        public var dayOfMonth: Int? = nil
        /// Lowercase English day names (`sunday` ... `saturday`) of weekly and relative patterns.
        public var daysOfWeek: [String]? = nil
        /// The first day of the week (`sunday` when absent) of weekly patterns.
        public var firstDayOfWeek: String? = nil
        /// `first`, `second`, `third`, `fourth` or `last` for relative patterns (`first` when absent).
        public var index: String? = nil
    }

    /// Graph's `recurrenceRange`.
    @MemberwiseInit
    public struct Range: Decodable, Sendable, Hashable {
        /// `endDate`, `noEnd` or `numbered`.
        public var type: String? = nil
        /// The `yyyy-MM-dd` date of the first occurrence.
        public var startDate: String? = nil
        /// The `yyyy-MM-dd` last day of an `endDate` range (Graph sends "0001-01-01" for other types).
        public var endDate: String? = nil
        /// The zone `startDate` and `endDate` are read in: a Windows or IANA zone name.
        public var recurrenceTimeZone: String? = nil
        /// How many occurrences a `numbered` range has (Graph sends 0 for other types).
        public var numberOfOccurrences: Int? = nil
    }
}

/// A `patternedRecurrence` that cannot be expressed as an RRULE; the description names the offending field.
@MemberwiseInit
public struct GraphRecurrenceError: Error, Sendable, CustomStringConvertible {
    /// What was wrong, naming the field (e.g. `pattern.daysOfWeek`).
    public let description: String
}

/// Converts Graph recurrences to RFC 5545 recurrence rules.
public enum GraphRecurrenceConverter {
    /// RFC 5545 lines equivalent to the pattern, e.g. ["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;WKST=SU;COUNT=10"].
    /// endDate ranges become UNTIL: for timed series the end of that local day in recurrenceTimeZone (Windows or
    /// IANA name, default `fallbackZone`) converted to UTC (`UNTIL=20251231T225959Z`), for all-day series the date form
    /// (`UNTIL=20251231`). relativeMonthly → BYDAY with ordinal (1MO, -1FR) ; absoluteYearly → BYMONTH+BYMONTHDAY;
    /// relativeYearly → BYMONTH+BYDAY with ordinal. interval < 1, missing required fields for the type (weekly without
    /// daysOfWeek, absoluteMonthly without dayOfMonth, numbered without numberOfOccurrences >= 1, endDate without a valid endDate,
    /// unknown type or day names) throw a GraphRecurrenceError naming the field.
    ///
    /// Details: `INTERVAL` is always written; a missing `interval` counts as 1. Weekly `BYDAY` lists days Sunday first
    /// and adds `WKST` from `firstDayOfWeek` (default `SU`). A relative pattern with several days means "the n-th of
    /// those days" in Outlook (e.g. "first weekday" is Monday-Friday with index `first`), so it becomes
    /// `BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1`; a single day becomes `BYDAY=1MO`. Names are matched case-insensitively.
    /// A blank `recurrenceTimeZone` falls back to `fallbackZone`, and a blank `fallbackZone` means UTC.
    public static func rrule(
        _ recurrence: GraphPatternedRecurrence, allDay: Bool, fallbackZone: String
    ) throws(GraphRecurrenceError) -> [String] {
        let pattern = recurrence.pattern
        guard let type = nonBlank(pattern.type) else {
            throw GraphRecurrenceError(description: "pattern.type is missing")
        }
        let interval = pattern.interval ?? 1
        guard interval >= 1 else {
            throw GraphRecurrenceError(description: "pattern.interval must be at least 1 (got \(interval))")
        }

        var parts: [String]
        switch type.lowercased() {
        case "daily":
            parts = ["FREQ=DAILY", "INTERVAL=\(interval)"]
        case "weekly":
            let days = try weekdays(pattern.daysOfWeek, type: type)
            let weekStart = try weekday(named: nonBlank(pattern.firstDayOfWeek) ?? "sunday", field: "pattern.firstDayOfWeek")
            parts = ["FREQ=WEEKLY", "INTERVAL=\(interval)", "BYDAY=" + days.joined(separator: ","), "WKST=\(weekStart)"]
        case "absolutemonthly":
            let day = try requiredDayOfMonth(pattern.dayOfMonth, month: nil, type: type)
            parts = ["FREQ=MONTHLY", "INTERVAL=\(interval)", "BYMONTHDAY=\(day)"]
        case "relativemonthly":
            let days = try weekdays(pattern.daysOfWeek, type: type)
            parts = ["FREQ=MONTHLY", "INTERVAL=\(interval)"] + (try relativeDays(days, index: pattern.index))
        case "absoluteyearly":
            let month = try requiredMonth(pattern.month, type: type)
            let day = try requiredDayOfMonth(pattern.dayOfMonth, month: month, type: type)
            parts = ["FREQ=YEARLY", "INTERVAL=\(interval)", "BYMONTH=\(month)", "BYMONTHDAY=\(day)"]
        case "relativeyearly":
            let month = try requiredMonth(pattern.month, type: type)
            let days = try weekdays(pattern.daysOfWeek, type: type)
            parts =
                ["FREQ=YEARLY", "INTERVAL=\(interval)", "BYMONTH=\(month)"]
                + (try relativeDays(days, index: pattern.index))
        default:
            throw GraphRecurrenceError(description: "pattern.type \"\(type)\" is not a known recurrence pattern type")
        }
        parts += try rangeParts(recurrence.range, allDay: allDay, fallbackZone: fallbackZone)
        return ["RRULE:" + parts.joined(separator: ";")]
    }

    // MARK: - Pattern helpers

    private static let dayCodes: [String: (order: Int, code: String)] = [
        "sunday": (0, "SU"), "monday": (1, "MO"), "tuesday": (2, "TU"), "wednesday": (3, "WE"),
        "thursday": (4, "TH"), "friday": (5, "FR"), "saturday": (6, "SA"),
    ]

    private static let ordinals: [String: Int] = ["first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1]

    private static func nonBlank(_ text: String?) -> String? {
        guard let trimmed = text?.trimmingCharacters(in: .whitespacesAndNewlines), !trimmed.isEmpty else { return nil }
        return trimmed
    }

    private static func weekday(named name: String, field: String) throws(GraphRecurrenceError) -> String {
        guard let entry = dayCodes[name.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()] else {
            throw GraphRecurrenceError(description: "\(field) has an unknown day name \"\(name)\"")
        }
        return entry.code
    }

    /// The RFC 5545 day codes of `daysOfWeek`, deduplicated, Sunday first; throws when absent, empty or unknown.
    private static func weekdays(_ names: [String]?, type: String) throws(GraphRecurrenceError) -> [String] {
        guard let names, !names.isEmpty else {
            throw GraphRecurrenceError(description: "pattern.daysOfWeek is required for a \(type) pattern")
        }
        var orders = Set<Int>()
        for name in names {
            guard let entry = dayCodes[name.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()] else {
                throw GraphRecurrenceError(description: "pattern.daysOfWeek has an unknown day name \"\(name)\"")
            }
            orders.insert(entry.order)
        }
        let codesByOrder = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]
        return orders.sorted().map { codesByOrder[$0] }
    }

    private static func relativeDays(_ days: [String], index: String?) throws(GraphRecurrenceError) -> [String] {
        let name = nonBlank(index) ?? "first"
        guard let ordinal = ordinals[name.lowercased()] else {
            throw GraphRecurrenceError(description: "pattern.index \"\(name)\" is not first, second, third, fourth or last")
        }
        if days.count == 1 {
            return ["BYDAY=\(ordinal)\(days[0])"]
        }
        return ["BYDAY=" + days.joined(separator: ","), "BYSETPOS=\(ordinal)"]
    }

    private static func requiredMonth(_ value: Int?, type: String) throws(GraphRecurrenceError) -> Int {
        guard let value, (1...12).contains(value) else {
            throw GraphRecurrenceError(
                description: "pattern.month must be 1-12 for a \(type) pattern (got \(value.map(String.init) ?? "none"))")
        }
        return value
    }

    private static func requiredDayOfMonth(_ value: Int?, month: Int?, type: String) throws(GraphRecurrenceError) -> Int {
        // February allows 29: a yearly Feb 29 series occurs in leap years.
        let maximum = month.map { $0 == 2 ? 29 : GraphDateTime.daysIn(month: $0, year: 2001) } ?? 31
        guard let value, (1...maximum).contains(value) else {
            let got = value.map(String.init) ?? "none"
            let scope = month.map { " in month \($0)" } ?? ""
            throw GraphRecurrenceError(
                description: "pattern.dayOfMonth must be 1-\(maximum)\(scope) for a \(type) pattern (got \(got))")
        }
        return value
    }

    // MARK: - Range helpers

    private static func rangeParts(
        _ range: GraphPatternedRecurrence.Range, allDay: Bool, fallbackZone: String
    ) throws(GraphRecurrenceError) -> [String] {
        guard let type = nonBlank(range.type) else {
            throw GraphRecurrenceError(description: "range.type is missing")
        }
        switch type.lowercased() {
        case "noend":
            return []
        case "numbered":
            guard let count = range.numberOfOccurrences, count >= 1 else {
                let got = range.numberOfOccurrences.map(String.init) ?? "none"
                throw GraphRecurrenceError(
                    description: "range.numberOfOccurrences must be at least 1 for a numbered range (got \(got))")
            }
            return ["COUNT=\(count)"]
        case "enddate":
            guard let text = range.endDate, let end = GraphDateTime.parseDate(text) else {
                let got = range.endDate.map { "\"\($0)\"" } ?? "none"
                throw GraphRecurrenceError(
                    description: "range.endDate must be a valid yyyy-MM-dd date for an endDate range (got \(got))")
            }
            if allDay {
                return [
                    "UNTIL=" + GraphDateTime.fourDigits(end.year) + GraphDateTime.twoDigits(end.month)
                        + GraphDateTime.twoDigits(end.day)
                ]
            }
            return ["UNTIL=" + (try endOfDayUTC(end, range: range, fallbackZone: fallbackZone))]
        default:
            throw GraphRecurrenceError(description: "range.type \"\(type)\" is not endDate, noEnd or numbered")
        }
    }

    /// 23:59:59 local on `end` in the range's zone, as an RFC 5545 UTC date-time.
    private static func endOfDayUTC(
        _ end: (year: Int, month: Int, day: Int), range: GraphPatternedRecurrence.Range, fallbackZone: String
    ) throws(GraphRecurrenceError) -> String {
        let field = nonBlank(range.recurrenceTimeZone) == nil ? "fallbackZone" : "range.recurrenceTimeZone"
        let name = nonBlank(range.recurrenceTimeZone) ?? fallbackZone
        let zone: TimeZone
        do {
            zone = try GraphDateTime.resolveZone(name).zone
        } catch {
            throw GraphRecurrenceError(description: "\(field) \"\(name)\" is not a known time zone")
        }
        let wallClock = GraphDateTime.Fields(
            year: end.year, month: end.month, day: end.day, hour: 23, minute: 59, second: 59,
            fraction: 0, offsetSeconds: nil)
        let utc = GraphDateTime.utcFields(of: GraphDateTime.instant(wallClock: wallClock, in: zone))
        return GraphDateTime.fourDigits(utc.year) + GraphDateTime.twoDigits(utc.month) + GraphDateTime.twoDigits(utc.day)
            + "T" + GraphDateTime.twoDigits(utc.hour) + GraphDateTime.twoDigits(utc.minute)
            + GraphDateTime.twoDigits(utc.second) + "Z"
    }
}
