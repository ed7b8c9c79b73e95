import CalgateMacros
import Foundation
import GatewayCore

/// Graph's `dateTimeTimeZone`: a wall-clock `dateTime` without offset ("2025-12-03T14:00:00.0000000") and a zone name.
@MemberwiseInit
public struct GraphDateTimeTimeZone: Decodable, Sendable, Hashable {
    /// The wall-clock date and time, e.g. "2025-12-03T14:00:00.0000000" (no offset).
    public var dateTime: String
    /// The zone the wall clock is read in: a Windows zone name, "UTC" or an IANA identifier; nil means UTC.
    public var timeZone: String?
}

/// A `dateTimeTimeZone` or instant that could not be interpreted; the description names the bad value.
@MemberwiseInit
public struct GraphDateTimeError: Error, Sendable, CustomStringConvertible {
    /// What was wrong, naming the offending value.
    public let description: String
}

/// Conversions of Microsoft Graph date/time values to `Date`s and wall dates, parsed by hand (thread-safe, no formatters).
public enum GraphDateTime {
    /// The instant and canonical IANA zone of a dateTimeTimeZone. The dateTime has 0-7 fractional digits, and no offset
    /// (if it does end in Z or ±hh:mm, that offset wins). Missing timeZone means UTC. Unknown zone names, malformed
    /// or out-of-range dates (month 13, Feb 30, year < 1900 or > 2200) throw with a message naming the bad value.
    ///
    /// A `timeZone` that is empty or only whitespace counts as missing. Wall-clock times that fall in a daylight-saving
    /// gap are moved forward by the length of the gap; times that occur twice resolve to the first (earlier) instant.
    public static func instant(_ value: GraphDateTimeTimeZone) throws(GraphDateTimeError) -> (date: Date, zone: String) {
        let (zoneID, zone) = try resolveZone(value.timeZone)
        let fields = try wallFields(value.dateTime)
        if let offset = fields.offsetSeconds {
            return (fields.date(subtractingOffset: offset), zoneID)
        }
        return (instant(wallClock: fields, in: zone), zoneID)
    }

    /// The `yyyy-mm-dd` wall date of a dateTimeTimeZone (all-day events: Graph sends midnight in the event's zone).
    ///
    /// Without an offset this is the date part of `dateTime` as written (the zone is not consulted); with a Z or
    /// ±hh:mm offset the instant is converted to the wall date in `timeZone` (which then must be known).
    public static func wallDate(_ value: GraphDateTimeTimeZone) throws(GraphDateTimeError) -> String {
        let fields = try wallFields(value.dateTime)
        guard let offset = fields.offsetSeconds else {
            return isoDate(year: fields.year, month: fields.month, day: fields.day)
        }
        let (_, zone) = try resolveZone(value.timeZone)
        let date = fields.date(subtractingOffset: offset)
        let local = Int(date.timeIntervalSince1970.rounded(.down)) + zone.secondsFromGMT(for: date)
        let (year, month, day) = CivilDate.date(days: CivilDate.floorDivide(local, 86_400))
        return isoDate(year: year, month: month, day: day)
    }

    /// An RFC 3339 / ISO 8601 UTC instant as Graph sends `originalStart` and `lastModifiedDateTime`
    /// ("2025-12-17T14:00:00Z", "2025-12-01T09:59:00.1234567Z", "+00:00" offsets too); nil when malformed.
    ///
    /// An offset (Z or ±hh:mm) is required; years 0001-9999 are accepted (Graph uses "0001-01-01T00:00:00Z" as a
    /// "no value" marker).
    public static func parseInstant(_ text: String) -> Date? {
        guard case .success(let fields) = parse(text, years: 1...9999),
            let offset = fields.offsetSeconds
        else { return nil }
        return fields.date(subtractingOffset: offset)
    }

    // MARK: - Internals shared with the recurrence converter

    /// The canonical IANA id and Foundation zone for a Graph zone name; nil/blank means UTC.
    static func resolveZone(_ name: String?) throws(GraphDateTimeError) -> (id: String, zone: TimeZone) {
        let trimmed = name?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let id: String
        if trimmed.isEmpty {
            id = "UTC"
        } else if let known = WindowsTimeZones.ianaIdentifier(for: trimmed) {
            id = known
        } else {
            throw GraphDateTimeError(description: "unknown time zone \"\(name ?? "")\"")
        }
        guard let zone = TimeZone(identifier: id) else {
            throw GraphDateTimeError(description: "time zone \"\(name ?? "")\" (\(id)) is not available")
        }
        return (id, zone)
    }

    /// The parsed fields of a Graph `dateTime` (years 1900-2200), or an error naming the value.
    static func wallFields(_ text: String) throws(GraphDateTimeError) -> Fields {
        switch parse(text, years: 1900...2200) {
        case .success(let fields): return fields
        case .failure(let reason): throw GraphDateTimeError(description: "invalid dateTime \"\(text)\": \(reason)")
        }
    }

    /// The instant at which the wall clock in `zone` shows `fields` (their offset, if any, is ignored).
    static func instant(wallClock fields: Fields, in zone: TimeZone) -> Date {
        let local = fields.wallSeconds
        func offset(at seconds: Int) -> Int {
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
        }
        let earlier = offset(at: local - 86_400)
        let later = offset(at: local + 86_400)
        var candidates: [Int] = []
        for candidateOffset in [earlier, later] where offset(at: local - candidateOffset) == candidateOffset {
            candidates.append(local - candidateOffset)
        }
        // No consistent offset: the wall time was skipped; the pre-transition offset moves it forward by the gap.
        let seconds = candidates.min() ?? (local - earlier)
        return Date(timeIntervalSince1970: TimeInterval(seconds) + fields.fraction)
    }

    /// The UTC calendar fields of an instant (seconds truncated toward the past).
    static func utcFields(of date: Date) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = CivilDate.floorDivide(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = CivilDate.date(days: days)
        return (year, month, day, secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60)
    }

    /// Parsed date-time fields.
    struct Fields: Sendable {
        var year, month, day: Int
        var hour, minute, second: Int
        /// Fractional second in [0, 1).
        var fraction: Double
        /// Offset east of UTC in seconds when the text carried Z or ±hh:mm.
        var offsetSeconds: Int?

        /// The wall clock as seconds since 1970-01-01T00:00:00 of the same wall clock (no offset applied).
        var wallSeconds: Int {
            CivilDate.days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
        }

        /// The instant when the wall clock is read at a fixed offset.
        func date(subtractingOffset offset: Int) -> Date {
            Date(timeIntervalSince1970: TimeInterval(wallSeconds - offset) + fraction)
        }
    }

    enum ParseResult {
        case success(Fields)
        case failure(String)
    }

    /// Parses `yyyy-MM-dd[Tt ]HH:mm[:ss[.f{1,9}]][Z|z|±hh[:]mm]`, validating every field.
    static func parse(_ text: String, years: ClosedRange<Int>) -> ParseResult {
        let bytes = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        if bytes.isEmpty { return .failure("empty") }
        var index = 0

        func number(_ width: Int) -> Int? {
            guard index + width <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<(index + width)] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += width
            return value
        }
        func take(_ accepted: Set<UInt8>) -> UInt8? {
            guard index < bytes.count, accepted.contains(bytes[index]) else { return nil }
            index += 1
            return bytes[index - 1]
        }
        let dash: Set<UInt8> = [0x2D], colon: Set<UInt8> = [0x3A]
        let malformed = ParseResult.failure("expected yyyy-MM-ddTHH:mm:ss[.fffffff]")

        guard let year = number(4), take(dash) != nil, let month = number(2), take(dash) != nil,
            let day = number(2), take([0x54, 0x74, 0x20]) != nil,
            let hour = number(2), take(colon) != nil, let minute = number(2)
        else { return malformed }
        var second = 0
        var fraction = 0.0
        if take(colon) != nil {
            guard let parsedSecond = number(2) else { return malformed }
            second = parsedSecond
            if take([0x2E, 0x2C]) != nil {
                var digits = 0
                var scale = 0.1
                while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                    fraction += Double(bytes[index] - 0x30) * scale
                    scale /= 10
                    digits += 1
                    index += 1
                }
                guard (1...9).contains(digits) else { return .failure("expected 1-9 fractional digits") }
            }
        }
        var offsetSeconds: Int?
        if let sign = take([0x5A, 0x7A, 0x2B, 0x2D]) {
            if sign == 0x5A || sign == 0x7A {
                offsetSeconds = 0
            } else {
                guard let offsetHours = number(2) else { return .failure("malformed UTC offset") }
                _ = take(colon)
                guard let offsetMinutes = number(2), offsetHours <= 23, offsetMinutes <= 59 else {
                    return .failure("malformed UTC offset")
                }
                offsetSeconds = (sign == 0x2D ? -1 : 1) * (offsetHours * 3600 + offsetMinutes * 60)
            }
        }
        guard index == bytes.count else { return malformed }
        guard years.contains(year) else {
            return .failure("year \(year) outside \(years.lowerBound)-\(years.upperBound)")
        }
        guard (1...12).contains(month) else { return .failure("month \(month) out of range") }
        guard (1...daysIn(month: month, year: year)).contains(day) else {
            return .failure("day \(day) out of range for \(isoDate(year: year, month: month, day: nil))")
        }
        guard hour <= 23, minute <= 59, second <= 59 else {
            return .failure("time \(twoDigits(hour)):\(twoDigits(minute)):\(twoDigits(second)) out of range")
        }
        return .success(
            Fields(
                year: year, month: month, day: day, hour: hour, minute: minute, second: second,
                fraction: fraction, offsetSeconds: offsetSeconds))
    }

    /// Parses a strict `yyyy-MM-dd` date (years 1900-2200); nil when malformed or out of range.
    static func parseDate(_ text: String) -> (year: Int, month: Int, day: Int)? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count == 10,
            case .success(let fields) = parse(trimmed + "T00:00:00", years: 1900...2200)
        else { return nil }
        return (fields.year, fields.month, fields.day)
    }

    /// The number of days in a month of the proleptic Gregorian calendar.
    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0\(value)" : String(value)
    }

    static func fourDigits(_ value: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }

    static func isoDate(year: Int, month: Int, day: Int?) -> String {
        let yearMonth = "\(fourDigits(year))-\(twoDigits(month))"
        guard let day else { return yearMonth }
        return "\(yearMonth)-\(twoDigits(day))"
    }
}
