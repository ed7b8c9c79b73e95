import Foundation
import Testing
@testable import MicrosoftGraph

@Suite struct WindowsTimeZonesTests {
    static let allEntries: [(windows: String, iana: String)] =
        (WindowsTimeZones.windowsToIANA.map { ($0.key, $0.value) } + WindowsTimeZones.legacyWindowsToIANA.map { ($0.key, $0.value) })
        .sorted { $0.0 < $1.0 }

    @Test func tableIsComplete() {
        #expect(WindowsTimeZones.windowsToIANA.count >= 139)
    }

    @Test func everyTableTargetExistsInFoundation() {
        let known = Set(TimeZone.knownTimeZoneIdentifiers)
        for (windows, iana) in Self.allEntries {
            if iana.hasPrefix("Etc/") {
                // Fixed-offset zones are not listed by Linux Foundation but must resolve exactly.
                #expect(TimeZone(identifier: iana)?.identifier == iana, "\(windows) → \(iana)")
            } else {
                #expect(known.contains(iana), "\(windows) → \(iana) not in knownTimeZoneIdentifiers")
            }
        }
    }

    @Test func everyWindowsNameResolves() {
        for (windows, iana) in Self.allEntries {
            let resolved = WindowsTimeZones.ianaIdentifier(for: windows)
            #expect(resolved == (iana == "Etc/UTC" ? "UTC" : iana), "\(windows)")
            #expect(resolved.flatMap { TimeZone(identifier: $0) } != nil, "\(windows)")
        }
    }

    @Test func etcTargetsHaveTheRightOffsets() {
        let expected: [String: Int] = [
            "Dateline Standard Time": -12, "UTC-11": -11, "UTC-09": -9, "UTC-08": -8, "UTC-02": -2,
            "UTC+12": 12, "UTC+13": 13, "Mid-Atlantic Standard Time": -2,
        ]
        for (windows, hours) in expected {
            let id = WindowsTimeZones.ianaIdentifier(for: windows)
            let zone = id.flatMap { TimeZone(identifier: $0) }
            #expect(zone?.secondsFromGMT(for: Date(timeIntervalSince1970: 1_750_000_000)) == hours * 3600, "\(windows)")
        }
    }

    @Test(arguments: [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("Eastern Standard Time", "America/New_York"),
        ("Central Standard Time", "America/Chicago"),
        ("Mountain Standard Time", "America/Denver"),
        ("Central European Standard Time", "Europe/Warsaw"),
        ("Central Europe Standard Time", "Europe/Budapest"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Romance Standard Time", "Europe/Paris"),
        ("India Standard Time", "Asia/Calcutta"),
        ("Tokyo Standard Time", "Asia/Tokyo"),
        ("AUS Eastern Standard Time", "Australia/Sydney"),
        ("GMT Standard Time", "Europe/London"),
        ("Greenwich Standard Time", "Atlantic/Reykjavik"),
        ("China Standard Time", "Asia/Shanghai"),
        ("US Eastern Standard Time", "America/Indiana/Indianapolis"),
        ("Argentina Standard Time", "America/Argentina/Buenos_Aires"),
        ("Pacific Standard Time (Mexico)", "America/Tijuana"),
        ("Dateline Standard Time", "Etc/GMT+12"),
    ])
    func commonWindowsNames(windows: String, iana: String) {
        #expect(WindowsTimeZones.ianaIdentifier(for: windows) == iana)
    }

    @Test(arguments: [
        "UTC", "utc", " UTC ", "tzone://Microsoft/Utc", "TZONE://MICROSOFT/UTC", "Etc/UTC", "Etc/GMT", "GMT",
        "Etc/GMT+0", "Etc/GMT-0", "Etc/Zulu", "Zulu", "UCT", "Etc/Universal", "Coordinated Universal Time",
    ])
    func utcSpellings(name: String) {
        #expect(WindowsTimeZones.ianaIdentifier(for: name) == "UTC")
    }

    @Test func caseInsensitiveAndTrimmed() {
        #expect(WindowsTimeZones.ianaIdentifier(for: "pacific standard time") == "America/Los_Angeles")
        #expect(WindowsTimeZones.ianaIdentifier(for: "  W. EUROPE STANDARD TIME\n") == "Europe/Berlin")
        #expect(WindowsTimeZones.ianaIdentifier(for: "utc+12") == "Etc/GMT-12")
    }

    @Test(arguments: [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        ("AMERICA/PORT-AU-PRINCE", "America/Port-au-Prince"),
        (" Asia/Tokyo ", "Asia/Tokyo"),
        ("Asia/Kolkata", "Asia/Kolkata"),
        ("asia/kolkata", "Asia/Kolkata"),
        ("Etc/GMT+5", "Etc/GMT+5"),
        ("etc/gmt-3", "Etc/GMT-3"),
        ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ])
    func ianaPassThrough(name: String, expected: String) {
        #expect(WindowsTimeZones.ianaIdentifier(for: name) == expected)
    }

    @Test(arguments: [
        "", "   ", "Nowhere Standard Time", "GMT+5", "GMT+05:00", "tzone://Microsoft/Custom", "Customized Time Zone",
        "Europe/Atlantis", "Pacific", "+01:00",
    ])
    func unknownNames(name: String) {
        #expect(WindowsTimeZones.ianaIdentifier(for: name) == nil)
    }
}
