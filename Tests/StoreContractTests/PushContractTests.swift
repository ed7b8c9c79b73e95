import Foundation
import GatewayCore
import Testing

/// LeadCenter appointments and the durable push queue (`LeadCenterAppointmentStore`, `PushStore`).
@Suite("Store contract: LeadCenter appointments and push")
struct PushContractTests {
    static func appointment(_ id: String, user: String = "u1", created: Double, time: AppointmentTime? = nil) -> LeadCenterAppointment {
        LeadCenterAppointment(
            id: id, userID: user, accountID: "acct", title: "Review \(id)",
            time: time ?? .timed(start: date(1_733_700_000.5), end: date(1_733_703_600), timeZone: nil),
            recurrence: [], category: nil, createdAt: date(created), updatedAt: date(created)
        )
    }

    @Test(arguments: Backend.available)
    func leadCenterAppointmentsRoundTrip(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let full = LeadCenterAppointment(
                id: "lc_full", userID: "u1", accountID: "acct", title: "Quarterly", time: .allDay(startDate: "2024-12-01", endDate: "2024-12-02"),
                recurrence: ["RRULE:FREQ=MONTHLY"], category: "client", createdAt: date(1_700_000_000.5), updatedAt: date(1_700_000_100)
            )
            try await store.saveLeadCenterAppointment(Self.appointment("lc_b", created: 1_700_000_000.5))
            try await store.saveLeadCenterAppointment(full)
            try await store.saveLeadCenterAppointment(Self.appointment("lc_0", created: 1_600_000_000))
            try await store.saveLeadCenterAppointment(Self.appointment("lc_x", user: "u2", created: 1))
            #expect(try await store.leadCenterAppointment(id: "lc_full") == full)
            #expect(try await store.leadCenterAppointment(id: "lc_b") == Self.appointment("lc_b", created: 1_700_000_000.5))
            #expect(try await store.leadCenterAppointment(id: "nope") == nil)
            #expect(try await store.leadCenterAppointments(userID: "u1").map(\.id) == ["lc_0", "lc_b", "lc_full"])

            var edited = full
            edited.title = "Edited"
            edited.category = nil
            edited.userID = "someone-else"
            edited.createdAt = date(1)
            edited.updatedAt = date(1_700_000_200)
            try await store.saveLeadCenterAppointment(edited)
            var expected = edited
            expected.userID = full.userID
            expected.createdAt = full.createdAt
            #expect(try await store.leadCenterAppointment(id: "lc_full") == expected, "an update keeps owner and creation time")
            #expect(try await store.deleteLeadCenterAppointment(id: "lc_full"))
            #expect(try await store.deleteLeadCenterAppointment(id: "lc_full") == false)
            #expect(try await store.leadCenterAppointment(id: "lc_full") == nil)
        }
    }

    @Test(arguments: Backend.available)
    func pushTargets(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.pushTarget(userID: "u1") == nil)
            try await store.setPushTarget(userID: "u1", calendarKey: "c1/a")
            try await store.setPushTarget(userID: "u1", calendarKey: "c1/b")
            #expect(try await store.pushTarget(userID: "u1") == "c1/b")
            try await store.setPushTarget(userID: "u1", calendarKey: nil)
            #expect(try await store.pushTarget(userID: "u1") == nil)
        }
    }

    @Test(arguments: Backend.available)
    func pushJobLifecycle(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let target = "c1/target"
            try await store.saveLeadCenterAppointment(Self.appointment("lc_1", created: 1_700_000_000), push: (.create, target), state: PushState(status: "pending"))
            try await store.saveLeadCenterAppointment(Self.appointment("lc_2", created: 1_700_000_001), push: (.create, target), state: PushState(status: "pending"))
            try await store.saveLeadCenterAppointment(Self.appointment("lc_1", created: 1_700_000_000), push: (.update, target), state: PushState(status: "pending"))
            try await store.saveLeadCenterAppointment(Self.appointment("lc_3", created: 1_700_000_002), push: nil, state: PushState(status: "no_target"))
            #expect(try await store.pendingPushJobCount() == 3)
            #expect(try await store.pushState(appointmentID: "lc_3") == PushState(status: "no_target"))
            #expect(try await store.pushState(appointmentID: "nope") == nil)

            // "Now" for the due checks: far enough ahead that jobs enqueued later in the test (a delete) are due too,
            // however slowly a loaded machine runs it (CI once took 25 s), and well before `later`.
            let now = Date().addingTimeInterval(600)
            var due = try await store.duePushJobs(now: now, limit: 10)
            #expect(due.map(\.appointmentID) == ["lc_1", "lc_2"], "only the oldest job of each appointment, oldest first")
            #expect(due.map(\.action) == [.create, .create])
            #expect(due.allSatisfy { $0.calendarKey == target && $0.attempts == 0 })
            #expect(try await store.duePushJobs(now: now, limit: 1).count == 1)
            #expect(try await store.duePushJobs(now: Date(timeIntervalSince1970: 0), limit: 10).isEmpty)

            // lc_2 fails: retried later with the error on the appointment.
            let later = date(Date().timeIntervalSince1970 + 3_600)
            #expect(try await store.isPushJobDue(due[1], now: now))
            #expect(try await !store.isPushJobDue(due[1], now: Date(timeIntervalSince1970: 0)), "not due yet")
            try await store.retryPushJob(due[1], nextAttemptAt: later, error: "HTTP 503")
            #expect(try await !store.isPushJobDue(due[1], now: later), "rescheduled since it was read (another attempt counted)")
            #expect(try await store.pushState(appointmentID: "lc_2") == PushState(status: "pending", error: "HTTP 503"))
            due = try await store.duePushJobs(now: now, limit: 10)
            #expect(due.map(\.appointmentID) == ["lc_1"])
            let retried = try #require(try await store.duePushJobs(now: later, limit: 10).first { $0.appointmentID == "lc_2" })
            #expect(retried.attempts == 1)
            #expect(retried.nextAttemptAt == later)

            // lc_1's create succeeds; its update is next.
            try await store.completePushJob(due[0], state: PushState(status: "pushed", calendarKey: target, externalID: "evt-1"))
            #expect(try await !store.isPushJobDue(due[0], now: now), "completed since it was read")
            #expect(try await store.pushState(appointmentID: "lc_1") == PushState(status: "pushed", calendarKey: target, externalID: "evt-1"))
            #expect(try await store.pushedExternalIDs(calendarKey: target) == ["evt-1"])
            #expect(try await store.pushedExternalIDs(calendarKey: "c1/other").isEmpty)
            try await store.setPushedICalUID(appointmentID: "lc_1", iCalUID: "uid-1@google.com")
            #expect(try await store.pushedICalUIDs(calendarKey: target) == ["uid-1@google.com"])
            let update = try #require(try await store.duePushJobs(now: now, limit: 10).first)
            #expect(update.appointmentID == "lc_1" && update.action == .update)

            // lc_2 gives up.
            try await store.abandonPushJob(retried, error: "HTTP 400 invalid")
            #expect(try await store.pushState(appointmentID: "lc_2") == PushState(status: "failed", error: "HTTP 400 invalid"))
            #expect(try await store.pendingPushJobCount() == 1)
            try await store.completePushJob(update, state: PushState(status: "pushed", calendarKey: target, externalID: "evt-1"))

            // Deleting a pushed appointment hides it and enqueues the provider delete; completing that removes the row.
            try await store.markLeadCenterAppointmentDeleted(id: "lc_1", push: (.delete, target))
            #expect(try await store.leadCenterAppointment(id: "lc_1") == nil, "hidden at once")
            #expect(try await store.pushState(appointmentID: "lc_1")?.status == "pending")
            let delete = try #require(try await store.duePushJobs(now: now, limit: 10).first)
            #expect(delete.action == .delete && delete.appointmentID == "lc_1")
            try await store.completePushJob(delete, state: PushState(status: "pushed"))
            #expect(try await store.pushState(appointmentID: "lc_1") == nil, "a finished delete removes the row")
            #expect(try await store.pushedExternalIDs(calendarKey: target).isEmpty)

            // Without anything to push, a delete removes the row at once.
            try await store.markLeadCenterAppointmentDeleted(id: "lc_3", push: nil)
            #expect(try await store.pushState(appointmentID: "lc_3") == nil)
            #expect(try await store.pendingPushJobCount() == 0)
        }
    }
}
