import Foundation
import GatewayCore
import PostgresNIO

extension PostgresStore: AppointmentStore {
    /// Most appointments in one multi-row upsert (18 parameters each).
    static let appointmentsPerUpsert = 500

    /// Applies the changes and the cursor in one transaction: a crash leaves neither or both. Changes apply in order;
    /// consecutive upserts go to the server as one multi-row statement.
    public func applySync(calendarKey: String, changes: [AppointmentChange], cursor: String, replaceAll: Bool) async throws -> CalendarSyncResult {
        let now = Self.ms(Date())
        return try await transaction("applying a sync of \(calendarKey) to appointments") { db in
            var result = CalendarSyncResult(upserted: 0, deleted: 0)
            if replaceAll {
                result.deleted += try await Self.count(db.query("DELETE FROM appointments WHERE calendar_key = \(calendarKey) RETURNING 1", logger: logger))
            }
            var run: [Appointment] = []
            for change in changes {
                switch change {
                case .upsert(let appointment):
                    run.append(appointment)
                    result.upserted += 1
                case .cancelInstance(let source, let externalID, let seriesID, let originalStart):
                    run.append(
                        Appointment(
                            source: source, calendarKey: calendarKey, externalID: externalID, title: "",
                            time: .allDay(startDate: originalStart, endDate: originalStart), status: "cancelled",
                            seriesID: seriesID, originalStart: originalStart
                        ))
                    result.upserted += 1
                case .delete(let externalID):
                    try await upsert(run, calendarKey: calendarKey, on: db)
                    run.removeAll()
                    // Deleting a series master takes its exceptions with it.
                    result.deleted += try await Self.count(
                        db.query(
                            """
                            DELETE FROM appointments WHERE calendar_key = \(calendarKey) AND (external_id = \(externalID) OR series_id = \(externalID))
                            RETURNING 1
                            """, logger: logger))
                }
            }
            try await upsert(run, calendarKey: calendarKey, on: db)
            try await db.query(
                """
                INSERT INTO sync_cursors (calendar_key, cursor, updated_at) VALUES (\(calendarKey), \(cursor), \(now))
                ON CONFLICT (calendar_key) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at
                """, logger: logger)
            return result
        }
    }

    /// Inserts or replaces appointments in order (a later one with the same id wins, as sequential upserts would).
    private func upsert(_ appointments: [Appointment], calendarKey: String, on db: PostgresConnection) async throws {
        guard !appointments.isEmpty else { return }
        // One statement may not touch a row twice: keep each id's last version, in the order of last occurrence.
        var last: [String: Int] = [:]
        for (index, appointment) in appointments.enumerated() { last[appointment.externalID] = index }
        let rows = appointments.enumerated().filter { last[$0.element.externalID] == $0.offset }.map(\.element)
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(start + Self.appointmentsPerUpsert, rows.count)]
            start += chunk.count
            var sql = """
                INSERT INTO appointments (calendar_key, external_id, source, title, all_day, start_at, end_at, start_date, end_date,
                    time_zone, status, recurrence, series_id, original_start, updated_at, attendees, ical_uid, pushed_from) VALUES
                """
            var binds = PostgresBindings(capacity: chunk.count * 18)
            for (n, appointment) in chunk.enumerated() {
                sql += (n == 0 ? " (" : ", (") + (1...18).map { "$\(n * 18 + $0)" }.joined(separator: ", ") + ")"
                binds.append(calendarKey)
                binds.append(appointment.externalID)
                binds.append(appointment.source.rawValue)
                binds.append(appointment.title)
                Self.bind(appointment.time, to: &binds)
                binds.append(appointment.status)
                binds.append(appointment.recurrence.joined(separator: "\n"))
                binds.append(appointment.seriesID)
                binds.append(appointment.originalStart)
                binds.append(Self.ms(appointment.updatedAt))
                binds.append(appointment.attendees.joined(separator: "\n"))
                binds.append(appointment.iCalUID)
                binds.append(appointment.pushedFrom)
            }
            sql += """
                 ON CONFLICT (calendar_key, external_id) DO UPDATE SET
                    source = excluded.source, title = excluded.title, all_day = excluded.all_day, start_at = excluded.start_at,
                    end_at = excluded.end_at, start_date = excluded.start_date, end_date = excluded.end_date,
                    time_zone = excluded.time_zone, status = excluded.status, recurrence = excluded.recurrence,
                    series_id = excluded.series_id, original_start = excluded.original_start, updated_at = excluded.updated_at,
                    attendees = excluded.attendees, ical_uid = excluded.ical_uid, pushed_from = excluded.pushed_from
                """
            try await db.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        }
    }

    /// Removes the calendar's appointments, categories and cursor in one transaction.
    public func clearCalendar(calendarKey: String) async throws -> Int {
        try await transaction("clearing \(calendarKey) from appointments") { db in
            let removed = try await Self.count(db.query("DELETE FROM appointments WHERE calendar_key = \(calendarKey) RETURNING 1", logger: logger))
            try await db.query("DELETE FROM appointment_categories WHERE calendar_key = \(calendarKey)", logger: logger)
            try await db.query("DELETE FROM sync_cursors WHERE calendar_key = \(calendarKey)", logger: logger)
            return removed
        }
    }

    /// The stored cursor.
    public func syncCursor(calendarKey: String) async throws -> String? {
        try await read("reading sync_cursors") { db in
            for try await cursor in try await db.query("SELECT cursor FROM sync_cursors WHERE calendar_key = \(calendarKey)", logger: logger)
                .decode(String.self)
            {
                return cursor
            }
            return nil
        }
    }

    /// When the cursor was last saved.
    public func syncCursorUpdatedAt(calendarKey: String) async throws -> Date? {
        try await read("reading sync_cursors") { db in
            for try await updated in try await db.query("SELECT updated_at FROM sync_cursors WHERE calendar_key = \(calendarKey)", logger: logger)
                .decode(Date.self)
            {
                return Self.ms(updated) as Date
            }
            return nil
        }
    }

    /// Deletes the cursor only; the next sync is full and replaces the appointments when it commits.
    public func dropSyncCursor(calendarKey: String) async throws {
        try await transaction("dropping a sync cursor") { db in
            try await db.query("DELETE FROM sync_cursors WHERE calendar_key = \(calendarKey)", logger: logger)
        }
    }

    /// The calendar's appointments, cancelled instances included, by external id.
    public func appointments(calendarKey: String) async throws -> [Appointment] {
        try await read("reading appointments") { db in
            let rows = try await db.query(
                """
                SELECT source, external_id, title, all_day, start_at, end_at, start_date, end_date, time_zone, status,
                       recurrence, series_id, original_start, updated_at, attendees, ical_uid, pushed_from
                FROM appointments WHERE calendar_key = \(calendarKey) ORDER BY external_id COLLATE "C"
                """, logger: logger)
            var result: [Appointment] = []
            for try await (
                source, externalID, title, allDay, startAt, endAt, startDate, endDate, zone, status, recurrence, seriesID,
                originalStart, updatedAt, attendees, iCalUID, pushedFrom
            ) in rows.decode(
                (
                    String, String, String, Bool, Date?, Date?, String?, String?, String?, String, String, String?, String?, Date?, String,
                    String?, String?
                ).self
            ) {
                result.append(
                    Appointment(
                        source: Provider(rawValue: source) ?? .google, calendarKey: calendarKey, externalID: externalID, title: title,
                        time: try Self.time(
                            allDay: allDay, start: startAt, end: endAt, startDate: startDate, endDate: endDate, zone: zone,
                            table: "appointments", id: externalID),
                        status: status, recurrence: Self.lines(recurrence), seriesID: seriesID, originalStart: originalStart,
                        updatedAt: Self.ms(updatedAt), attendees: Self.lines(attendees), iCalUID: iCalUID, pushedFrom: pushedFrom
                    ))
            }
            return result
        }
    }

    // MARK: Helpers shared with LeadCenter appointments

    /// Binds a time to the six columns `all_day, start_at, end_at, start_date, end_date, time_zone`.
    static func bind(_ time: AppointmentTime, to binds: inout PostgresBindings) {
        switch time {
        case .timed(let start, let end, let zone):
            binds.append(false)
            binds.append(ms(start))
            binds.append(ms(end))
            binds.appendNull()
            binds.appendNull()
            binds.append(zone)
        case .allDay(let startDate, let endDate):
            binds.append(true)
            binds.appendNull()
            binds.appendNull()
            binds.append(startDate)
            binds.append(endDate)
            binds.appendNull()
        }
    }

    /// Reads a time from the same six columns; a timed row without its instants is an error naming the row.
    static func time(allDay: Bool, start: Date?, end: Date?, startDate: String?, endDate: String?, zone: String?, table: String, id: String) throws -> AppointmentTime {
        if allDay { return .allDay(startDate: startDate ?? "", endDate: endDate ?? "") }
        guard let start, let end else {
            throw PostgresStoreError(.decoding, "\(table) row \(id): a timed appointment has NULL in start_at or end_at")
        }
        return .timed(start: ms(start), end: ms(end), timeZone: zone)
    }

    /// A newline-joined list column (`recurrence`, `attendees`).
    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    /// Rows a statement returned (`… RETURNING 1`).
    static func count(_ rows: PostgresRowSequence) async throws -> Int {
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }
}
