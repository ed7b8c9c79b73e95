import Foundation
import Testing
@testable import GatewayCore

private func d(_ iso: String) -> Date {
    // swiftlint:disable:next force_try
    try! Date(iso, strategy: .iso8601)
}

private let wideFrom = d("2000-01-01T00:00:00Z")
private let wideTo = d("2100-01-01T00:00:00Z")

private func expand(
    _ rules: [String], start: String, duration: TimeInterval = 3600, tz: String = "UTC", allDay: Bool = false,
    from: Date = wideFrom, to: Date = wideTo, limit: Int = 5000
) throws -> [Date] {
    try RecurrenceExpander.occurrences(
        rules: rules, start: d(start), duration: duration, timeZone: tz, allDay: allDay,
        from: from, to: to, limit: limit)
}

@Suite("RRULE expander, case by case") struct RRuleExpanderCaseTests {
    @Test func dailyWithCount() throws {
        let result = try expand(["RRULE:FREQ=DAILY;COUNT=5"], start: "2026-03-01T10:00:00Z")
        #expect(
            result == [
                d("2026-03-01T10:00:00Z"), d("2026-03-02T10:00:00Z"), d("2026-03-03T10:00:00Z"),
                d("2026-03-04T10:00:00Z"), d("2026-03-05T10:00:00Z"),
            ])
    }

    @Test func dailyIntervalWithUntil() throws {
        let result = try expand(["RRULE:FREQ=DAILY;INTERVAL=3;UNTIL=20260310T100000Z"], start: "2026-03-01T10:00:00Z")
        #expect(
            result == [
                d("2026-03-01T10:00:00Z"), d("2026-03-04T10:00:00Z"), d("2026-03-07T10:00:00Z"), d("2026-03-10T10:00:00Z"),
            ])
    }

    /// DTSTART is Sunday 2026-01-04. With WKST=MO the first period is the week Mon 2025-12-29..Sun 01-04 (its MO/WE/FR
    /// lie before DTSTART), so the next period is two weeks later (Jan 12). With WKST=SU the first period starts on
    /// DTSTART itself, so Jan 5/7/9 belong to it.
    @Test func weeklyIntervalTwoWeekStartMatters() throws {
        let mo = try expand(["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;WKST=MO;COUNT=7"], start: "2026-01-04T09:00:00Z")
        #expect(
            mo == [
                d("2026-01-04T09:00:00Z"),
                d("2026-01-12T09:00:00Z"), d("2026-01-14T09:00:00Z"), d("2026-01-16T09:00:00Z"),
                d("2026-01-26T09:00:00Z"), d("2026-01-28T09:00:00Z"), d("2026-01-30T09:00:00Z"),
            ])
        let su = try expand(["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;WKST=SU;COUNT=7"], start: "2026-01-04T09:00:00Z")
        #expect(
            su == [
                d("2026-01-04T09:00:00Z"),
                d("2026-01-05T09:00:00Z"), d("2026-01-07T09:00:00Z"), d("2026-01-09T09:00:00Z"),
                d("2026-01-19T09:00:00Z"), d("2026-01-21T09:00:00Z"), d("2026-01-23T09:00:00Z"),
            ])
        // Default WKST is MO.
        let none = try expand(["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;COUNT=7"], start: "2026-01-04T09:00:00Z")
        #expect(none == mo)
    }

    @Test func weeklyWithoutByDayUsesStartWeekday() throws {
        let result = try expand(["RRULE:FREQ=WEEKLY;COUNT=3"], start: "2026-01-06T09:00:00Z")  // Tuesday
        #expect(result == [d("2026-01-06T09:00:00Z"), d("2026-01-13T09:00:00Z"), d("2026-01-20T09:00:00Z")])
    }

    @Test func countCountsStartEvenIfItDoesNotMatchByDay() throws {
        let result = try expand(["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3"], start: "2026-01-06T09:00:00Z")  // Tuesday
        #expect(result == [d("2026-01-06T09:00:00Z"), d("2026-01-12T09:00:00Z"), d("2026-01-19T09:00:00Z")])
    }

    @Test func monthlyOn31stSkipsShortMonths() throws {
        let expected = [
            d("2026-01-31T12:00:00Z"), d("2026-03-31T12:00:00Z"), d("2026-05-31T12:00:00Z"),
            d("2026-07-31T12:00:00Z"), d("2026-08-31T12:00:00Z"),
        ]
        #expect(try expand(["RRULE:FREQ=MONTHLY;BYMONTHDAY=31;COUNT=5"], start: "2026-01-31T12:00:00Z") == expected)
        // Default day comes from DTSTART.
        #expect(try expand(["RRULE:FREQ=MONTHLY;COUNT=5"], start: "2026-01-31T12:00:00Z") == expected)
    }

    @Test func monthlyNegativeMonthDay() throws {
        let result = try expand(["RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=4"], start: "2026-01-31T12:00:00Z")
        #expect(
            result == [
                d("2026-01-31T12:00:00Z"), d("2026-02-28T12:00:00Z"), d("2026-03-31T12:00:00Z"), d("2026-04-30T12:00:00Z"),
            ])
    }

    @Test func monthlyLastFriday() throws {
        let result = try expand(["RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=4"], start: "2026-01-30T15:00:00Z")
        #expect(
            result == [
                d("2026-01-30T15:00:00Z"), d("2026-02-27T15:00:00Z"), d("2026-03-27T15:00:00Z"), d("2026-04-24T15:00:00Z"),
            ])
    }

    @Test func monthlySecondTuesday() throws {
        let result = try expand(["RRULE:FREQ=MONTHLY;BYDAY=2TU;COUNT=4"], start: "2026-01-13T15:00:00Z")
        #expect(
            result == [
                d("2026-01-13T15:00:00Z"), d("2026-02-10T15:00:00Z"), d("2026-03-10T15:00:00Z"), d("2026-04-14T15:00:00Z"),
            ])
    }

    @Test func lastWeekdayOfMonthViaSetPos() throws {
        let result = try expand(
            ["RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=5"], start: "2026-01-30T08:00:00Z")
        #expect(
            result == [
                d("2026-01-30T08:00:00Z"), d("2026-02-27T08:00:00Z"), d("2026-03-31T08:00:00Z"),
                d("2026-04-30T08:00:00Z"), d("2026-05-29T08:00:00Z"),
            ])
    }

    @Test func firstAndLastWeekdayViaPositiveAndNegativeSetPos() throws {
        let result = try expand(
            ["RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1,-1;COUNT=5"], start: "2026-01-01T08:00:00Z")
        // Jan 1 (Thu) first weekday, Jan 30 last; Feb 2 (Mon) first, Feb 27 last.
        #expect(
            result == [
                d("2026-01-01T08:00:00Z"), d("2026-01-30T08:00:00Z"), d("2026-02-02T08:00:00Z"),
                d("2026-02-27T08:00:00Z"), d("2026-03-02T08:00:00Z"),
            ])
    }

    @Test func yearlyOnLeapDay() throws {
        let result = try expand(["RRULE:FREQ=YEARLY;COUNT=3"], start: "2024-02-29T10:00:00Z")
        #expect(result == [d("2024-02-29T10:00:00Z"), d("2028-02-29T10:00:00Z"), d("2032-02-29T10:00:00Z")])
    }

    @Test func yearlyByMonthAndByDay() throws {
        // Thanksgiving: fourth Thursday of November.
        let result = try expand(["RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;COUNT=3"], start: "2026-11-26T17:00:00Z")
        #expect(result == [d("2026-11-26T17:00:00Z"), d("2027-11-25T17:00:00Z"), d("2028-11-23T17:00:00Z")])
    }

    @Test func untilDateVersusDateTime() throws {
        let start = "2026-05-01T07:00:00Z"  // 09:00 Europe/Berlin (CEST)
        let three = [d("2026-05-01T07:00:00Z"), d("2026-05-02T07:00:00Z"), d("2026-05-03T07:00:00Z")]
        let two = Array(three.prefix(2))
        let berlin = "Europe/Berlin"
        #expect(try expand(["RRULE:FREQ=DAILY;UNTIL=20260503"], start: start, tz: berlin) == three)
        #expect(try expand(["RRULE:FREQ=DAILY;UNTIL=20260503T070000Z"], start: start, tz: berlin) == three)
        #expect(try expand(["RRULE:FREQ=DAILY;UNTIL=20260503T065959Z"], start: start, tz: berlin) == two)
        // Floating local date-time, interpreted in the series zone.
        #expect(try expand(["RRULE:FREQ=DAILY;UNTIL=20260503T090000"], start: start, tz: berlin) == three)
        #expect(try expand(["RRULE:FREQ=DAILY;UNTIL=20260503T085959"], start: start, tz: berlin) == two)
    }

    @Test func untilDateMeansEndOfDayInSeriesZone() throws {
        // 22:00 in New York is 02:00Z the next day; UNTIL=20260503 still includes the 22:00 occurrence of May 3.
        let result = try expand(
            ["RRULE:FREQ=DAILY;UNTIL=20260503"], start: "2026-05-02T02:00:00Z", tz: "America/New_York")
        #expect(result == [d("2026-05-02T02:00:00Z"), d("2026-05-03T02:00:00Z"), d("2026-05-04T02:00:00Z")])
    }

    @Test func berlinWeeklyStaysAtNineAcrossDST() throws {
        let rules = ["RRULE:FREQ=WEEKLY;BYDAY=MO"]
        let start = "2026-03-16T08:00:00Z"  // Monday 09:00 CET
        let spring = try expand(
            rules, start: start, tz: "Europe/Berlin", from: d("2026-03-16T00:00:00Z"), to: d("2026-04-07T00:00:00Z"))
        #expect(
            spring == [
                d("2026-03-16T08:00:00Z"), d("2026-03-23T08:00:00Z"),  // CET (UTC+1)
                d("2026-03-30T07:00:00Z"), d("2026-04-06T07:00:00Z"),  // CEST (UTC+2) after Mar 29
            ])
        let autumn = try expand(
            rules, start: start, tz: "Europe/Berlin", from: d("2026-10-12T00:00:00Z"), to: d("2026-11-03T00:00:00Z"))
        #expect(
            autumn == [
                d("2026-10-12T07:00:00Z"), d("2026-10-19T07:00:00Z"),  // CEST
                d("2026-10-26T08:00:00Z"), d("2026-11-02T08:00:00Z"),  // CET after Oct 25
            ])
    }

    @Test func dstGapAndOverlapFollowRFC5545() throws {
        // 02:30 does not exist on 2026-03-29 in Berlin (becomes 03:30 CEST) and occurs twice on 2026-10-25 (first one).
        let spring = try expand(["RRULE:FREQ=DAILY;COUNT=3"], start: "2026-03-28T01:30:00Z", tz: "Europe/Berlin")
        #expect(spring == [d("2026-03-28T01:30:00Z"), d("2026-03-29T01:30:00Z"), d("2026-03-30T00:30:00Z")])
        let autumn = try expand(["RRULE:FREQ=DAILY;COUNT=3"], start: "2026-10-24T00:30:00Z", tz: "Europe/Berlin")
        #expect(autumn == [d("2026-10-24T00:30:00Z"), d("2026-10-25T00:30:00Z"), d("2026-10-26T01:30:00Z")])
    }

    @Test func byHourExpandsWithinDay() throws {
        let result = try expand(["RRULE:FREQ=DAILY;BYHOUR=9,17;COUNT=4"], start: "2026-01-01T09:00:00Z")
        #expect(
            result == [
                d("2026-01-01T09:00:00Z"), d("2026-01-01T17:00:00Z"), d("2026-01-02T09:00:00Z"), d("2026-01-02T17:00:00Z"),
            ])
    }

    @Test func allDayWeekly() throws {
        let result = try expand(
            ["RRULE:FREQ=WEEKLY;COUNT=3"], start: "2026-01-05T00:00:00Z", duration: 86_400,
            tz: "America/Los_Angeles", allDay: true)
        #expect(result == [d("2026-01-05T00:00:00Z"), d("2026-01-12T00:00:00Z"), d("2026-01-19T00:00:00Z")])
        let excluded = try expand(
            ["RRULE:FREQ=WEEKLY;UNTIL=20260126", "EXDATE;VALUE=DATE:20260112"], start: "2026-01-05T00:00:00Z",
            duration: 86_400, tz: "America/Los_Angeles", allDay: true)
        #expect(excluded == [d("2026-01-05T00:00:00Z"), d("2026-01-19T00:00:00Z"), d("2026-01-26T00:00:00Z")])
    }

    /// Mondays 09:00 Berlin (CET, 08:00Z) from 2026-11-30: Dec 7, 14, 21, 28, Jan 4.
    @Test func exdateForms() throws {
        let rule = "RRULE:FREQ=WEEKLY;COUNT=6"
        let start = "2026-11-30T08:00:00Z"
        let all = [
            d("2026-11-30T08:00:00Z"), d("2026-12-07T08:00:00Z"), d("2026-12-14T08:00:00Z"),
            d("2026-12-21T08:00:00Z"), d("2026-12-28T08:00:00Z"), d("2027-01-04T08:00:00Z"),
        ]
        #expect(try expand([rule], start: start, tz: "Europe/Berlin") == all)
        let withTZID = try expand([rule, "EXDATE;TZID=Europe/Berlin:20261207T090000"], start: start, tz: "Europe/Berlin")
        #expect(withTZID == all.filter { $0 != d("2026-12-07T08:00:00Z") })
        let withZ = try expand([rule, "EXDATE:20261214T080000Z"], start: start, tz: "Europe/Berlin")
        #expect(withZ == all.filter { $0 != d("2026-12-14T08:00:00Z") })
        let withDate = try expand([rule, "EXDATE;VALUE=DATE:20261221"], start: start, tz: "Europe/Berlin")
        #expect(withDate == all.filter { $0 != d("2026-12-21T08:00:00Z") })
        let multiple = try expand(
            [rule, "EXDATE;TZID=Europe/Berlin:20261207T090000,20261228T090000", "EXDATE:20261130T080000Z"],
            start: start, tz: "Europe/Berlin")
        #expect(multiple == [d("2026-12-14T08:00:00Z"), d("2026-12-21T08:00:00Z"), d("2027-01-04T08:00:00Z")])
        // An EXDATE that matches no occurrence (wrong time) removes nothing and does not change COUNT.
        let miss = try expand([rule, "EXDATE;TZID=Europe/Berlin:20261208T100000"], start: start, tz: "Europe/Berlin")
        #expect(miss == all)
    }

    @Test func rdateAddsOccurrences() throws {
        let result = try expand(
            [
                "RRULE:FREQ=WEEKLY;COUNT=2",
                "RDATE;TZID=America/New_York:20261230T150000",  // 20:00Z (EST)
                "RDATE:20261231T120000Z,20261209T090000Z",  // second value duplicates an occurrence
                "RDATE;VALUE=DATE:20270102",  // date only: DTSTART's local time of day
                "X-FOO:ignored",
            ],
            start: "2026-12-02T09:00:00Z", tz: "UTC")
        #expect(
            result == [
                d("2026-12-02T09:00:00Z"), d("2026-12-09T09:00:00Z"), d("2026-12-30T20:00:00Z"),
                d("2026-12-31T12:00:00Z"), d("2027-01-02T09:00:00Z"),
            ])
    }

    @Test func noRRuleIsJustStartPlusRDates() throws {
        let result = try expand(
            ["RDATE:20260110T090000Z", "X-GOOGLE-SOMETHING;FOO=bar:whatever", ""], start: "2026-01-05T09:00:00Z")
        #expect(result == [d("2026-01-05T09:00:00Z"), d("2026-01-10T09:00:00Z")])
        #expect(try expand([], start: "2026-01-05T09:00:00Z") == [d("2026-01-05T09:00:00Z")])
    }

    @Test func windowFiltering() throws {
        // Daily 09:00Z-11:00Z.
        let rules = ["RRULE:FREQ=DAILY"]
        let result = try expand(
            rules, start: "2026-06-01T09:00:00Z", duration: 7_200,
            from: d("2026-06-03T10:00:00Z"), to: d("2026-06-05T09:00:00Z"))
        // Jun 3 started before `from` but overlaps it; Jun 5 starts exactly at `to` (exclusive).
        #expect(result == [d("2026-06-03T09:00:00Z"), d("2026-06-04T09:00:00Z")])
        let touching = try expand(
            rules, start: "2026-06-01T09:00:00Z", duration: 7_200,
            from: d("2026-06-03T11:00:00Z"), to: d("2026-06-04T12:00:00Z"))
        #expect(touching == [d("2026-06-04T09:00:00Z")])
        // DTSTART itself outside the window.
        let late = try expand(
            ["RRULE:FREQ=DAILY;COUNT=3"], start: "2026-06-01T09:00:00Z",
            from: d("2026-06-02T00:00:00Z"), to: d("2026-06-10T00:00:00Z"))
        #expect(late == [d("2026-06-02T09:00:00Z"), d("2026-06-03T09:00:00Z")])
    }

    @Test func farWindowWithoutCount() throws {
        // Started decades ago; the window is far away.
        let result = try expand(
            ["RRULE:FREQ=WEEKLY;BYDAY=TU,TH"], start: "1990-01-02T14:00:00Z", tz: "UTC",
            from: d("2026-01-05T00:00:00Z"), to: d("2026-01-12T00:00:00Z"))
        #expect(result == [d("2026-01-06T14:00:00Z"), d("2026-01-08T14:00:00Z")])
    }

    @Test func limitCapsResult() throws {
        let result = try expand(["RRULE:FREQ=DAILY"], start: "2026-01-01T09:00:00Z", limit: 3)
        #expect(result == [d("2026-01-01T09:00:00Z"), d("2026-01-02T09:00:00Z"), d("2026-01-03T09:00:00Z")])
        #expect(try expand(["RRULE:FREQ=DAILY"], start: "2026-01-01T09:00:00Z", limit: 0).isEmpty)
        let unbounded = try expand(["RRULE:FREQ=DAILY"], start: "2026-01-01T09:00:00Z")
        #expect(unbounded.count == 5000)
    }

    @Test func impossibleRuleTerminates() throws {
        let clock = ContinuousClock()
        let began = clock.now
        for freq in ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"] {
            let result = try expand(
                ["RRULE:FREQ=\(freq);BYMONTHDAY=30;BYMONTH=2"], start: "2026-01-01T09:00:00Z",
                from: d("2026-01-02T00:00:00Z"), to: .distantFuture)
            #expect(result.isEmpty, "\(freq)")
        }
        #expect(clock.now - began < .seconds(20))
    }

    @Test func concurrentCallsAgree() async throws {
        let expected = try expand(["RRULE:FREQ=WEEKLY;BYDAY=MO"], start: "2026-03-16T08:00:00Z", tz: "Europe/Berlin", limit: 50)
        try await withThrowingTaskGroup(of: [Date].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try expand(["RRULE:FREQ=WEEKLY;BYDAY=MO"], start: "2026-03-16T08:00:00Z", tz: "Europe/Berlin", limit: 50)
                }
            }
            for try await result in group {
                #expect(result == expected)
            }
        }
    }

    struct ErrorCase: Sendable, CustomStringConvertible {
        let rules: [String]
        let fragment: String
        var timeZone = "UTC"
        var description: String { rules.joined(separator: " | ") + " [tz \(timeZone)]" }
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(rules: ["RRULE:FREQ=HOURLY"], fragment: "unsupported"),
        ErrorCase(rules: ["RRULE:FREQ=MINUTELY"], fragment: "unsupported"),
        ErrorCase(rules: ["RRULE:FREQ=SECONDLY"], fragment: "unsupported"),
        ErrorCase(rules: ["RRULE:FREQ=FORTNIGHTLY"], fragment: "FREQ=FORTNIGHTLY"),
        ErrorCase(rules: ["RRULE:INTERVAL=2"], fragment: "no FREQ"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;COUNT=3;UNTIL=20261231"], fragment: "COUNT and UNTIL"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;INTERVAL=0"], fragment: "INTERVAL"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;INTERVAL=abc"], fragment: "malformed number \"ABC\""),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;COUNT=x1"], fragment: "malformed number"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;COUNT=0"], fragment: "COUNT"),
        ErrorCase(rules: ["RRULE:FREQ=WEEKLY;BYDAY=1MO"], fragment: "only allowed with FREQ=MONTHLY or YEARLY"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;BYDAY=-1FR"], fragment: "only allowed"),
        ErrorCase(rules: ["RRULE:FREQ=MONTHLY;BYDAY=6MO"], fragment: "out of range"),
        ErrorCase(rules: ["RRULE:FREQ=MONTHLY;BYDAY=0MO"], fragment: "out of range"),
        ErrorCase(rules: ["RRULE:FREQ=YEARLY;BYDAY=54MO"], fragment: "out of range"),
        ErrorCase(rules: ["RRULE:FREQ=MONTHLY;BYDAY=+MO"], fragment: "malformed BYDAY ordinal"),
        ErrorCase(rules: ["RRULE:FREQ=WEEKLY;BYDAY=MO,XX"], fragment: "bad day name \"XX\""),
        ErrorCase(rules: ["RRULE:FREQ=WEEKLY;BYDAY=MONDAY"], fragment: "bad day name"),
        ErrorCase(rules: ["RRULE:FREQ=WEEKLY;BYDAY=MO,"], fragment: "empty item"),
        ErrorCase(rules: ["RRULE:FREQ=WEEKLY;WKST=XY"], fragment: "bad day name \"XY\""),
        ErrorCase(rules: ["RRULE:FREQ=MONTHLY;BYMONTHDAY=32"], fragment: "BYMONTHDAY"),
        ErrorCase(rules: ["RRULE:FREQ=MONTHLY;BYMONTHDAY=0"], fragment: "BYMONTHDAY"),
        ErrorCase(rules: ["RRULE:FREQ=MONTHLY;BYMONTHDAY=-32"], fragment: "BYMONTHDAY"),
        ErrorCase(rules: ["RRULE:FREQ=YEARLY;BYMONTH=13"], fragment: "BYMONTH"),
        ErrorCase(rules: ["RRULE:FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0"], fragment: "BYSETPOS"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;BYHOUR=24"], fragment: "BYHOUR"),
        ErrorCase(rules: ["RRULE:FREQ=YEARLY;BYYEARDAY=100"], fragment: "BYYEARDAY is unsupported"),
        ErrorCase(rules: ["RRULE:FREQ=YEARLY;BYWEEKNO=20"], fragment: "BYWEEKNO is unsupported"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;X-NAME=1"], fragment: "X-NAME=1"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;FREQ=WEEKLY"], fragment: "duplicate RRULE part FREQ"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;COUNT"], fragment: "malformed RRULE part \"COUNT\""),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;UNTIL=20261332"], fragment: "bad date \"20261332\""),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;UNTIL=20260230"], fragment: "bad date"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY;UNTIL=2026-12-31"], fragment: "bad date"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY", "RRULE:FREQ=WEEKLY"], fragment: "more than one RRULE"),
        ErrorCase(rules: ["RRULE FREQ=DAILY"], fragment: "malformed line"),
        ErrorCase(rules: ["RRULE;FREQ=DAILY"], fragment: "malformed line"),
        ErrorCase(rules: ["EXDATE 20261215T090000Z"], fragment: "malformed line"),
        ErrorCase(rules: ["EXRULE:FREQ=DAILY"], fragment: "EXRULE"),
        ErrorCase(rules: ["EXDATE:20261315T090000Z"], fragment: "bad date \"20261315T090000Z\""),
        ErrorCase(rules: ["EXDATE:20261215T250000Z"], fragment: "bad date"),
        ErrorCase(rules: ["EXDATE:20261215T0900"], fragment: "bad date"),
        ErrorCase(rules: ["EXDATE:20261215T090000Z,"], fragment: "bad date \"\""),
        ErrorCase(rules: ["EXDATE;TZID=Mars/Olympus_Mons:20261215T090000"], fragment: "unknown time zone \"Mars/Olympus_Mons\""),
        ErrorCase(rules: ["RDATE:tomorrow"], fragment: "bad date \"tomorrow\""),
        ErrorCase(rules: ["RDATE;TZID=Nowhere/City:20261230T150000"], fragment: "unknown time zone"),
        ErrorCase(rules: ["RDATE;VALUE=BINARY:AAAA"], fragment: "VALUE=BINARY"),
        ErrorCase(rules: ["RRULE:FREQ=DAILY"], fragment: "unknown time zone \"Europe/Atlantis\"", timeZone: "Europe/Atlantis"),
    ]

    @Test(arguments: errorCases)
    func errors(_ testCase: ErrorCase) {
        do {
            let result = try RecurrenceExpander.occurrences(
                rules: testCase.rules, start: d("2026-01-05T09:00:00Z"), duration: 3600, timeZone: testCase.timeZone,
                allDay: false, from: wideFrom, to: wideTo)
            Issue.record("expected an error, got \(result.count) occurrences")
        } catch {
            #expect(error.description.contains(testCase.fragment), "\(error.description)")
        }
    }
}
