import Foundation

/// The simulators' own reading of Microsoft Graph's date and time values.
///
/// Written from Microsoft's documentation (see ../shared/PROVIDERS.md §3.1, §4.1 and §4.3), not shared with the
/// gateway's `MicrosoftGraph` module: a simulator that parsed dates with the code it is meant to test could not catch a
/// bug in that code. The conversion to `Date` goes through Foundation's Gregorian `Calendar` (the gateway does its own
/// day arithmetic), so the two paths share no date logic either.
///
/// - An instant (`expirationDateTime`, an OData `Edm.DateTimeOffset`): `yyyy-MM-ddTHH:mm[:ss[.fraction]]` followed by
///   `Z` or `±hh:mm`, e.g. "2025-12-08T09:00:00.0000000Z" or "2025-12-08T10:00:00+01:00"; 1-12 fractional digits
///   (OData's `fractionalSeconds`), years 0001-9999.
/// - A delta window bound (`startDateTime` / `endDateTime`): the same, except that a value without an offset is UTC.
/// - A `dateTimeTimeZone`: `dateTime` is a wall clock without an offset ("2025-12-03T14:00:00.0000000") read in
///   `timeZone`, a Windows zone name ("Pacific Standard Time", see `windowsZones`) or an IANA name; a missing or empty
///   `timeZone` means UTC. A `dateTime` that does carry an offset is taken at that offset.
///
/// Every field is checked (month 13, February 30, 24:00, 23:60 and seconds of 60 are refused); anything malformed
/// yields nil. Wall clocks in a daylight-saving gap or overlap resolve as Foundation's `Calendar` resolves them, and
/// (like Foundation's Gregorian calendar) dates before 1582-10-15 are Julian: nothing the simulators handle is that old.
enum SimulatorDates {
    /// The fields of one written date and time.
    struct Stamp: Equatable {
        var year, month, day: Int
        var hour, minute, second: Int
        /// The fraction of the second in nanoseconds (digits beyond the ninth are dropped).
        var nanosecond: Int
        /// Seconds east of UTC when the text ended in `Z` or `±hh:mm`.
        var offsetSeconds: Int?
    }

    /// An instant that must carry its offset (`expirationDateTime`); nil when malformed or without an offset.
    static func instant(_ text: String) -> Date? {
        guard let stamp = stamp(text), let offset = stamp.offsetSeconds else { return nil }
        return date(stamp, in: TimeZone(secondsFromGMT: offset))
    }

    /// A delta window bound (`startDateTime` / `endDateTime`): an offset governs, none means UTC; nil when malformed.
    static func windowBound(_ text: String) -> Date? {
        guard let stamp = stamp(text) else { return nil }
        return date(stamp, in: TimeZone(secondsFromGMT: stamp.offsetSeconds ?? 0))
    }

    /// The instant of a `dateTimeTimeZone` and the IANA name of its zone; nil for a malformed `dateTime` or an unknown
    /// zone name.
    static func instant(dateTime: String, timeZone: String?) -> (date: Date, zone: String)? {
        guard let zoneID = ianaZone(timeZone), let zone = TimeZone(identifier: zoneID), let stamp = stamp(dateTime) else {
            return nil
        }
        if let offset = stamp.offsetSeconds {
            guard let date = date(stamp, in: TimeZone(secondsFromGMT: offset)) else { return nil }
            return (date, zoneID)
        }
        guard let date = date(stamp, in: zone) else { return nil }
        return (date, zoneID)
    }

    /// The IANA identifier for a Graph `timeZone` value: nil, empty and "UTC" are UTC, Windows names go through
    /// `windowsZones`, anything else must be an IANA identifier Foundation knows.
    static func ianaZone(_ name: String?) -> String? {
        let trimmed = (name ?? "").trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed == "UTC" { return "UTC" }
        if let mapped = windowsZones[trimmed] { return mapped }
        return TimeZone(identifier: trimmed) != nil && trimmed.contains("/") ? trimmed : nil
    }

    /// The Windows zone names the simulators understand, with the IANA zone CLDR's windowsZones.xml gives for territory
    /// "001" (the names Outlook writes into `dateTimeTimeZone.timeZone`). Deliberately a short list: the simulated
    /// mailboxes use few zones, and an unknown name is refused rather than guessed.
    static let windowsZones: [String: String] = [
        "UTC": "UTC",
        "GMT Standard Time": "Europe/London",
        "Greenwich Standard Time": "Atlantic/Reykjavik",
        "W. Europe Standard Time": "Europe/Berlin",
        "Romance Standard Time": "Europe/Paris",
        "Central Europe Standard Time": "Europe/Budapest",
        "Central European Standard Time": "Europe/Warsaw",
        "E. Europe Standard Time": "Europe/Chisinau",
        "FLE Standard Time": "Europe/Kiev",
        "Eastern Standard Time": "America/New_York",
        "Central Standard Time": "America/Chicago",
        "Mountain Standard Time": "America/Denver",
        "US Mountain Standard Time": "America/Phoenix",
        "Pacific Standard Time": "America/Los_Angeles",
        "Alaskan Standard Time": "America/Anchorage",
        "Hawaiian Standard Time": "Pacific/Honolulu",
        "India Standard Time": "Asia/Kolkata",
        "China Standard Time": "Asia/Shanghai",
        "Tokyo Standard Time": "Asia/Tokyo",
        "AUS Eastern Standard Time": "Australia/Sydney",
    ]

    /// Parses `yyyy-MM-ddTHH:mm[:ss[.f{1,12}]][Z|±hh:mm]`, checking every field's range; nil when anything is off.
    static func stamp(_ text: String) -> Stamp? {
        var rest = Substring(text)
        func digits(_ count: Int) -> Int? {
            let head = rest.prefix(count)
            guard head.count == count, head.allSatisfy({ $0.isASCII && $0.isWholeNumber }) else { return nil }
            rest = rest.dropFirst(count)
            return Int(head)
        }
        func literal(_ character: Character) -> Bool {
            guard rest.first == character else { return false }
            rest = rest.dropFirst()
            return true
        }
        guard let year = digits(4), literal("-"), let month = digits(2), literal("-"), let day = digits(2), literal("T"),
            let hour = digits(2), literal(":"), let minute = digits(2)
        else { return nil }
        var second = 0
        var nanosecond = 0
        if literal(":") {
            guard let parsed = digits(2) else { return nil }
            second = parsed
            if literal(".") {
                let fraction = rest.prefix { $0.isASCII && $0.isWholeNumber }
                guard (1...12).contains(fraction.count) else { return nil }
                rest = rest.dropFirst(fraction.count)
                let nine = String(fraction.prefix(9))
                nanosecond = Int(nine + String(repeating: "0", count: 9 - nine.count)) ?? 0
            }
        }
        var offsetSeconds: Int?
        if literal("Z") {
            offsetSeconds = 0
        } else if let sign = rest.first, sign == "+" || sign == "-" {
            rest = rest.dropFirst()
            guard let hours = digits(2), literal(":"), let minutes = digits(2), hours <= 23, minutes <= 59 else { return nil }
            offsetSeconds = (sign == "-" ? -1 : 1) * (hours * 3600 + minutes * 60)
        }
        guard rest.isEmpty, (1...9999).contains(year), (1...12).contains(month), day >= 1,
            day <= daysIn(month: month, year: year), hour <= 23, minute <= 59, second <= 59
        else { return nil }
        return Stamp(
            year: year, month: month, day: day, hour: hour, minute: minute, second: second, nanosecond: nanosecond,
            offsetSeconds: offsetSeconds
        )
    }

    /// Days in a month of the Gregorian calendar.
    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year.isMultiple(of: 4) && (!year.isMultiple(of: 100) || year.isMultiple(of: 400)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// The instant at which a wall clock in `zone` shows the stamp's fields (the stamp's own offset is not consulted).
    static func date(_ stamp: Stamp, in zone: TimeZone?) -> Date? {
        guard let zone else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let components = DateComponents(
            year: stamp.year, month: stamp.month, day: stamp.day, hour: stamp.hour, minute: stamp.minute,
            second: stamp.second, nanosecond: stamp.nanosecond
        )
        return calendar.date(from: components)
    }
}
