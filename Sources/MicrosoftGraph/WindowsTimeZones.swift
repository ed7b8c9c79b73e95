import Foundation

/// Maps the time zone names Microsoft Graph uses (Windows zone names, UTC spellings and IANA identifiers)
/// to IANA time zone identifiers that Foundation's `TimeZone` understands.
public enum WindowsTimeZones {
    /// The IANA zone for a zone name Microsoft Graph puts in `dateTimeTimeZone.timeZone` or
    /// `recurrenceRange.recurrenceTimeZone`: Windows names ("Pacific Standard Time", "W. Europe Standard Time",
    /// "India Standard Time", ...) map through the CLDR windowsZones territory "001" table; "UTC", "tzone://Microsoft/Utc",
    /// "Etc/GMT" style and names that are already IANA identifiers known to Foundation's TimeZone are returned as
    /// a canonical IANA id ("UTC" for the UTC spellings); lookup is case-insensitive and trims whitespace. nil when unknown.
    public static func ianaIdentifier(for name: String) -> String? {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return nil }
        let key = trimmed.lowercased()

        if utcSpellings.contains(key) { return "UTC" }
        if let iana = windowsByLowercasedName[key] {
            return utcSpellings.contains(iana.lowercased()) ? "UTC" : iana
        }
        if let known = knownByLowercasedIdentifier[key] { return known }
        // IANA identifiers Foundation resolves but does not list (aliases such as "Asia/Kolkata",
        // fixed-offset "Etc/GMT+5"): accept them only when TimeZone keeps the exact spelling, which
        // rejects Foundation's custom "GMT+5" style zones.
        for candidate in [trimmed, conventionalCasing(of: trimmed)] where resolvesExactly(candidate) {
            return candidate
        }
        return nil
    }

    /// True when `TimeZone(identifier:)` accepts the identifier and reports it back unchanged.
    static func resolvesExactly(_ identifier: String) -> Bool {
        guard identifier.contains("/") else { return false }
        return TimeZone(identifier: identifier)?.identifier == identifier
    }

    /// Best-effort IANA casing for an identifier typed in another case ("asia/kolkata" → "Asia/Kolkata",
    /// "etc/gmt+5" → "Etc/GMT+5").
    static func conventionalCasing(of identifier: String) -> String {
        var result = ""
        var capitalizeNext = true
        for character in identifier {
            if character == "/" || character == "_" || character == "-" {
                result.append(character)
                capitalizeNext = true
            } else if capitalizeNext {
                result += character.uppercased()
                capitalizeNext = false
            } else {
                result += character.lowercased()
            }
        }
        for abbreviation in ["Gmt", "Utc", "Uct"] {
            result = result.replacingOccurrences(of: "Etc/\(abbreviation)", with: "Etc/\(abbreviation.uppercased())")
        }
        return result
    }

    /// Lowercased spellings of UTC (IANA aliases and Microsoft's own), all reported as "UTC".
    static let utcSpellings: Set<String> = [
        "utc", "etc/utc", "uct", "etc/uct", "gmt", "etc/gmt", "gmt0", "etc/gmt0", "gmt+0", "etc/gmt+0",
        "gmt-0", "etc/gmt-0", "greenwich", "etc/greenwich", "universal", "etc/universal", "zulu", "etc/zulu",
        "z", "tzone://microsoft/utc", "coordinated universal time",
    ]

    /// Lowercased Windows zone name → IANA identifier.
    static let windowsByLowercasedName: [String: String] = {
        var result: [String: String] = [:]
        for (windows, iana) in windowsToIANA { result[windows.lowercased()] = iana }
        for (windows, iana) in legacyWindowsToIANA where result[windows.lowercased()] == nil {
            result[windows.lowercased()] = iana
        }
        return result
    }()

    /// Lowercased identifier → identifier, for every zone Foundation lists.
    static let knownByLowercasedIdentifier: [String: String] = {
        var result: [String: String] = [:]
        for identifier in TimeZone.knownTimeZoneIdentifiers { result[identifier.lowercased()] = identifier }
        return result
    }()

    /// The CLDR windowsZones table, territory "001" (the zone CLDR considers representative of each Windows zone).
    ///
    /// Targets are CLDR's own spellings except where Linux Foundation's `TimeZone.knownTimeZoneIdentifiers`
    /// does not list the CLDR spelling; those substitutions are marked. The fixed-offset `Etc/…` targets are
    /// not listed by Foundation either, but `TimeZone(identifier:)` resolves them (there is no geographic zone
    /// at UTC−12, so they are kept as CLDR has them).
    static let windowsToIANA: [String: String] = [
        "Dateline Standard Time": "Etc/GMT+12",
        "UTC-11": "Etc/GMT+11",
        "Aleutian Standard Time": "America/Adak",
        "Hawaiian Standard Time": "Pacific/Honolulu",
        "Marquesas Standard Time": "Pacific/Marquesas",
        "Alaskan Standard Time": "America/Anchorage",
        "UTC-09": "Etc/GMT+9",
        "Pacific Standard Time (Mexico)": "America/Tijuana",
        "UTC-08": "Etc/GMT+8",
        "Pacific Standard Time": "America/Los_Angeles",
        "US Mountain Standard Time": "America/Phoenix",
        "Mountain Standard Time (Mexico)": "America/Mazatlan",
        "Mountain Standard Time": "America/Denver",
        "Yukon Standard Time": "America/Whitehorse",
        "Central America Standard Time": "America/Guatemala",
        "Central Standard Time": "America/Chicago",
        "Easter Island Standard Time": "Pacific/Easter",
        "Central Standard Time (Mexico)": "America/Mexico_City",
        "Canada Central Standard Time": "America/Regina",
        "SA Pacific Standard Time": "America/Bogota",
        "Eastern Standard Time (Mexico)": "America/Cancun",
        "Eastern Standard Time": "America/New_York",
        "Haiti Standard Time": "America/Port-au-Prince",
        "Cuba Standard Time": "America/Havana",
        // CLDR: America/Indianapolis (not listed by Linux Foundation; same zone under its current name).
        "US Eastern Standard Time": "America/Indiana/Indianapolis",
        "Turks And Caicos Standard Time": "America/Grand_Turk",
        "Paraguay Standard Time": "America/Asuncion",
        "Atlantic Standard Time": "America/Halifax",
        "Venezuela Standard Time": "America/Caracas",
        "Central Brazilian Standard Time": "America/Cuiaba",
        "SA Western Standard Time": "America/La_Paz",
        "Pacific SA Standard Time": "America/Santiago",
        "Newfoundland Standard Time": "America/St_Johns",
        "Tocantins Standard Time": "America/Araguaina",
        "E. South America Standard Time": "America/Sao_Paulo",
        "SA Eastern Standard Time": "America/Cayenne",
        // CLDR: America/Buenos_Aires (not listed by Linux Foundation; same zone under its current name).
        "Argentina Standard Time": "America/Argentina/Buenos_Aires",
        "Greenland Standard Time": "America/Godthab",
        "Montevideo Standard Time": "America/Montevideo",
        "Magallanes Standard Time": "America/Punta_Arenas",
        "Saint Pierre Standard Time": "America/Miquelon",
        "Bahia Standard Time": "America/Bahia",
        "UTC-02": "Etc/GMT+2",
        "Azores Standard Time": "Atlantic/Azores",
        "Cape Verde Standard Time": "Atlantic/Cape_Verde",
        "UTC": "Etc/UTC",
        "GMT Standard Time": "Europe/London",
        "Greenwich Standard Time": "Atlantic/Reykjavik",
        "Sao Tome Standard Time": "Africa/Sao_Tome",
        "Morocco Standard Time": "Africa/Casablanca",
        "W. Europe Standard Time": "Europe/Berlin",
        "Central Europe Standard Time": "Europe/Budapest",
        "Romance Standard Time": "Europe/Paris",
        "Central European Standard Time": "Europe/Warsaw",
        "W. Central Africa Standard Time": "Africa/Lagos",
        "Jordan Standard Time": "Asia/Amman",
        "GTB Standard Time": "Europe/Bucharest",
        "Middle East Standard Time": "Asia/Beirut",
        "Egypt Standard Time": "Africa/Cairo",
        "E. Europe Standard Time": "Europe/Chisinau",
        "Syria Standard Time": "Asia/Damascus",
        "West Bank Standard Time": "Asia/Hebron",
        "South Africa Standard Time": "Africa/Johannesburg",
        "FLE Standard Time": "Europe/Kiev",
        "Israel Standard Time": "Asia/Jerusalem",
        "South Sudan Standard Time": "Africa/Juba",
        "Kaliningrad Standard Time": "Europe/Kaliningrad",
        "Sudan Standard Time": "Africa/Khartoum",
        "Libya Standard Time": "Africa/Tripoli",
        "Namibia Standard Time": "Africa/Windhoek",
        "Arabic Standard Time": "Asia/Baghdad",
        "Turkey Standard Time": "Europe/Istanbul",
        "Arab Standard Time": "Asia/Riyadh",
        "Belarus Standard Time": "Europe/Minsk",
        "Russian Standard Time": "Europe/Moscow",
        "E. Africa Standard Time": "Africa/Nairobi",
        "Volgograd Standard Time": "Europe/Volgograd",
        "Iran Standard Time": "Asia/Tehran",
        "Arabian Standard Time": "Asia/Dubai",
        "Astrakhan Standard Time": "Europe/Astrakhan",
        "Azerbaijan Standard Time": "Asia/Baku",
        "Russia Time Zone 3": "Europe/Samara",
        "Mauritius Standard Time": "Indian/Mauritius",
        "Saratov Standard Time": "Europe/Saratov",
        "Georgian Standard Time": "Asia/Tbilisi",
        "Caucasus Standard Time": "Asia/Yerevan",
        "Afghanistan Standard Time": "Asia/Kabul",
        "West Asia Standard Time": "Asia/Tashkent",
        "Qyzylorda Standard Time": "Asia/Qyzylorda",
        "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
        "Pakistan Standard Time": "Asia/Karachi",
        "India Standard Time": "Asia/Calcutta",
        "Sri Lanka Standard Time": "Asia/Colombo",
        "Nepal Standard Time": "Asia/Katmandu",
        // Recent CLDR releases (after Kazakhstan moved Almaty to UTC+5 in 2024); older ones used Asia/Almaty.
        "Central Asia Standard Time": "Asia/Bishkek",
        "Bangladesh Standard Time": "Asia/Dhaka",
        "Omsk Standard Time": "Asia/Omsk",
        "Myanmar Standard Time": "Asia/Rangoon",
        "SE Asia Standard Time": "Asia/Bangkok",
        "Altai Standard Time": "Asia/Barnaul",
        "W. Mongolia Standard Time": "Asia/Hovd",
        "North Asia Standard Time": "Asia/Krasnoyarsk",
        "N. Central Asia Standard Time": "Asia/Novosibirsk",
        "Tomsk Standard Time": "Asia/Tomsk",
        "China Standard Time": "Asia/Shanghai",
        "North Asia East Standard Time": "Asia/Irkutsk",
        "Singapore Standard Time": "Asia/Singapore",
        "W. Australia Standard Time": "Australia/Perth",
        "Taipei Standard Time": "Asia/Taipei",
        "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar",
        "Aus Central W. Standard Time": "Australia/Eucla",
        "Transbaikal Standard Time": "Asia/Chita",
        "Tokyo Standard Time": "Asia/Tokyo",
        "North Korea Standard Time": "Asia/Pyongyang",
        "Korea Standard Time": "Asia/Seoul",
        "Yakutsk Standard Time": "Asia/Yakutsk",
        "Cen. Australia Standard Time": "Australia/Adelaide",
        "AUS Central Standard Time": "Australia/Darwin",
        "E. Australia Standard Time": "Australia/Brisbane",
        "AUS Eastern Standard Time": "Australia/Sydney",
        "West Pacific Standard Time": "Pacific/Port_Moresby",
        "Tasmania Standard Time": "Australia/Hobart",
        "Vladivostok Standard Time": "Asia/Vladivostok",
        "Lord Howe Standard Time": "Australia/Lord_Howe",
        "Bougainville Standard Time": "Pacific/Bougainville",
        "Russia Time Zone 10": "Asia/Srednekolymsk",
        "Magadan Standard Time": "Asia/Magadan",
        "Norfolk Standard Time": "Pacific/Norfolk",
        "Sakhalin Standard Time": "Asia/Sakhalin",
        "Central Pacific Standard Time": "Pacific/Guadalcanal",
        "Russia Time Zone 11": "Asia/Kamchatka",
        "New Zealand Standard Time": "Pacific/Auckland",
        "UTC+12": "Etc/GMT-12",
        "Fiji Standard Time": "Pacific/Fiji",
        "Chatham Islands Standard Time": "Pacific/Chatham",
        "UTC+13": "Etc/GMT-13",
        "Tonga Standard Time": "Pacific/Tongatapu",
        "Samoa Standard Time": "Pacific/Apia",
        "Line Islands Standard Time": "Pacific/Kiritimati",
    ]

    /// Windows zone names retired from Windows and CLDR that old Exchange data can still carry.
    static let legacyWindowsToIANA: [String: String] = [
        "Mid-Atlantic Standard Time": "Etc/GMT+2",
        "Kamchatka Standard Time": "Asia/Kamchatka",
        "Armenian Standard Time": "Asia/Yerevan",
        "Mexico Standard Time": "America/Mexico_City",
        "Mexico Standard Time 2": "America/Chihuahua",
    ]
}
