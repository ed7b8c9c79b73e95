import Foundation
import Testing
@testable import MicrosoftGraph

private typealias Pattern = GraphPatternedRecurrence.Pattern
private typealias RecurrenceRange = GraphPatternedRecurrence.Range

@Suite struct GraphRecurrenceTests {
    private func rrule(
        _ pattern: Pattern, _ range: RecurrenceRange = RecurrenceRange(type: "noEnd", startDate: "2025-01-01"),
        allDay: Bool = false, fallbackZone: String = "UTC"
    ) throws(GraphRecurrenceError) -> [String] {
        try GraphRecurrenceConverter.rrule(
            GraphPatternedRecurrence(pattern: pattern, range: range), allDay: allDay, fallbackZone: fallbackZone)
    }

    private func expectError(
        _ pattern: Pattern, _ range: RecurrenceRange = RecurrenceRange(type: "noEnd"), allDay: Bool = false,
        fallbackZone: String = "UTC", mentions: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            let lines = try rrule(pattern, range, allDay: allDay, fallbackZone: fallbackZone)
            Issue.record("expected an error, got \(lines)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.description.contains(mentions), "\(error.description)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Patterns

    @Test func daily() throws {
        #expect(try rrule(Pattern(type: "daily", interval: 1)) == ["RRULE:FREQ=DAILY;INTERVAL=1"])
        #expect(
            try rrule(
                Pattern(
                    type: "daily", interval: 3, month: 0, dayOfMonth: 0, firstDayOfWeek: "sunday",
                    index: "first")) == ["RRULE:FREQ=DAILY;INTERVAL=3"])
        #expect(try rrule(Pattern(type: "daily")) == ["RRULE:FREQ=DAILY;INTERVAL=1"])
    }

    @Test func weekly() throws {
        let pattern = Pattern(type: "weekly", interval: 2, daysOfWeek: ["wednesday", "monday"], firstDayOfWeek: "sunday")
        #expect(
            try rrule(pattern, RecurrenceRange(type: "numbered", numberOfOccurrences: 10))
                == ["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;WKST=SU;COUNT=10"])
        let weekdays = Pattern(
            type: "weekly", interval: 1,
            daysOfWeek: ["monday", "tuesday", "wednesday", "thursday", "friday"], firstDayOfWeek: "monday")
        #expect(try rrule(weekdays) == ["RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR;WKST=MO"])
        let noWeekStart = Pattern(type: "Weekly", interval: 1, daysOfWeek: ["Saturday", "sunday", "SATURDAY"])
        #expect(try rrule(noWeekStart) == ["RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=SU,SA;WKST=SU"])
    }

    @Test func absoluteMonthly() throws {
        #expect(
            try rrule(Pattern(type: "absoluteMonthly", interval: 1, dayOfMonth: 15))
                == ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=15"])
        #expect(
            try rrule(Pattern(type: "absoluteMonthly", interval: 3, month: 0, dayOfMonth: 31))
                == ["RRULE:FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=31"])
    }

    @Test func relativeMonthly() throws {
        #expect(
            try rrule(Pattern(type: "relativeMonthly", interval: 1, daysOfWeek: ["monday"], index: "first"))
                == ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=1MO"])
        #expect(
            try rrule(Pattern(type: "relativeMonthly", interval: 2, daysOfWeek: ["friday"], index: "last"))
                == ["RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR"])
        #expect(
            try rrule(Pattern(type: "relativeMonthly", interval: 1, daysOfWeek: ["thursday"], index: "second"))
                == ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=2TH"])
        #expect(
            try rrule(Pattern(type: "relativeMonthly", interval: 1, daysOfWeek: ["tuesday"], index: "third"))
                == ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=3TU"])
        #expect(
            try rrule(Pattern(type: "relativeMonthly", interval: 1, daysOfWeek: ["sunday"], index: "fourth"))
                == ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=4SU"])
        #expect(
            try rrule(Pattern(type: "relativeMonthly", interval: 1, daysOfWeek: ["sunday"]))
                == ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=1SU"])
        // Outlook's "first weekday of the month".
        let firstWeekday = Pattern(
            type: "relativeMonthly", interval: 1,
            daysOfWeek: ["monday", "tuesday", "wednesday", "thursday", "friday"], index: "first")
        #expect(try rrule(firstWeekday) == ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1"])
        let lastWeekendDay = Pattern(type: "relativeMonthly", interval: 1, daysOfWeek: ["saturday", "sunday"], index: "last")
        #expect(try rrule(lastWeekendDay) == ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=SU,SA;BYSETPOS=-1"])
    }

    @Test func absoluteYearly() throws {
        #expect(
            try rrule(Pattern(type: "absoluteYearly", interval: 1, month: 12, dayOfMonth: 25))
                == ["RRULE:FREQ=YEARLY;INTERVAL=1;BYMONTH=12;BYMONTHDAY=25"])
        #expect(
            try rrule(Pattern(type: "absoluteYearly", interval: 4, month: 2, dayOfMonth: 29))
                == ["RRULE:FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29"])
    }

    @Test func relativeYearly() throws {
        #expect(
            try rrule(Pattern(type: "relativeYearly", interval: 1, month: 11, daysOfWeek: ["thursday"], index: "fourth"))
                == ["RRULE:FREQ=YEARLY;INTERVAL=1;BYMONTH=11;BYDAY=4TH"])
        #expect(
            try rrule(Pattern(type: "relativeYearly", interval: 1, month: 5, daysOfWeek: ["monday"], index: "last"))
                == ["RRULE:FREQ=YEARLY;INTERVAL=1;BYMONTH=5;BYDAY=-1MO"])
    }

    // MARK: Ranges

    @Test func noEndAndNumbered() throws {
        let daily = Pattern(type: "daily", interval: 1)
        #expect(
            try rrule(
                daily,
                RecurrenceRange(
                    type: "noEnd", startDate: "2025-01-01", endDate: "0001-01-01",
                    recurrenceTimeZone: "Pacific Standard Time", numberOfOccurrences: 0))
                == ["RRULE:FREQ=DAILY;INTERVAL=1"])
        #expect(
            try rrule(
                daily,
                RecurrenceRange(
                    type: "numbered", startDate: "2025-01-01", endDate: "0001-01-01",
                    numberOfOccurrences: 5))
                == ["RRULE:FREQ=DAILY;INTERVAL=1;COUNT=5"])
        #expect(
            try rrule(daily, RecurrenceRange(type: "numbered", numberOfOccurrences: 1), allDay: true)
                == ["RRULE:FREQ=DAILY;INTERVAL=1;COUNT=1"])
    }

    @Test func endDateTimedUsesRecurrenceTimeZone() throws {
        let weekly = Pattern(type: "weekly", interval: 1, daysOfWeek: ["monday"], firstDayOfWeek: "sunday")
        #expect(
            try rrule(
                weekly,
                RecurrenceRange(
                    type: "endDate", startDate: "2025-01-06", endDate: "2025-12-31",
                    recurrenceTimeZone: "W. Europe Standard Time"))
                == ["RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;WKST=SU;UNTIL=20251231T225959Z"])
        // Summer: Pacific daylight time, end of day rolls into the next UTC day.
        #expect(
            try rrule(
                weekly,
                RecurrenceRange(
                    type: "endDate", endDate: "2025-06-30",
                    recurrenceTimeZone: "Pacific Standard Time"))
                == ["RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;WKST=SU;UNTIL=20250701T065959Z"])
        // IANA names work too; east of UTC the day ends earlier in UTC.
        #expect(
            try rrule(weekly, RecurrenceRange(type: "endDate", endDate: "2025-12-31", recurrenceTimeZone: "Asia/Tokyo"))
                == ["RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;WKST=SU;UNTIL=20251231T145959Z"])
        #expect(
            try rrule(weekly, RecurrenceRange(type: "endDate", endDate: "2025-12-31", recurrenceTimeZone: "UTC"))
                == ["RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;WKST=SU;UNTIL=20251231T235959Z"])
    }

    @Test func endDateTimedFallsBackToFallbackZone() throws {
        let daily = Pattern(type: "daily", interval: 1)
        #expect(
            try rrule(
                daily, RecurrenceRange(type: "endDate", endDate: "2025-12-31"),
                fallbackZone: "Eastern Standard Time")
                == ["RRULE:FREQ=DAILY;INTERVAL=1;UNTIL=20260101T045959Z"])
        #expect(
            try rrule(
                daily, RecurrenceRange(type: "endDate", endDate: "2025-12-31", recurrenceTimeZone: " "),
                fallbackZone: "America/New_York")
                == ["RRULE:FREQ=DAILY;INTERVAL=1;UNTIL=20260101T045959Z"])
        #expect(
            try rrule(
                daily, RecurrenceRange(type: "endDate", endDate: "2025-12-31", recurrenceTimeZone: nil),
                fallbackZone: "")
                == ["RRULE:FREQ=DAILY;INTERVAL=1;UNTIL=20251231T235959Z"])
    }

    @Test func endDateAllDayUsesDateForm() throws {
        let yearly = Pattern(type: "absoluteYearly", interval: 1, month: 7, dayOfMonth: 4)
        #expect(
            try rrule(
                yearly,
                RecurrenceRange(
                    type: "endDate", startDate: "2025-07-04", endDate: "2030-07-04",
                    recurrenceTimeZone: "Pacific Standard Time"), allDay: true)
                == ["RRULE:FREQ=YEARLY;INTERVAL=1;BYMONTH=7;BYMONTHDAY=4;UNTIL=20300704"])
        // All-day series ignore the zone entirely, even an unknown one.
        #expect(
            try rrule(
                Pattern(type: "daily", interval: 1),
                RecurrenceRange(type: "endDate", endDate: "2025-12-31", recurrenceTimeZone: "Custom"),
                allDay: true, fallbackZone: "nonsense")
                == ["RRULE:FREQ=DAILY;INTERVAL=1;UNTIL=20251231"])
    }

    // MARK: Errors

    @Test func patternErrors() {
        expectError(Pattern(type: "daily", interval: 0), mentions: "pattern.interval")
        expectError(Pattern(type: "weekly", interval: -1, daysOfWeek: ["monday"]), mentions: "pattern.interval")
        expectError(Pattern(type: nil, interval: 1), mentions: "pattern.type")
        expectError(Pattern(type: "  ", interval: 1), mentions: "pattern.type")
        expectError(Pattern(type: "hourly", interval: 1), mentions: "pattern.type \"hourly\"")
        expectError(Pattern(type: "weekly", interval: 1), mentions: "pattern.daysOfWeek")
        expectError(Pattern(type: "weekly", interval: 1, daysOfWeek: []), mentions: "pattern.daysOfWeek")
        expectError(Pattern(type: "weekly", interval: 1, daysOfWeek: ["monday", "funday"]), mentions: "\"funday\"")
        expectError(
            Pattern(type: "weekly", interval: 1, daysOfWeek: ["monday"], firstDayOfWeek: "moonday"),
            mentions: "pattern.firstDayOfWeek")
        expectError(Pattern(type: "absoluteMonthly", interval: 1), mentions: "pattern.dayOfMonth")
        expectError(Pattern(type: "absoluteMonthly", interval: 1, dayOfMonth: 0), mentions: "pattern.dayOfMonth")
        expectError(Pattern(type: "absoluteMonthly", interval: 1, dayOfMonth: 32), mentions: "pattern.dayOfMonth")
        expectError(Pattern(type: "relativeMonthly", interval: 1, index: "first"), mentions: "pattern.daysOfWeek")
        expectError(
            Pattern(type: "relativeMonthly", interval: 1, daysOfWeek: ["monday"], index: "fifth"),
            mentions: "pattern.index")
        expectError(Pattern(type: "absoluteYearly", interval: 1, dayOfMonth: 1), mentions: "pattern.month")
        expectError(Pattern(type: "absoluteYearly", interval: 1, month: 13, dayOfMonth: 1), mentions: "pattern.month")
        expectError(Pattern(type: "absoluteYearly", interval: 1, month: 2, dayOfMonth: 30), mentions: "pattern.dayOfMonth")
        expectError(Pattern(type: "absoluteYearly", interval: 1, month: 4, dayOfMonth: 31), mentions: "pattern.dayOfMonth")
        expectError(Pattern(type: "absoluteYearly", interval: 1, month: 4), mentions: "pattern.dayOfMonth")
        expectError(Pattern(type: "relativeYearly", interval: 1, month: 0, daysOfWeek: ["monday"]), mentions: "pattern.month")
        expectError(Pattern(type: "relativeYearly", interval: 1, month: 5), mentions: "pattern.daysOfWeek")
    }

    @Test func rangeErrors() {
        let daily = Pattern(type: "daily", interval: 1)
        expectError(daily, RecurrenceRange(type: nil), mentions: "range.type")
        expectError(daily, RecurrenceRange(type: "forever"), mentions: "range.type \"forever\"")
        expectError(daily, RecurrenceRange(type: "numbered"), mentions: "range.numberOfOccurrences")
        expectError(daily, RecurrenceRange(type: "numbered", numberOfOccurrences: 0), mentions: "range.numberOfOccurrences")
        expectError(daily, RecurrenceRange(type: "endDate"), mentions: "range.endDate")
        expectError(daily, RecurrenceRange(type: "endDate", endDate: "0001-01-01"), mentions: "range.endDate must be a valid yyyy-MM-dd date for an endDate range (got \"0001-01-01\")")
        expectError(daily, RecurrenceRange(type: "endDate", endDate: "2025-02-30"), mentions: "range.endDate")
        expectError(daily, RecurrenceRange(type: "endDate", endDate: "2025-12-31T00:00:00"), mentions: "range.endDate")
        expectError(daily, RecurrenceRange(type: "endDate", endDate: "garbage"), allDay: true, mentions: "range.endDate")
        expectError(
            daily, RecurrenceRange(type: "endDate", endDate: "2025-12-31", recurrenceTimeZone: "Atlantis"),
            mentions: "range.recurrenceTimeZone \"Atlantis\"")
        expectError(
            daily, RecurrenceRange(type: "endDate", endDate: "2025-12-31"), fallbackZone: "Nowhere",
            mentions: "fallbackZone \"Nowhere\"")
    }

    // MARK: Decoding

    @Test func decodesGraphJSONWithNulls() throws {
        let json = """
            {
              "pattern": {"type": "relativeMonthly", "interval": 1, "month": 0, "dayOfMonth": 0,
                          "daysOfWeek": ["tuesday"], "firstDayOfWeek": "sunday", "index": "second"},
              "range": {"type": "endDate", "startDate": "2025-01-14", "endDate": "2025-12-31",
                        "recurrenceTimeZone": "Pacific Standard Time", "numberOfOccurrences": 0}
            }
            """
        let recurrence = try JSONDecoder().decode(GraphPatternedRecurrence.self, from: Data(json.utf8))
        #expect(recurrence.pattern.daysOfWeek == ["tuesday"])
        #expect(
            try GraphRecurrenceConverter.rrule(recurrence, allDay: false, fallbackZone: "UTC")
                == ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=2TU;UNTIL=20260101T075959Z"])

        let sparse = """
            {"pattern": {"type": "daily", "interval": 2, "month": null, "dayOfMonth": null, "daysOfWeek": null,
                         "firstDayOfWeek": null, "index": null},
             "range": {"type": "noEnd", "startDate": "2025-01-14", "endDate": null, "recurrenceTimeZone": null,
                       "numberOfOccurrences": null}}
            """
        let decoded = try JSONDecoder().decode(GraphPatternedRecurrence.self, from: Data(sparse.utf8))
        #expect(decoded.range.endDate == nil)
        #expect(try GraphRecurrenceConverter.rrule(decoded, allDay: true, fallbackZone: "UTC") == ["RRULE:FREQ=DAILY;INTERVAL=2"])

        let minimal = #"{"pattern": {"type": "daily"}, "range": {"type": "numbered", "numberOfOccurrences": 3}}"#
        let small = try JSONDecoder().decode(GraphPatternedRecurrence.self, from: Data(minimal.utf8))
        #expect(try GraphRecurrenceConverter.rrule(small, allDay: false, fallbackZone: "UTC") == ["RRULE:FREQ=DAILY;INTERVAL=1;COUNT=3"])
    }
}
