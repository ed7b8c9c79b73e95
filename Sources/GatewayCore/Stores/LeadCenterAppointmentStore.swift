import Foundation

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
