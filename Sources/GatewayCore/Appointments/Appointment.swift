import CalgateMacros
import Foundation

/// When an appointment happens: a timed span (UTC instants plus the zone it was written in) or all-day dates.
public enum AppointmentTime: Sendable, Hashable {
    /// Timed: instants, and the IANA zone the provider gave (kept to expand series and show local times).
    case timed(start: Date, end: Date, timeZone: String?)
    /// All-day: `yyyy-mm-dd` dates; `end` is exclusive, as providers send it.
    case allDay(startDate: String, endDate: String)
}

/// An appointment imported from a provider calendar (or created in LeadCenter).
@MemberwiseInit
public struct Appointment: Sendable, Hashable {
    /// Where it came from.
    public var source: Provider
    /// The calendar it belongs to (`<connection>/<calendar id>`).
    public var calendarKey: String
    /// The provider's id for it.
    public var externalID: String
    /// Title.
    public var title: String
    /// Time.
    public var time: AppointmentTime
    /// `confirmed` or `tentative` (cancelled items are deletions or cancelled instances, see `AppointmentChange`).
    public var status: String = "confirmed"
    /// RRULE/EXDATE lines for a series master; empty otherwise.
    public var recurrence: [String] = []
    /// For an exception or instance: the series master's id.
    public var seriesID: String? = nil
    /// For an exception: the slot it replaces (identifies the instance even when moved).
    public var originalStart: String? = nil
    /// Provider's last-modified time.
    public var updatedAt: Date? = nil
    /// Attendee e-mail addresses, lower-cased (used to recognise the same meeting arriving from two sources).
    public var attendees: [String] = []
    /// The iCalendar UID the provider reports (links an echo of a pushed event when its id is not known).
    public var iCalUID: String? = nil
    /// The LeadCenter appointment id calgate tagged the event with when it pushed it (Google private property).
    public var pushedFrom: String? = nil
}

/// One change a delta page carries.
public enum AppointmentChange: Sendable, Hashable {
    /// Create or replace by `externalID`.
    case upsert(Appointment)
    /// The event is gone.
    case delete(externalID: String)
    /// One instance of a live series was cancelled: kept as a cancelled exception so expansion skips it.
    case cancelInstance(source: Provider, externalID: String, seriesID: String, originalStart: String)
}

/// Where the appointment store stands for one calendar after a sync.
@MemberwiseInit
public struct CalendarSyncResult: Sendable, Hashable {
    /// Rows inserted or replaced.
    public var upserted: Int
    /// Rows removed.
    public var deleted: Int
}

/// An appointment created in LeadCenter (fully editable; pushed out to the "Add to calendar" target, if any).
@MemberwiseInit
public struct LeadCenterAppointment: Sendable, Hashable {
    /// calgate's id (`lc_…`).
    public var id: String
    /// The LeadCenter user who owns it.
    public var userID: String
    /// The user's LeadCenter account.
    public var accountID: String
    /// Title.
    public var title: String
    /// Time.
    public var time: AppointmentTime
    /// RRULE/EXDATE lines for a series; empty otherwise.
    public var recurrence: [String] = []
    /// LeadCenter's category.
    public var category: String? = nil
    /// When it was created.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date
}

/// What a push job does at the provider.
public enum PushAction: String, Sendable, Hashable {
    /// Create the event in the target calendar.
    case create
    /// Update the event created earlier.
    case update
    /// Delete the event created earlier (then the LeadCenter appointment row goes too).
    case delete
}

/// Where a LeadCenter-created appointment stands with the "Add to calendar" target.
@MemberwiseInit
public struct PushState: Sendable, Hashable {
    /// `no_target` (nothing selected, nothing pushed), `pending`, `pushed` or `failed`.
    public var status: String
    /// The calendar it was pushed to (`<connection>/<calendar>`).
    public var calendarKey: String? = nil
    /// The provider's id for the pushed event.
    public var externalID: String? = nil
    /// Why the last attempt failed, for the user.
    public var error: String? = nil
}

/// A durable push job.
@MemberwiseInit
public struct PushJob: Sendable, Hashable {
    /// Row id.
    public var id: Int64
    /// The LeadCenter appointment.
    public var appointmentID: String
    /// What to do.
    public var action: PushAction
    /// The target calendar (`<connection>/<calendar>`).
    public var calendarKey: String
    /// Attempts so far.
    public var attempts: Int
    /// When the next attempt may run.
    public var nextAttemptAt: Date
}
