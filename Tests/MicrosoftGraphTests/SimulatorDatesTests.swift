import Foundation
import Testing
@testable import ProviderSimulators

/// The Graph simulator's own date parsing (independent of the gateway's `GraphDateTime`), checked against instants
/// worked out by hand, and the malformed values it refuses.
@Suite("Simulator dates")
struct SimulatorDatesTests {
    func at(_ seconds: TimeInterval) -> Date { Date(timeIntervalSince1970: seconds) }

    @Test func instantsNeedAnOffset() throws {
        #expect(SimulatorDates.instant("2025-12-08T09:00:00.0000000Z") == at(1_765_184_400))
        #expect(SimulatorDates.instant("2025-12-08T09:00:00Z") == at(1_765_184_400))
        #expect(SimulatorDates.instant("2025-12-08T10:00:00+01:00") == at(1_765_184_400))
        #expect(SimulatorDates.instant("2025-12-08T04:00:00-05:00") == at(1_765_184_400))
        #expect(SimulatorDates.instant("2025-12-08T09:00Z") == at(1_765_184_400))
        let fractional = try #require(SimulatorDates.instant("2025-12-01T09:59:00.1234567Z"))
        #expect(abs(fractional.timeIntervalSince1970 - 1_764_583_140.1234567) < 0.000_01)
        #expect(SimulatorDates.instant("2000-02-29T12:00:00Z") == at(951_825_600))
        // No offset: an instant is refused, a delta window bound is UTC.
        #expect(SimulatorDates.instant("2026-12-01T10:00:00") == nil)
        #expect(SimulatorDates.windowBound("2026-12-01T10:00:00") == at(1_796_119_200))
        #expect(SimulatorDates.windowBound("2026-12-01T11:00:00+01:00") == at(1_796_119_200))
    }

    @Test func wallClocksAreReadInTheirZone() {
        func instant(_ dateTime: String, _ zone: String?) -> (date: Date, zone: String)? {
            SimulatorDates.instant(dateTime: dateTime, timeZone: zone)
        }
        #expect(instant("2025-07-01T09:00:00.0000000", "Pacific Standard Time")?.date == at(1_751_385_600))  // PDT, -7
        #expect(instant("2025-01-15T09:00:00.0000000", "Pacific Standard Time")?.date == at(1_736_960_400))  // PST, -8
        #expect(instant("2025-12-03T14:00:00.0000000", "India Standard Time")?.date == at(1_764_750_600))
        #expect(instant("2025-12-03T14:00:00.0000000", "India Standard Time")?.zone == "Asia/Kolkata")
        #expect(instant("2026-07-01T09:00:00", "Europe/Berlin")?.date == at(1_782_889_200))  // CEST, +2
        #expect(instant("2026-12-01T10:00:00.0000000", "UTC")?.date == at(1_796_119_200))
        #expect(instant("2026-12-01T10:00:00.0000000", nil)?.zone == "UTC")
        #expect(instant("2026-12-01T10:00:00.0000000", " ")?.date == at(1_796_119_200))
        // An offset written into dateTime wins over the zone.
        #expect(instant("2026-12-10T10:00:00+01:00", "Pacific Standard Time")?.date == at(1_796_893_200))
        // Unknown zones are refused rather than guessed.
        #expect(instant("2026-12-01T10:00:00", "Mars Standard Time") == nil)
        #expect(instant("2026-12-01T10:00:00", "Nowhere/Special") == nil)
    }

    @Test(arguments: [
        "", "2026-12-01", "2026-12-01T10", "2026-13-01T10:00:00Z", "2026-00-10T10:00:00Z", "2026-02-29T10:00:00Z",
        "2100-02-29T10:00:00Z", "2026-04-31T10:00:00Z", "2026-12-00T10:00:00Z", "2026-12-01T24:00:00Z",
        "2026-12-01T10:60:00Z", "2026-12-01T10:00:60Z", "2026-12-01 10:00:00Z", "2026-12-01t10:00:00Z",
        "2026-12-01T10:00:00z", "2026-12-01T10:00:00+0100", "2026-12-01T10:00:00+24:00", "2026-12-01T10:00:00+01",
        "2026-12-01T10:00:00.Z", "2026-12-01T10:00:00.1234567890123Z", "2026-12-01T10:00:00ZZ", " 2026-12-01T10:00:00Z",
        "26-12-01T10:00:00Z", "2026-1-01T10:00:00Z", "0000-12-01T10:00:00Z", "+2026-12-01T10:00:00Z",
        "２０２６-12-01T10:00:00Z", "2026-12-01T1０:00:00Z",
    ])
    func malformedValuesAreRefused(_ text: String) {
        #expect(SimulatorDates.stamp(text) == nil)
        #expect(SimulatorDates.instant(text) == nil)
        #expect(SimulatorDates.windowBound(text) == nil)
        #expect(SimulatorDates.instant(dateTime: text, timeZone: "UTC") == nil)
    }
}
