import Foundation
import GatewayCore

extension SQLiteStore: LeadCenterAppointmentStore {
    /// External id → category for a calendar's imported appointments.
    public func categories(calendarKey: String) async throws -> [String: String] {
        try await run { database in
            let statement = try database.prepare("SELECT external_id, category FROM appointment_categories WHERE calendar_key = ?")
            statement.bind(1, calendarKey)
            var result: [String: String] = [:]
            while try statement.step() { result[statement.string(0) ?? ""] = statement.string(1) ?? "" }
            return result
        }
    }

    /// Sets or clears a category.
    public func setCategory(calendarKey: String, externalID: String, category: String?) async throws {
        try await run { database in
            let statement: SQLiteStatement
            if let category {
                statement = try database.prepare(
                    """
                    INSERT INTO appointment_categories (calendar_key, external_id, category) VALUES (?, ?, ?)
                    ON CONFLICT(calendar_key, external_id) DO UPDATE SET category = excluded.category
                    """)
                statement.bind(3, category)
            } else {
                statement = try database.prepare("DELETE FROM appointment_categories WHERE calendar_key = ? AND external_id = ?")
            }
            statement.bind(1, calendarKey)
            statement.bind(2, externalID)
            try statement.run()
        }
    }

    /// Inserts or replaces a LeadCenter appointment.
    public func saveLeadCenterAppointment(_ appointment: LeadCenterAppointment) async throws {
        try await run { database in try Self.write(appointment, into: database) }
    }

    static func write(_ appointment: LeadCenterAppointment, into database: SQLiteDatabase) throws {
        let statement = try database.prepare(
            """
            INSERT INTO leadcenter_appointments (id, user_id, account_id, title, all_day, start_ms, end_ms, start_date, end_date,
                time_zone, recurrence, category, created_at_ms, updated_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET title = excluded.title, all_day = excluded.all_day, start_ms = excluded.start_ms,
                end_ms = excluded.end_ms, start_date = excluded.start_date, end_date = excluded.end_date,
                time_zone = excluded.time_zone, recurrence = excluded.recurrence, category = excluded.category,
                updated_at_ms = excluded.updated_at_ms
            """)
        statement.bind(1, appointment.id)
        statement.bind(2, appointment.userID)
        statement.bind(3, appointment.accountID)
        statement.bind(4, appointment.title)
        bind(appointment.time, to: statement, at: 5)
        statement.bind(11, appointment.recurrence.joined(separator: "\n"))
        statement.bind(12, appointment.category)
        statement.bind(13, milliseconds(appointment.createdAt))
        statement.bind(14, milliseconds(appointment.updatedAt))
        try statement.run()
    }

    /// One LeadCenter appointment.
    public func leadCenterAppointment(id: String) async throws -> LeadCenterAppointment? {
        try await run { database in
            try database.first(Self.leadCenterColumns + " WHERE id = ? AND deleted_at_ms IS NULL", id) { statement in
                Self.readLeadCenter(statement)
            }
        }
    }

    /// A user's LeadCenter appointments.
    public func leadCenterAppointments(userID: String) async throws -> [LeadCenterAppointment] {
        try await run { database in
            let statement = try database.prepare(Self.leadCenterColumns + " WHERE user_id = ? AND deleted_at_ms IS NULL ORDER BY created_at_ms, id")
            statement.bind(1, userID)
            var rows: [LeadCenterAppointment] = []
            while try statement.step() { rows.append(Self.readLeadCenter(statement)) }
            return rows
        }
    }

    /// Deletes one.
    public func deleteLeadCenterAppointment(id: String) async throws -> Bool {
        try await run { database in
            try database.run("DELETE FROM leadcenter_appointments WHERE id = ?", id) > 0
        }
    }

    static let leadCenterColumns = """
        SELECT id, user_id, account_id, title, all_day, start_ms, end_ms, start_date, end_date, time_zone, recurrence, category,
               created_at_ms, updated_at_ms FROM leadcenter_appointments
        """

    static func readLeadCenter(_ statement: SQLiteStatement) -> LeadCenterAppointment {
        let time = readTime(statement, at: 4)
        return LeadCenterAppointment(
            id: statement.string(0) ?? "", userID: statement.string(1) ?? "", accountID: statement.string(2) ?? "",
            title: statement.string(3) ?? "", time: time,
            recurrence: (statement.string(10) ?? "").split(separator: "\n").map(String.init),
            category: statement.isNull(11) ? nil : statement.string(11),
            createdAt: date(statement.int64(12)), updatedAt: date(statement.int64(13))
        )
    }
}
