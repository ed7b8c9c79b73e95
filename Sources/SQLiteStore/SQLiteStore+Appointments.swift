import Foundation
import GatewayCore

extension SQLiteStore: AppointmentStore {
    /// Applies the changes and the cursor in one transaction: a crash leaves neither or both.
    public func applySync(calendarKey: String, changes: [AppointmentChange], cursor: String, replaceAll: Bool) async throws -> CalendarSyncResult {
        let now = Self.milliseconds(Date())
        return try await run { database in
            try database.transaction {
                var result = CalendarSyncResult(upserted: 0, deleted: 0)
                if replaceAll {
                    try database.run("DELETE FROM appointments WHERE calendar_key = ?", calendarKey)
                    result.deleted += Int(database.changes)
                }
                for change in changes {
                    switch change {
                    case .upsert(let appointment):
                        try Self.upsert(appointment, calendarKey: calendarKey, into: database)
                        result.upserted += 1
                    case .delete(let externalID):
                        // Deleting a series master takes its exceptions with it. Two statements, one per index: with
                        // `external_id = ? OR series_id = ?` SQLite scans the whole calendar (10 ms per deletion at
                        // 100,000 appointments).
                        for column in ["external_id", "series_id"] {
                            try database.run("DELETE FROM appointments WHERE calendar_key = ? AND \(column) = ?", calendarKey, externalID)
                            result.deleted += Int(database.changes)
                        }
                    case .cancelInstance(let source, let externalID, let seriesID, let originalStart):
                        let cancelled = Appointment(
                            source: source, calendarKey: calendarKey, externalID: externalID, title: "",
                            time: .allDay(startDate: originalStart, endDate: originalStart), status: "cancelled",
                            seriesID: seriesID, originalStart: originalStart
                        )
                        try Self.upsert(cancelled, calendarKey: calendarKey, into: database)
                        result.upserted += 1
                    }
                }
                try database.run(
                    """
                    INSERT INTO sync_cursors (calendar_key, cursor, updated_at_ms) VALUES (?, ?, ?)
                    ON CONFLICT(calendar_key) DO UPDATE SET cursor = excluded.cursor, updated_at_ms = excluded.updated_at_ms
                    """, calendarKey, cursor, now)
                return result
            }
        }
    }

    /// Removes the calendar's appointments and cursor in one transaction.
    public func clearCalendar(calendarKey: String) async throws -> Int {
        try await run { database in
            try database.transaction {
                try database.run("DELETE FROM appointments WHERE calendar_key = ?", calendarKey)
                let removed = Int(database.changes)
                try database.run("DELETE FROM appointment_categories WHERE calendar_key = ?", calendarKey)
                try database.run("DELETE FROM sync_cursors WHERE calendar_key = ?", calendarKey)
                return removed
            }
        }
    }

    /// The stored cursor.
    public func syncCursor(calendarKey: String) async throws -> String? {
        try await run { database in
            try database.first("SELECT cursor FROM sync_cursors WHERE calendar_key = ?", calendarKey) { $0.string(0) } ?? nil
        }
    }

    /// When the cursor was last saved.
    public func syncCursorUpdatedAt(calendarKey: String) async throws -> Date? {
        try await run { database in
            try database.first("SELECT updated_at_ms FROM sync_cursors WHERE calendar_key = ?", calendarKey) { statement in
                let milliseconds = statement.int64(0)
                return Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            }
        }
    }

    /// Deletes the cursor only; the next sync is full and replaces the appointments when it commits.
    public func dropSyncCursor(calendarKey: String) async throws {
        try await run { database in
            try database.run("DELETE FROM sync_cursors WHERE calendar_key = ?", calendarKey)
        }
    }

    /// The calendar's appointments.
    public func appointments(calendarKey: String) async throws -> [Appointment] {
        try await run { database in
            let statement = try database.prepare(
                """
                SELECT source, external_id, title, all_day, start_ms, end_ms, start_date, end_date, time_zone, status,
                       recurrence, series_id, original_start, updated_at_ms, attendees, ical_uid, pushed_from
                FROM appointments WHERE calendar_key = ? ORDER BY external_id
                """)
            statement.bind(1, calendarKey)
            var rows: [Appointment] = []
            while try statement.step() {
                let time = Self.readTime(statement, at: 3)
                let recurrence = (statement.string(10) ?? "").split(separator: "\n").map(String.init)
                rows.append(
                    Appointment(
                        source: Provider(rawValue: statement.string(0) ?? "") ?? .google, calendarKey: calendarKey,
                        externalID: statement.string(1) ?? "", title: statement.string(2) ?? "", time: time,
                        status: statement.string(9) ?? "confirmed", recurrence: recurrence,
                        seriesID: statement.isNull(11) ? nil : statement.string(11),
                        originalStart: statement.isNull(12) ? nil : statement.string(12),
                        updatedAt: statement.isNull(13) ? nil : Self.date(statement.int64(13)),
                        attendees: (statement.string(14) ?? "").split(separator: "\n").map(String.init),
                        iCalUID: statement.isNull(15) ? nil : statement.string(15), pushedFrom: statement.isNull(16) ? nil : statement.string(16)
                    ))
            }
            return rows
        }
    }

    static func upsert(_ appointment: Appointment, calendarKey: String, into database: SQLiteDatabase) throws {
        let statement = try database.prepare(
            """
            INSERT INTO appointments (calendar_key, external_id, source, title, all_day, start_ms, end_ms, start_date, end_date,
                time_zone, status, recurrence, series_id, original_start, updated_at_ms, attendees, ical_uid, pushed_from)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(calendar_key, external_id) DO UPDATE SET
                source = excluded.source,
                title = excluded.title, all_day = excluded.all_day, start_ms = excluded.start_ms, end_ms = excluded.end_ms,
                start_date = excluded.start_date, end_date = excluded.end_date, time_zone = excluded.time_zone,
                status = excluded.status, recurrence = excluded.recurrence, series_id = excluded.series_id,
                original_start = excluded.original_start, updated_at_ms = excluded.updated_at_ms, attendees = excluded.attendees,
                ical_uid = excluded.ical_uid, pushed_from = excluded.pushed_from
            """)
        statement.bind(1, calendarKey)
        statement.bind(2, appointment.externalID)
        statement.bind(3, appointment.source.rawValue)
        statement.bind(4, appointment.title)
        bind(appointment.time, to: statement, at: 5)
        statement.bind(11, appointment.status)
        statement.bind(12, appointment.recurrence.joined(separator: "\n"))
        statement.bind(13, appointment.seriesID)
        statement.bind(14, appointment.originalStart)
        statement.bind(15, appointment.updatedAt.map(milliseconds))
        statement.bind(16, appointment.attendees.joined(separator: "\n"))
        statement.bind(17, appointment.iCalUID)
        statement.bind(18, appointment.pushedFrom)
        try statement.run()
    }

    /// Binds a time to the six columns `all_day, start_ms, end_ms, start_date, end_date, time_zone` from `first`.
    static func bind(_ time: AppointmentTime, to statement: SQLiteStatement, at first: Int32) {
        switch time {
        case .timed(let start, let end, let zone):
            statement.bind(first, Int64(0))
            statement.bind(first + 1, milliseconds(start))
            statement.bind(first + 2, milliseconds(end))
            statement.bind(first + 3, nil as String?)
            statement.bind(first + 4, nil as String?)
            statement.bind(first + 5, zone)
        case .allDay(let startDate, let endDate):
            statement.bind(first, Int64(1))
            statement.bind(first + 1, nil as Int64?)
            statement.bind(first + 2, nil as Int64?)
            statement.bind(first + 3, startDate)
            statement.bind(first + 4, endDate)
            statement.bind(first + 5, nil as String?)
        }
    }

    /// Reads a time from the same six columns, starting at result column `first`.
    static func readTime(_ statement: SQLiteStatement, at first: Int32) -> AppointmentTime {
        statement.int64(first) != 0
            ? .allDay(startDate: statement.string(first + 3) ?? "", endDate: statement.string(first + 4) ?? "")
            : .timed(
                start: date(statement.int64(first + 1)), end: date(statement.int64(first + 2)),
                timeZone: statement.isNull(first + 5) ? nil : statement.string(first + 5))
    }
}
