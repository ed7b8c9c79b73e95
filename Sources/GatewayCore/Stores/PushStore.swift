import Foundation

/// The "Add to calendar" target per user, push state per appointment and the durable push queue.
public protocol PushStore: Sendable {
    /// The user's push target calendar key, if any.
    func pushTarget(userID: String) async throws -> String?
    /// Sets (or, with nil, clears) the user's push target.
    func setPushTarget(userID: String, calendarKey: String?) async throws
    /// Saves a LeadCenter appointment and, in the same transaction, enqueues `job` (if any) and sets its push state.
    func saveLeadCenterAppointment(_ appointment: LeadCenterAppointment, push: (action: PushAction, calendarKey: String)?, state: PushState) async throws
    /// Marks a LeadCenter appointment deleted (hidden) and enqueues the provider delete, in one transaction.
    func markLeadCenterAppointmentDeleted(id: String, push: (action: PushAction, calendarKey: String)?) async throws
    /// The push state of an appointment.
    func pushState(appointmentID: String) async throws -> PushState?
    /// Jobs due at `now`, oldest first.
    func duePushJobs(now: Date, limit: Int) async throws -> [PushJob]
    /// A job succeeded: removes it and records the appointment's new state (a finished delete removes the appointment).
    func completePushJob(_ job: PushJob, state: PushState) async throws
    /// A job failed: counts the attempt and schedules the next one, recording the error on the appointment.
    func retryPushJob(_ job: PushJob, nextAttemptAt: Date, error: String) async throws
    /// A job failed for good: removes it and marks the appointment failed.
    func abandonPushJob(_ job: PushJob, error: String) async throws
    /// Provider ids of events calgate pushed into a calendar (their echoes are not imported twice).
    func pushedExternalIDs(calendarKey: String) async throws -> Set<String>
    /// iCalendar UIDs of events calgate pushed into a calendar (the fallback link for echoes).
    func pushedICalUIDs(calendarKey: String) async throws -> Set<String>
    /// Records the iCalendar UID of a pushed event.
    func setPushedICalUID(appointmentID: String, iCalUID: String) async throws
    /// Jobs not yet done.
    func pendingPushJobCount() async throws -> Int
    /// Whether `job` is still queued as it was read (same attempt count) and due at `now`: a worker that claimed the
    /// appointment after another instance worked on it asks this, so it does not push the same thing twice.
    func isPushJobDue(_ job: PushJob, now: Date) async throws -> Bool
}
