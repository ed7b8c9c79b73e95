import Foundation
import GatewayCore
import Testing

/// Imported appointments, cursors and categories (`AppointmentStore`, `LeadCenterAppointmentStore` categories).
@Suite("Store contract: appointments")
struct AppointmentContractTests {
    static let key = "conn-1/cal-1"

    static func timed(_ id: String, title: String = "Meeting", series: String? = nil) -> Appointment {
        Appointment(
            source: .microsoft, calendarKey: key, externalID: id, title: title,
            time: .timed(start: date(1_733_600_000.25), end: date(1_733_603_600), timeZone: "Europe/Zurich"), status: "tentative",
            recurrence: ["RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE:20241210T090000Z"], seriesID: series, originalStart: series == nil ? nil : "2024-12-03T09:00:00Z",
            updatedAt: date(1_733_500_000.5), attendees: ["a@example.com", "b@example.com"], iCalUID: "uid-\(id)", pushedFrom: "lc_\(id)"
        )
    }

    static func allDay(_ id: String) -> Appointment {
        Appointment(source: .google, calendarKey: key, externalID: id, title: "Holiday", time: .allDay(startDate: "2024-12-24", endDate: "2024-12-26"))
    }

    @Test(arguments: Backend.available)
    func applySyncRoundTripsEveryFieldInExternalIDOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let changes: [AppointmentChange] = [.upsert(Self.timed("m-2")), .upsert(Self.allDay("a-1")), .upsert(Self.timed("Z-3"))]
            let result = try await store.applySync(calendarKey: Self.key, changes: changes, cursor: "cursor-1", replaceAll: false)
            #expect(result == CalendarSyncResult(upserted: 3, deleted: 0))
            let stored = try await store.appointments(calendarKey: Self.key)
            #expect(stored.map(\.externalID) == ["Z-3", "a-1", "m-2"], "byte order of external ids")
            #expect(stored == [Self.timed("Z-3"), Self.allDay("a-1"), Self.timed("m-2")])
            #expect(try await store.syncCursor(calendarKey: Self.key) == "cursor-1")
            let updated = try #require(try await store.syncCursorUpdatedAt(calendarKey: Self.key))
            #expect(abs(updated.timeIntervalSinceNow) < 60)
            #expect(try await store.appointments(calendarKey: "other/cal").isEmpty)
            #expect(try await store.syncCursor(calendarKey: "other/cal") == nil)
            #expect(try await store.syncCursorUpdatedAt(calendarKey: "other/cal") == nil)
        }
    }

    @Test(arguments: Backend.available)
    func upsertReplacesDeleteTakesExceptionsCancelInstanceKeepsSlot(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try await store.applySync(
                calendarKey: Self.key,
                changes: [
                    .upsert(Self.timed("master")), .upsert(Self.timed("exc-1", series: "master")), .upsert(Self.timed("exc-2", series: "master")),
                    .upsert(Self.allDay("single")),
                ], cursor: "c1", replaceAll: false)
            var renamed = Self.timed("single", title: "Renamed")
            renamed.iCalUID = nil
            renamed.pushedFrom = nil
            renamed.attendees = []
            renamed.recurrence = []
            renamed.updatedAt = nil
            let result = try await store.applySync(
                calendarKey: Self.key,
                changes: [
                    .upsert(renamed),
                    .delete(externalID: "master"),
                    .cancelInstance(source: .google, externalID: "inst-1", seriesID: "other-series", originalStart: "2024-12-10"),
                    .delete(externalID: "missing"),
                ], cursor: "c2", replaceAll: false)
            #expect(result == CalendarSyncResult(upserted: 2, deleted: 3), "a master's deletion takes its two exceptions")
            let stored = try await store.appointments(calendarKey: Self.key)
            #expect(stored.map(\.externalID) == ["inst-1", "single"])
            #expect(stored.last == renamed, "nil and empty fields round-trip")
            #expect(
                stored.first
                    == Appointment(
                        source: .google, calendarKey: Self.key, externalID: "inst-1", title: "", time: .allDay(startDate: "2024-12-10", endDate: "2024-12-10"),
                        status: "cancelled", seriesID: "other-series", originalStart: "2024-12-10"
                    ))
            #expect(try await store.syncCursor(calendarKey: Self.key) == "c2")

            // Upsert then delete of the same id in one sync: applied in order.
            let again = try await store.applySync(
                calendarKey: Self.key,
                changes: [
                    .upsert(Self.allDay("temp")), .delete(externalID: "temp"), .upsert(Self.allDay("kept")), .upsert(Self.timed("kept")),
                ], cursor: "c3", replaceAll: false)
            #expect(again == CalendarSyncResult(upserted: 3, deleted: 1))
            #expect(try await store.appointments(calendarKey: Self.key).map(\.externalID) == ["inst-1", "kept", "single"])
            #expect(try await store.appointments(calendarKey: Self.key).first { $0.externalID == "kept" } == Self.timed("kept"), "the later upsert wins")
        }
    }

    @Test(arguments: Backend.available)
    func replaceAllCategoriesClearAndDropCursor(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try await store.applySync(calendarKey: Self.key, changes: [.upsert(Self.allDay("a")), .upsert(Self.allDay("b"))], cursor: "c1", replaceAll: false)
            _ = try await store.applySync(calendarKey: "conn-1/other", changes: [.upsert(Self.allDay("x"))], cursor: "o1", replaceAll: false)
            try await store.setCategory(calendarKey: Self.key, externalID: "a", category: "client")
            try await store.setCategory(calendarKey: Self.key, externalID: "b", category: "x")
            try await store.setCategory(calendarKey: Self.key, externalID: "b", category: "personal")
            try await store.setCategory(calendarKey: Self.key, externalID: "gone", category: "y")
            try await store.setCategory(calendarKey: Self.key, externalID: "gone", category: nil)
            #expect(try await store.categories(calendarKey: Self.key) == ["a": "client", "b": "personal"])

            let replaced = try await store.applySync(calendarKey: Self.key, changes: [.upsert(Self.allDay("c"))], cursor: "c2", replaceAll: true)
            #expect(replaced == CalendarSyncResult(upserted: 1, deleted: 2))
            #expect(try await store.appointments(calendarKey: Self.key).map(\.externalID) == ["c"])
            #expect(try await store.categories(calendarKey: Self.key) == ["a": "client", "b": "personal"], "categories survive a full re-sync")
            #expect(try await store.appointments(calendarKey: "conn-1/other").count == 1, "other calendars untouched")

            try await store.dropSyncCursor(calendarKey: Self.key)
            #expect(try await store.syncCursor(calendarKey: Self.key) == nil)
            #expect(try await store.syncCursorUpdatedAt(calendarKey: Self.key) == nil)
            #expect(try await store.appointments(calendarKey: Self.key).count == 1, "dropping the cursor keeps appointments")

            #expect(try await store.clearCalendar(calendarKey: "conn-1/other") == 1)
            #expect(try await store.syncCursor(calendarKey: "conn-1/other") == nil)
            #expect(try await store.clearCalendar(calendarKey: Self.key) == 1)
            #expect(try await store.categories(calendarKey: Self.key).isEmpty, "clearing a calendar drops its categories")
            #expect(try await store.clearCalendar(calendarKey: Self.key) == 0)
        }
    }

    @Test(arguments: Backend.available)
    func largeSyncInOneTransaction(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let changes = (0..<1_200).map { AppointmentChange.upsert(Self.allDay(String(format: "e%05d", $0))) }
            let result = try await store.applySync(calendarKey: Self.key, changes: changes, cursor: "big", replaceAll: true)
            #expect(result == CalendarSyncResult(upserted: 1_200, deleted: 0))
            let stored = try await store.appointments(calendarKey: Self.key)
            #expect(stored.count == 1_200)
            #expect(stored.first?.externalID == "e00000" && stored.last?.externalID == "e01199")
        }
    }
}
