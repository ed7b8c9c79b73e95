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

    /// Creates an appointment.
    public init(
        source: Provider, calendarKey: String, externalID: String, title: String, time: AppointmentTime, status: String = "confirmed",
        recurrence: [String] = [], seriesID: String? = nil, originalStart: String? = nil, updatedAt: Date? = nil
    ) {
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

/// Imported appointments and each calendar's sync cursor, moved together.
public protocol AppointmentStore: Sendable {
    /// Applies one sync's changes and its new cursor in one transaction. With `replaceAll`, the calendar's imported
    /// appointments are replaced (a full re-sync after the provider invalidated the cursor).
    func applySync(calendarKey: String, changes: [AppointmentChange], cursor: String, replaceAll: Bool) async throws -> CalendarSyncResult
    /// Removes the calendar's appointments and cursor (the calendar was deselected or its connection removed);
    /// returns how many appointments went.
    func clearCalendar(calendarKey: String) async throws -> Int
    /// The calendar's stored cursor (Google sync token, Graph delta link), if any.
    func syncCursor(calendarKey: String) async throws -> String?
    /// The calendar's appointments, cancelled instances included, ordered by external id.
    func appointments(calendarKey: String) async throws -> [Appointment]
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

/// LeadCenter's own data kept next to the imports: categories on imported appointments (they survive re-syncs) and
/// LeadCenter-created appointments.
public protocol LeadCenterAppointmentStore: Sendable {
    /// The categories set on a calendar's imported appointments: external id → category.
    func categories(calendarKey: String) async throws -> [String: String]
    /// Sets (or, with nil, clears) the category of an imported appointment.
    func setCategory(calendarKey: String, externalID: String, category: String?) async throws
    /// Inserts or replaces a LeadCenter-created appointment.
    func saveLeadCenterAppointment(_ appointment: LeadCenterAppointment) async throws
    /// One LeadCenter-created appointment.
    func leadCenterAppointment(id: String) async throws -> LeadCenterAppointment?
    /// A user's LeadCenter-created appointments, oldest first.
    func leadCenterAppointments(userID: String) async throws -> [LeadCenterAppointment]
    /// Deletes one; false when there was none.
    func deleteLeadCenterAppointment(id: String) async throws -> Bool
}
