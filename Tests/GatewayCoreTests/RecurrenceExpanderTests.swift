import Foundation
import GatewayCore
import Testing

/// RFC 5545 expansion as reads over a range need it: every frequency, DST, exceptions, bounds, and bad rules refused.
@Suite("Recurrence expansion")
struct RecurrenceExpanderTests {
    let iso = ISO8601DateFormatter()
    func at(_ text: String) -> Date { iso.date(from: text)! }
    func strings(_ dates: [Date]) -> [String] { dates.map { iso.string(from: $0) } }

    func expand(_ rules: [String], _ start: String, zone: String = "UTC", allDay: Bool = false, from: String = "2000-01-01T00:00:00Z", to: String = "2100-01-01T00:00:00Z", duration: TimeInterval = 3600) throws -> [String] {
        strings(try RecurrenceExpander.occurrences(rules: rules, start: at(start), duration: duration, timeZone: zone, allDay: allDay, from: at(from), to: at(to)))
    }

    @Test func dailyWeeklyMonthlyYearly() throws {
        #expect(try expand(["RRULE:FREQ=DAILY;COUNT=3"], "2026-12-01T10:00:00Z") == ["2026-12-01T10:00:00Z", "2026-12-02T10:00:00Z", "2026-12-03T10:00:00Z"])
        #expect(
            try expand(["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"], "2026-11-30T09:00:00Z")
                == ["2026-11-30T09:00:00Z", "2026-12-02T09:00:00Z", "2026-12-07T09:00:00Z", "2026-12-09T09:00:00Z"])
        #expect(
            try expand(["RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=3"], "2026-12-01T09:00:00Z")
                == ["2026-12-01T09:00:00Z", "2026-12-15T09:00:00Z", "2026-12-29T09:00:00Z"])
        // The 31st skips short months.
        #expect(try expand(["RRULE:FREQ=MONTHLY;COUNT=3"], "2026-01-31T12:00:00Z") == ["2026-01-31T12:00:00Z", "2026-03-31T12:00:00Z", "2026-05-31T12:00:00Z"])
        #expect(try expand(["RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=3"], "2026-01-30T15:00:00Z") == ["2026-01-30T15:00:00Z", "2026-02-27T15:00:00Z", "2026-03-27T15:00:00Z"])
        #expect(try expand(["RRULE:FREQ=MONTHLY;BYDAY=2TU;COUNT=2"], "2026-01-13T15:00:00Z") == ["2026-01-13T15:00:00Z", "2026-02-10T15:00:00Z"])
        #expect(
            try expand(["RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3"], "2026-01-30T17:00:00Z")
                == ["2026-01-30T17:00:00Z", "2026-02-27T17:00:00Z", "2026-03-31T17:00:00Z"])
        #expect(try expand(["RRULE:FREQ=YEARLY;COUNT=3"], "2028-02-29T08:00:00Z") == ["2028-02-29T08:00:00Z", "2032-02-29T08:00:00Z", "2036-02-29T08:00:00Z"])
        #expect(try expand(["RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;COUNT=2"], "2026-03-29T08:00:00Z") == ["2026-03-29T08:00:00Z", "2027-03-28T08:00:00Z"])
    }

    @Test func wallClockIsKeptAcrossDSTAndBoundsAreHonoured() throws {
        // 09:00 in Berlin: 08:00Z in winter, 07:00Z in summer.
        let berlin = try expand(["RRULE:FREQ=WEEKLY;UNTIL=20260412T235959Z"], "2026-03-22T08:00:00Z", zone: "Europe/Berlin")
        #expect(berlin == ["2026-03-22T08:00:00Z", "2026-03-29T07:00:00Z", "2026-04-05T07:00:00Z", "2026-04-12T07:00:00Z"])
        #expect(try expand(["RRULE:FREQ=DAILY;UNTIL=20261203"], "2026-12-01T10:00:00Z").count == 3, "a date UNTIL includes that day")
        // The window: an occurrence that started before `from` but is still running is included.
        #expect(
            try expand(["RRULE:FREQ=DAILY"], "2026-12-01T10:00:00Z", from: "2026-12-05T10:30:00Z", to: "2026-12-07T00:00:00Z")
                == ["2026-12-05T10:00:00Z", "2026-12-06T10:00:00Z"])
        // An open-ended series far into the future stops at the window.
        #expect(try expand(["RRULE:FREQ=DAILY"], "2000-01-01T10:00:00Z", from: "2026-12-01T00:00:00Z", to: "2026-12-03T00:00:00Z").count == 2)
        // A rule that never matches ends instead of spinning.
        #expect(try expand(["RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"], "2026-01-30T10:00:00Z", to: "2030-01-01T00:00:00Z") == ["2026-01-30T10:00:00Z"])
        #expect(try expand(["RRULE:FREQ=DAILY;COUNT=10"], "2026-12-01T10:00:00Z").count == 10)
        #expect(
            try RecurrenceExpander.occurrences(
                rules: ["RRULE:FREQ=DAILY"], start: at("2026-12-01T10:00:00Z"), duration: 60, timeZone: "UTC", allDay: false,
                from: at("2026-12-01T00:00:00Z"), to: at("2027-12-01T00:00:00Z"), limit: 5
            ).count == 5)
    }

    @Test func exdatesAndRdates() throws {
        let rules = [
            "RRULE:FREQ=DAILY;COUNT=5", "EXDATE;TZID=Europe/Berlin:20261202T110000", "EXDATE:20261203T100000Z,20261204T100000Z",
            "RDATE:20261220T100000Z",
        ]
        #expect(try expand(rules, "2026-12-01T10:00:00Z") == ["2026-12-01T10:00:00Z", "2026-12-05T10:00:00Z", "2026-12-20T10:00:00Z"])
        #expect(
            try expand(["RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE;VALUE=DATE:20261208"], "2026-12-01T00:00:00Z", allDay: true, duration: 86_400)
                == ["2026-12-01T00:00:00Z", "2026-12-15T00:00:00Z"])
        #expect(try expand([], "2026-12-01T10:00:00Z") == ["2026-12-01T10:00:00Z"], "no RRULE: just the start")
        #expect(try expand(["X-GOOGLE-FOO:1", "RRULE:FREQ=DAILY;COUNT=1"], "2026-12-01T10:00:00Z").count == 1, "unknown properties are ignored")
    }

    @Test(arguments: [
        (["RRULE:FREQ=HOURLY"], "unsupported"), (["RRULE:INTERVAL=2"], "no FREQ"), (["RRULE:FREQ=DAILY;INTERVAL=0"], "INTERVAL"),
        (["RRULE:FREQ=DAILY;COUNT=2;UNTIL=20261231"], "COUNT and UNTIL"), (["RRULE:FREQ=WEEKLY;BYDAY=XX"], "bad day name"),
        (["RRULE:FREQ=WEEKLY;BYDAY=2MO"], "BYDAY ordinal"), (["RRULE:FREQ=MONTHLY;BYMONTHDAY=32"], "BYMONTHDAY"), (["RRULE:FREQ=DAILY;BYWEEKNO=3"], "BYWEEKNO"),
        (["RRULE:FREQ=DAILY;UNTIL=2026"], "UNTIL"), (["EXDATE:tomorrow"], "EXDATE"), (["EXDATE;TZID=Mars/Base:20261201T100000"], "TZID"),
        (["RRULE:FREQ=DAILY", "RRULE:FREQ=WEEKLY"], "more than one"), (["RRULE FREQ=DAILY"], "malformed line"),
    ])
    func badRulesAreRefusedByName(rules: [String], mention: String) {
        #expect {
            _ = try RecurrenceExpander.occurrences(
                rules: rules, start: at("2026-12-01T10:00:00Z"), duration: 60, timeZone: "UTC", allDay: false,
                from: at("2026-01-01T00:00:00Z"), to: at("2027-01-01T00:00:00Z"))
        } throws: { ($0 as? RecurrenceError)?.description.contains(mention) == true }
    }
}
