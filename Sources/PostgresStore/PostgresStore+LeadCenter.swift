import Foundation
import GatewayCore
import PostgresNIO

extension PostgresStore: LeadCenterAppointmentStore {
    /// External id → category for a calendar's imported appointments.
    public func categories(calendarKey: String) async throws -> [String: String] {
        try await read("reading appointment_categories") { db in
            var result: [String: String] = [:]
            let rows = try await db.query(
                "SELECT external_id, category FROM appointment_categories WHERE calendar_key = \(calendarKey)", logger: logger
            )
            for try await (externalID, category) in rows.decode((String, String).self) { result[externalID] = category }
            return result
        }
    }

    /// Sets or (with nil) clears a category.
    public func setCategory(calendarKey: String, externalID: String, category: String?) async throws {
        try await transaction("saving appointment_categories row") { db in
            if let category {
                try await db.query(
                    """
                    INSERT INTO appointment_categories (calendar_key, external_id, category) VALUES (\(calendarKey), \(externalID), \(category))
                    ON CONFLICT (calendar_key, external_id) DO UPDATE SET category = excluded.category
                    """, logger: logger)
            } else {
                try await db.query(
                    "DELETE FROM appointment_categories WHERE calendar_key = \(calendarKey) AND external_id = \(externalID)", logger: logger
                )
            }
        }
    }

    /// Inserts or replaces a LeadCenter appointment.
    public func saveLeadCenterAppointment(_ appointment: LeadCenterAppointment) async throws {
        try await transaction("saving leadcenter_appointments row \(appointment.id)") { db in
            try await write(appointment, on: db)
        }
    }

    /// Inserts or replaces the row; an existing row keeps its owner, account and creation time (as in SQLiteStore).
    func write(_ appointment: LeadCenterAppointment, on db: PostgresConnection) async throws {
        var binds = PostgresBindings(capacity: 14)
        binds.append(appointment.id)
        binds.append(appointment.userID)
        binds.append(appointment.accountID)
        binds.append(appointment.title)
        Self.bind(appointment.time, to: &binds)
        binds.append(appointment.recurrence.joined(separator: "\n"))
        binds.append(appointment.category)
        binds.append(Self.ms(appointment.createdAt))
        binds.append(Self.ms(appointment.updatedAt))
        try await db.query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO leadcenter_appointments (id, user_id, account_id, title, all_day, start_at, end_at, start_date, end_date,
                        time_zone, recurrence, category, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                    ON CONFLICT (id) DO UPDATE SET title = excluded.title, all_day = excluded.all_day, start_at = excluded.start_at,
                        end_at = excluded.end_at, start_date = excluded.start_date, end_date = excluded.end_date,
                        time_zone = excluded.time_zone, recurrence = excluded.recurrence, category = excluded.category,
                        updated_at = excluded.updated_at
                    """, binds: binds), logger: logger)
    }

    /// One LeadCenter appointment (not one marked deleted).
    public func leadCenterAppointment(id: String) async throws -> LeadCenterAppointment? {
        try await leadCenterAppointments("WHERE id = \(id) AND deleted_at IS NULL").first
    }

    /// A user's LeadCenter appointments, oldest first.
    public func leadCenterAppointments(userID: String) async throws -> [LeadCenterAppointment] {
        try await leadCenterAppointments("WHERE user_id = \(userID) AND deleted_at IS NULL ORDER BY created_at, id COLLATE \"C\"")
    }

    /// Deletes one; false when there was none.
    public func deleteLeadCenterAppointment(id: String) async throws -> Bool {
        try await transaction("deleting leadcenter_appointments row") { db in
            try await Self.count(db.query("DELETE FROM leadcenter_appointments WHERE id = \(id) RETURNING 1", logger: logger)) > 0
        }
    }

    private func leadCenterAppointments(_ filter: PostgresQuery) async throws -> [LeadCenterAppointment] {
        var query = filter
        query.sql = """
            SELECT id, user_id, account_id, title, all_day, start_at, end_at, start_date, end_date, time_zone, recurrence, category,
                   created_at, updated_at FROM leadcenter_appointments
            """ + " " + query.sql
        return try await read("reading leadcenter_appointments") { db in
            var result: [LeadCenterAppointment] = []
            for try await (id, userID, accountID, title, allDay, startAt, endAt, startDate, endDate, zone, recurrence, category, createdAt, updatedAt)
                in try await db.query(query, logger: logger).decode(
                    (String, String, String, String, Bool, Date?, Date?, String?, String?, String?, String, String?, Date, Date).self
                )
            {
                result.append(
                    LeadCenterAppointment(
                        id: id, userID: userID, accountID: accountID, title: title,
                        time: try Self.time(
                            allDay: allDay, start: startAt, end: endAt, startDate: startDate, endDate: endDate, zone: zone,
                            table: "leadcenter_appointments", id: id),
                        recurrence: Self.lines(recurrence), category: category, createdAt: Self.ms(createdAt), updatedAt: Self.ms(updatedAt)
                    ))
            }
            return result
        }
    }
}
