import Foundation
import Testing

@testable import GatewayCore

/// The calendar verification records in an inbox row.
@Suite("Inbox entry calendar")
struct InboxEntryCalendarTests {
    @Test func theCalendarIsRecordedOnceKnownAndOtherwiseAbsent() {
        let entry = InboxEntry(provider: .google, channelID: "ch", kind: "exists", receivedAt: Date(timeIntervalSince1970: 0), headers: ["x-goog-resource-id": "r"])
        #expect(entry.calendarKey == nil)
        #expect(entry.naming(calendar: nil) == entry)
        #expect(entry.naming(calendar: "") == entry)
        let named = entry.naming(calendar: "gc_1/primary")
        #expect(named.calendarKey == "gc_1/primary")
        #expect(named.headers["x-goog-resource-id"] == "r")
        #expect(named.naming(calendar: "gc_1/other").calendarKey == "gc_1/other")
    }
}
