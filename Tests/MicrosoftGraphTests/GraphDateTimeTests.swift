import Foundation
import Testing
@testable import MicrosoftGraph

/// An independent oracle: a UTC instant built with Foundation's Gregorian calendar.
func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Date {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(secondsFromGMT: 0)!
    return calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))!
}

@Suite struct GraphDateTimeTests {
    func instant(_ dateTime: String, _ zone: String?) throws(GraphDateTimeError) -> (date: Date, zone: String) {
        try GraphDateTime.instant(GraphDateTimeTimeZone(dateTime: dateTime, timeZone: zone))
    }

    @Test func pacificSummerAndWinter() throws {
        let summer = try instant("2025-07-01T09:00:00.0000000", "Pacific Standard Time")
        #expect(summer.date == utc(2025, 7, 1, 16))
        #expect(summer.zone == "America/Los_Angeles")
        let winter = try instant("2025-01-15T09:00:00.0000000", "Pacific Standard Time")
        #expect(winter.date == utc(2025, 1, 15, 17))
    }

    @Test func otherZones() throws {
        #expect(try instant("2025-12-03T14:00:00.0000000", "W. Europe Standard Time").date == utc(2025, 12, 3, 13))
        #expect(try instant("2025-06-03T14:00:00.0000000", "W. Europe Standard Time").date == utc(2025, 6, 3, 12))
        #expect(try instant("2025-12-03T14:00:00.0000000", "India Standard Time").date == utc(2025, 12, 3, 8, 30))
        #expect(try instant("2025-12-03T09:00:00", "Tokyo Standard Time").date == utc(2025, 12, 3, 0))
        #expect(try instant("2025-07-01T09:00:00", "AUS Eastern Standard Time").date == utc(2025, 6, 30, 23))
        #expect(try instant("2025-01-01T09:00:00", "AUS Eastern Standard Time").date == utc(2024, 12, 31, 22))
        #expect(try instant("2025-07-01T09:00:00", "GMT Standard Time").date == utc(2025, 7, 1, 8))
        #expect(try instant("2025-07-01T09:00:00", "Eastern Standard Time").zone == "America/New_York")
        #expect(try instant("2025-07-01T09:00:00", "Europe/Paris").date == utc(2025, 7, 1, 7))
    }

    @Test func utcSpellingsAndMissingZone() throws {
        for zone in [nil, "UTC", "tzone://Microsoft/Utc", "Etc/GMT", "", "  "] as [String?] {
            let result = try instant("2025-12-03T14:00:00.0000000", zone)
            #expect(result.date == utc(2025, 12, 3, 14), "\(String(describing: zone))")
            #expect(result.zone == "UTC", "\(String(describing: zone))")
        }
    }

    @Test func sevenDigitFractions() throws {
        let result = try instant("2025-12-01T09:59:00.1234567", "UTC")
        #expect(abs(result.date.timeIntervalSince(utc(2025, 12, 1, 9, 59)) - 0.1234567) < 1e-6)
        let few = try instant("2025-12-01T09:59:00.5", nil)
        #expect(few.date == utc(2025, 12, 1, 9, 59).addingTimeInterval(0.5))
        let none = try instant("2025-12-01T09:59:00", nil)
        #expect(none.date == utc(2025, 12, 1, 9, 59))
    }

    @Test func explicitOffsetWins() throws {
        let zulu = try instant("2025-07-01T09:00:00.0000000Z", "Pacific Standard Time")
        #expect(zulu.date == utc(2025, 7, 1, 9))
        #expect(zulu.zone == "America/Los_Angeles")
        #expect(try instant("2025-07-01T09:00:00+02:00", "Pacific Standard Time").date == utc(2025, 7, 1, 7))
        #expect(
            try instant("2025-07-01T09:00:00.1234567-05:30", nil).date
                == utc(2025, 7, 1, 14, 30).addingTimeInterval(0.1234567))
    }

    @Test func daylightSavingGapMovesForwardAndOverlapTakesFirst() throws {
        // 2025-03-09 02:30 does not exist in Los Angeles; it becomes 03:30 PDT = 10:30Z.
        #expect(try instant("2025-03-09T02:30:00", "Pacific Standard Time").date == utc(2025, 3, 9, 10, 30))
        // 2025-11-02 01:30 happens twice; the first (PDT) is 08:30Z.
        #expect(try instant("2025-11-02T01:30:00", "Pacific Standard Time").date == utc(2025, 11, 2, 8, 30))
        #expect(try instant("2025-11-02T02:30:00", "Pacific Standard Time").date == utc(2025, 11, 2, 10, 30))
        // Europe: 2025-03-30 02:30 Berlin skipped → 03:30 CEST = 01:30Z.
        #expect(try instant("2025-03-30T02:30:00", "W. Europe Standard Time").date == utc(2025, 3, 30, 1, 30))
    }

    @Test func leapDayAndBounds() throws {
        #expect(try instant("2024-02-29T12:00:00", nil).date == utc(2024, 2, 29, 12))
        #expect(try instant("2000-02-29T12:00:00", nil).date == utc(2000, 2, 29, 12))
        #expect(try instant("1900-01-01T00:00:00", nil).date == utc(1900, 1, 1))
        #expect(try instant("2200-12-31T23:59:59", nil).date == utc(2200, 12, 31, 23, 59, 59))
    }

    @Test(arguments: [
        ("2025-13-01T00:00:00", "month 13"),
        ("2025-00-10T00:00:00", "month 0"),
        ("2025-02-30T00:00:00", "day 30"),
        ("2025-02-29T00:00:00", "day 29"),
        ("1900-02-29T00:00:00", "day 29"),
        ("2025-04-31T00:00:00", "day 31"),
        ("2025-01-00T00:00:00", "day 0"),
        ("1899-12-31T23:59:59", "year 1899"),
        ("2201-01-01T00:00:00", "year 2201"),
        ("2025-01-01T24:00:00", "out of range"),
        ("2025-01-01T12:60:00", "out of range"),
        ("2025-01-01T12:00:61", "out of range"),
        ("garbage", "garbage"),
        ("", "empty"),
        ("2025-01-01", "2025-01-01"),
        ("2025-1-01T00:00:00", "2025-1-01"),
        ("2025-01-01T00:00:00.", "fractional"),
        ("2025-01-01T00:00:00.1234567890", "fractional"),
        ("2025-01-01T00:00:00 junk", "junk"),
        ("2025-01-01T00:00:00+25:00", "offset"),
        ("２０２５-01-01T00:00:00", "２０２５"),
    ])
    func badDateTimes(text: String, mention: String) {
        do {
            _ = try instant(text, "UTC")
            Issue.record("expected an error for \(text)")
        } catch {
            #expect(error.description.contains(mention), "\(error.description)")
            #expect(error.description.contains("\"\(text)\""), "\(error.description)")
        }
    }

    @Test func unknownZoneThrowsNamingIt() {
        do {
            _ = try instant("2025-01-01T00:00:00", "Atlantis Standard Time")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("Atlantis Standard Time"))
        }
        #expect(throws: GraphDateTimeError.self) { try instant("2025-01-01T00:00:00Z", "GMT+5") }
    }

    @Test func wallDates() throws {
        #expect(
            try GraphDateTime.wallDate(
                GraphDateTimeTimeZone(
                    dateTime: "2025-12-25T00:00:00.0000000",
                    timeZone: "Pacific Standard Time")) == "2025-12-25")
        #expect(
            try GraphDateTime.wallDate(
                GraphDateTimeTimeZone(
                    dateTime: "2025-12-25T00:00:00.0000000",
                    timeZone: nil)) == "2025-12-25")
        #expect(
            try GraphDateTime.wallDate(
                GraphDateTimeTimeZone(
                    dateTime: "2025-12-25T05:00:00Z",
                    timeZone: "Pacific Standard Time")) == "2025-12-24")
        #expect(
            try GraphDateTime.wallDate(
                GraphDateTimeTimeZone(
                    dateTime: "2025-12-24T20:00:00Z",
                    timeZone: "Tokyo Standard Time")) == "2025-12-25")
        #expect(
            try GraphDateTime.wallDate(
                GraphDateTimeTimeZone(
                    dateTime: "1900-01-01T00:00:00",
                    timeZone: nil)) == "1900-01-01")
        #expect(throws: GraphDateTimeError.self) {
            try GraphDateTime.wallDate(GraphDateTimeTimeZone(dateTime: "2025-02-30T00:00:00", timeZone: nil))
        }
        #expect(throws: GraphDateTimeError.self) {
            try GraphDateTime.wallDate(GraphDateTimeTimeZone(dateTime: "2025-02-03T00:00:00Z", timeZone: "Nowhere"))
        }
    }

    @Test func parseInstants() {
        #expect(GraphDateTime.parseInstant("2025-01-01T00:00:00Z") == Date(timeIntervalSince1970: 1_735_689_600))
        #expect(GraphDateTime.parseInstant("2025-12-17T14:00:00Z") == utc(2025, 12, 17, 14))
        let fractional = GraphDateTime.parseInstant("2025-12-01T09:59:00.1234567Z")
        #expect(fractional.map { abs($0.timeIntervalSince(utc(2025, 12, 1, 9, 59)) - 0.1234567) < 1e-6 } == true)
        #expect(GraphDateTime.parseInstant("2025-12-17T14:00:00+00:00") == utc(2025, 12, 17, 14))
        #expect(GraphDateTime.parseInstant("2025-12-17T14:00:00-05:00") == utc(2025, 12, 17, 19))
        #expect(GraphDateTime.parseInstant("2025-12-17T14:00:00+0130") == utc(2025, 12, 17, 12, 30))
        #expect(GraphDateTime.parseInstant("2025-12-17t14:00:00z") == utc(2025, 12, 17, 14))
        #expect(GraphDateTime.parseInstant("0001-01-01T00:00:00Z") != nil)
        #expect(GraphDateTime.parseInstant("1969-12-31T23:59:59Z") == Date(timeIntervalSince1970: -1))
    }

    @Test(arguments: [
        "", "garbage", "2025-12-17T14:00:00", "2025-12-17", "2025-13-17T14:00:00Z", "2025-02-29T14:00:00Z",
        "2025-12-17T14:00:00+5", "2025-12-17T14:00:00ZZ", "0000-01-01T00:00:00Z",
    ])
    func malformedInstants(text: String) {
        #expect(GraphDateTime.parseInstant(text) == nil)
    }

    @Test func decodesFromJSON() throws {
        let json = #"{"dateTime":"2025-12-03T14:00:00.0000000","timeZone":"Pacific Standard Time"}"#
        let value = try JSONDecoder().decode(GraphDateTimeTimeZone.self, from: Data(json.utf8))
        #expect(value == GraphDateTimeTimeZone(dateTime: "2025-12-03T14:00:00.0000000", timeZone: "Pacific Standard Time"))
        let nullZone = try JSONDecoder().decode(GraphDateTimeTimeZone.self, from: Data(#"{"dateTime":"2025-12-03T14:00:00","timeZone":null}"#.utf8))
        #expect(nullZone.timeZone == nil)
    }

    @Test func concurrentUseIsSafe() async throws {
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let zone = index.isMultiple(of: 2) ? "Pacific Standard Time" : "W. Europe Standard Time"
                    let expected = index.isMultiple(of: 2) ? utc(2025, 7, 1, 16) : utc(2025, 7, 1, 7)
                    let value = GraphDateTimeTimeZone(dateTime: "2025-07-01T09:00:00.0000000", timeZone: zone)
                    return (try? GraphDateTime.instant(value).date) == expected
                }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 200)
        #expect(results.allSatisfy { $0 })
    }
}
