import Foundation

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
    /// When the calendar's cursor last moved (the console's "cursor age"); nil without a cursor.
    func syncCursorUpdatedAt(calendarKey: String) async throws -> Date?
    /// Forgets the calendar's cursor but keeps its appointments, so the next sync is a full one that replaces them
    /// in its commit (the operator's "full re-sync").
    func dropSyncCursor(calendarKey: String) async throws
}
