import Foundation

/// A provider that can hold LeadCenter-created appointments ("Add to calendar").
public protocol AppointmentPushing: Sendable {
    /// The provider.
    var provider: Provider { get }
    /// Creates, updates or deletes the event for `appointment` in `calendarKey`; returns the provider's event id for a
    /// create. Throws `SyncFailure` (retry classes are retried with backoff).
    func push(_ appointment: LeadCenterAppointment, action: PushAction, calendarKey: String, externalID: String?) async throws -> String?
    /// The iCalendar UID of a pushed event, when the provider reports one (nil when unknown).
    func iCalUID(calendarKey: String, externalID: String) async throws -> String?
}
