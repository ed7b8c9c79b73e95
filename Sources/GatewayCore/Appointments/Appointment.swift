import Foundation

/// When an appointment happens: a timed span (UTC instants plus the zone it was written in) or all-day dates.
public enum AppointmentTime: Sendable, Hashable {
    /// Timed: instants, and the IANA zone the provider gave (kept to expand series and show local times).
    case timed(start: Date, end: Date, timeZone: String?)
    /// All-day: `yyyy-mm-dd` dates; `end` is exclusive, as providers send it.
    case allDay(startDate: String, endDate: String)
}

/// An appointment imported from a provider calendar (or created in LeadCenter).
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
    public var status: String
    /// RRULE/EXDATE lines for a series master; empty otherwise.
    public var recurrence: [String]
    /// For an exception or instance: the series master's id.
    public var seriesID: String?
    /// For an exception: the slot it replaces (identifies the instance even when moved).
    public var originalStart: String?
    /// Provider's last-modified time.
    public var updatedAt: Date?
    /// Attendee e-mail addresses, lower-cased (used to recognise the same meeting arriving from two sources).
    public var attendees: [String]
    /// The iCalendar UID the provider reports (links an echo of a pushed event when its id is not known).
    public var iCalUID: String?
    /// The LeadCenter appointment id calgate tagged the event with when it pushed it (Google private property).
    public var pushedFrom: String?

    /// Creates an appointment.
    public init(
        source: Provider, calendarKey: String, externalID: String, title: String, time: AppointmentTime, status: String = "confirmed",
        recurrence: [String] = [], seriesID: String? = nil, originalStart: String? = nil, updatedAt: Date? = nil, attendees: [String] = [],
        iCalUID: String? = nil, pushedFrom: String? = nil
    ) {
        self.attendees = attendees
        self.iCalUID = iCalUID
        self.pushedFrom = pushedFrom
        self.source = source
        self.calendarKey = calendarKey
        self.externalID = externalID
        self.title = title
        self.time = time
        self.status = status
        self.recurrence = recurrence
        self.seriesID = seriesID
        self.originalStart = originalStart
        self.updatedAt = updatedAt
    }
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
public struct CalendarSyncResult: Sendable, Hashable {
    /// Rows inserted or replaced.
    public var upserted: Int
    /// Rows removed.
    public var deleted: Int

    /// Creates a result.
    public init(upserted: Int, deleted: Int) {
        self.upserted = upserted
        self.deleted = deleted
    }
}

/// An appointment created in LeadCenter (fully editable; pushed out to the "Add to calendar" target, if any).
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
    public var recurrence: [String]
    /// LeadCenter's category.
    public var category: String?
    /// When it was created.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date

    /// Creates an appointment.
    public init(
        id: String, userID: String, accountID: String, title: String, time: AppointmentTime, recurrence: [String] = [],
        category: String? = nil, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.userID = userID
        self.accountID = accountID
        self.title = title
        self.time = time
        self.recurrence = recurrence
        self.category = category
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
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
public struct PushState: Sendable, Hashable {
    /// `no_target` (nothing selected, nothing pushed), `pending`, `pushed` or `failed`.
    public var status: String
    /// The calendar it was pushed to (`<connection>/<calendar>`).
    public var calendarKey: String?
    /// The provider's id for the pushed event.
    public var externalID: String?
    /// Why the last attempt failed, for the user.
    public var error: String?

    /// Creates a state.
    public init(status: String, calendarKey: String? = nil, externalID: String? = nil, error: String? = nil) {
        self.status = status
        self.calendarKey = calendarKey
        self.externalID = externalID
        self.error = error
    }
}

/// A durable push job.
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

    /// Creates a job.
    public init(id: Int64, appointmentID: String, action: PushAction, calendarKey: String, attempts: Int, nextAttemptAt: Date) {
        self.id = id
        self.appointmentID = appointmentID
        self.action = action
        self.calendarKey = calendarKey
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
    }
}
