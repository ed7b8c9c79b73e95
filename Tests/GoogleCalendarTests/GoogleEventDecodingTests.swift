import Foundation
import GatewayCore
@testable import GoogleCalendar
import Testing

/// `GoogleEventsPage(json:)` reads what `JSONDecoder` read, and names the field when a response has the wrong shape.
@Suite("Google events page decoding")
struct GoogleEventDecodingTests {
    let page = #"""
        {"kind": "calendar#events", "nextSyncToken": "CPDAlvWDx70CEPDAlvWDx70CGAU=", "items": [
          {"id": "e1", "status": "confirmed", "summary": "Review \u2014 \"Q4\"", "updated": "2026-11-20T10:00:00.123Z",
           "start": {"dateTime": "2026-11-26T09:00:00+01:00", "timeZone": "Europe/Berlin"},
           "end": {"dateTime": "2026-11-26T10:00:00+01:00", "timeZone": "Europe/Berlin"},
           "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TH"], "iCalUID": "e1@google.com",
           "attendees": [{"email": "A@Example.com", "responseStatus": "accepted"}, {"displayName": "no address"}],
           "extendedProperties": {"private": {"calgateId": "lc-9"}, "shared": {"x": "y"}}},
          {"id": "e1_20261203T080000Z", "status": "cancelled", "recurringEventId": "e1",
           "originalStartTime": {"dateTime": "2026-12-03T09:00:00+01:00"}},
          {"id": "allday", "start": {"date": "2026-12-24"}, "end": {"date": "2026-12-25"}, "unknownField": [1, {"a": null}]}
        ]}
        """#

    @Test func readsTheSameEventsAsJSONDecoder() throws {
        let ours = try GoogleEventsPage(json: JSONValue.parse(Data(page.utf8)))
        let foundation = try JSONDecoder().decode(GoogleEventsPage.self, from: Data(page.utf8))
        #expect(ours.items == foundation.items)
        #expect(ours.nextSyncToken == foundation.nextSyncToken)
        #expect(ours.nextPageToken == nil)
        #expect(ours.items[0].extendedProperties?.private?["calgateId"] == "lc-9")
        #expect(ours.items[0].attendees?.compactMap(\.email) == ["A@Example.com"])
        #expect(try GoogleEventsPage(json: JSONValue.parse(Data(#"{"nextPageToken": "p2"}"#.utf8))).items.isEmpty)
    }

    @Test func wrongShapesNameTheField() throws {
        let cases: [(String, String)] = [
            (#"[]"#, "the page is not an object"),
            (#"{"items": {}}"#, "items must be an array"),
            (#"{"items": [{"summary": "no id"}]}"#, "items[0].id is missing"),
            (#"{"items": [{"id": 5}]}"#, "items[0].id must be a string"),
            (#"{"items": [{"id": "a", "start": "2026-11-26"}]}"#, "items[0].start must be an object"),
            (#"{"items": [{"id": "a", "recurrence": [1]}]}"#, "items[0].recurrence must hold strings"),
            (#"{"items": [{"id": "a", "attendees": [{"email": 1}]}]}"#, "items[0].attendees[0].email must be a string"),
            (#"{"items": [{"id": "a", "extendedProperties": {"private": {"k": 1}}}]}"#, "items[0].extendedProperties.private.k must be a string"),
            (#"{"nextSyncToken": 7}"#, "page.nextSyncToken must be a string"),
        ]
        for (json, expected) in cases {
            do {
                _ = try GoogleEventsPage(json: JSONValue.parse(Data(json.utf8)))
                Issue.record("accepted \(json)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
