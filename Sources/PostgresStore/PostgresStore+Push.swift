import Foundation
import GatewayCore
import PostgresNIO

extension PostgresStore: PushStore {
    /// The user's push target.
    public func pushTarget(userID: String) async throws -> String? {
        try await read("reading push_targets") { db in
            for try await key in try await db.query("SELECT calendar_key FROM push_targets WHERE user_id = \(userID)", logger: logger)
                .decode(String.self)
            {
                return key
            }
            return nil
        }
    }

    /// Sets or (with nil) clears it (one per user by construction).
    public func setPushTarget(userID: String, calendarKey: String?) async throws {
        try await transaction("saving push_targets row") { db in
            if let calendarKey {
                try await db.query(
                    """
                    INSERT INTO push_targets (user_id, calendar_key) VALUES (\(userID), \(calendarKey))
                    ON CONFLICT (user_id) DO UPDATE SET calendar_key = excluded.calendar_key
                    """, logger: logger)
            } else {
                try await db.query("DELETE FROM push_targets WHERE user_id = \(userID)", logger: logger)
            }
        }
    }

    /// Saves the appointment, its push state and the job in one transaction.
    public func saveLeadCenterAppointment(_ appointment: LeadCenterAppointment, push: (action: PushAction, calendarKey: String)?, state: PushState) async throws {
        let now = Self.ms(Date())
        let job = push.map { (action: $0.action, calendarKey: $0.calendarKey) }
        try await transaction("saving leadcenter_appointments row \(appointment.id) with its push job") { db in
            try await write(appointment, on: db)
            try await db.query(
                "UPDATE leadcenter_appointments SET push_status = \(state.status), push_error = \(state.error) WHERE id = \(appointment.id)",
                logger: logger
            )
            if let job { try await enqueue(appointment.id, action: job.action, calendarKey: job.calendarKey, now: now, on: db) }
        }
    }

    /// Hides the appointment and enqueues the provider delete, or removes it at once when there is nothing to push.
    public func markLeadCenterAppointmentDeleted(id: String, push: (action: PushAction, calendarKey: String)?) async throws {
        let now = Self.ms(Date())
        let job = push.map { (action: $0.action, calendarKey: $0.calendarKey) }
        try await transaction("deleting leadcenter_appointments row \(id)") { db in
            if let job {
                try await db.query(
                    "UPDATE leadcenter_appointments SET deleted_at = \(now), push_status = 'pending' WHERE id = \(id)", logger: logger
                )
                try await enqueue(id, action: job.action, calendarKey: job.calendarKey, now: now, on: db)
            } else {
                try await db.query("DELETE FROM leadcenter_appointments WHERE id = \(id)", logger: logger)
            }
        }
    }

    private func enqueue(_ appointmentID: String, action: PushAction, calendarKey: String, now: Date, on db: PostgresConnection) async throws {
        try await db.query(
            """
            INSERT INTO push_jobs (appointment_id, action, calendar_key, next_attempt_at)
            VALUES (\(appointmentID), \(action.rawValue), \(calendarKey), \(now))
            """, logger: logger)
    }

    /// The push state of an appointment (deleted-but-pending ones included).
    public func pushState(appointmentID: String) async throws -> PushState? {
        try await read("reading leadcenter_appointments push state") { db in
            let rows = try await db.query(
                """
                SELECT push_status, pushed_calendar_key, pushed_external_id, push_error FROM leadcenter_appointments WHERE id = \(appointmentID)
                """, logger: logger)
            for try await (status, calendarKey, externalID, error) in rows.decode((String, String?, String?, String?).self) {
                return PushState(status: status, calendarKey: calendarKey, externalID: externalID, error: error)
            }
            return nil
        }
    }

    /// Due jobs, oldest first: only the oldest of each appointment, so an appointment's pushes run in order.
    public func duePushJobs(now: Date, limit: Int) async throws -> [PushJob] {
        let when = Self.ms(now)
        return try await read("reading push_jobs") { db in
            let rows = try await db.query(
                """
                SELECT id, appointment_id, action, calendar_key, attempts, next_attempt_at FROM push_jobs j
                WHERE next_attempt_at <= \(when) AND id = (SELECT MIN(id) FROM push_jobs WHERE appointment_id = j.appointment_id)
                ORDER BY id LIMIT \(Int64(max(0, limit)))
                """, logger: logger)
            var jobs: [PushJob] = []
            for try await (id, appointmentID, action, calendarKey, attempts, next)
                in rows.decode((Int64, String, String, String, Int32, Date).self)
            {
                // An unknown action reads as `update`, as in SQLiteStore.
                jobs.append(
                    PushJob(
                        id: id, appointmentID: appointmentID, action: PushAction(rawValue: action) ?? .update, calendarKey: calendarKey,
                        attempts: Int(attempts), nextAttemptAt: Self.ms(next)
                    ))
            }
            return jobs
        }
    }

    /// Success: the job goes, and the appointment records where it now is (a finished delete removes the row).
    public func completePushJob(_ job: PushJob, state: PushState) async throws {
        try await transaction("completing push job \(job.id)") { db in
            try await db.query("DELETE FROM push_jobs WHERE id = \(job.id)", logger: logger)
            if job.action == .delete {
                try await db.query(
                    "DELETE FROM leadcenter_appointments WHERE id = \(job.appointmentID) AND deleted_at IS NOT NULL", logger: logger
                )
            } else {
                try await db.query(
                    """
                    UPDATE leadcenter_appointments SET push_status = \(state.status), pushed_calendar_key = \(state.calendarKey),
                        pushed_external_id = \(state.externalID), push_error = NULL
                    WHERE id = \(job.appointmentID)
                    """, logger: logger)
            }
        }
    }

    /// Failure: counts the attempt, schedules the next, records the error on the appointment.
    public func retryPushJob(_ job: PushJob, nextAttemptAt: Date, error: String) async throws {
        let when = Self.ms(nextAttemptAt)
        try await transaction("rescheduling push job \(job.id)") { db in
            try await db.query(
                "UPDATE push_jobs SET attempts = attempts + 1, next_attempt_at = \(when), last_error = \(error) WHERE id = \(job.id)",
                logger: logger
            )
            try await db.query(
                "UPDATE leadcenter_appointments SET push_status = 'pending', push_error = \(error) WHERE id = \(job.appointmentID)",
                logger: logger
            )
        }
    }

    /// Permanent failure: the job goes and the appointment is marked failed.
    public func abandonPushJob(_ job: PushJob, error: String) async throws {
        try await transaction("abandoning push job \(job.id)") { db in
            try await db.query("DELETE FROM push_jobs WHERE id = \(job.id)", logger: logger)
            try await db.query(
                "UPDATE leadcenter_appointments SET push_status = 'failed', push_error = \(error) WHERE id = \(job.appointmentID)",
                logger: logger
            )
        }
    }

    /// Provider ids of events calgate pushed into a calendar.
    public func pushedExternalIDs(calendarKey: String) async throws -> Set<String> {
        try await pushedValues(calendarKey: calendarKey, column: "pushed_external_id")
    }

    /// iCalendar UIDs of events calgate pushed into a calendar.
    public func pushedICalUIDs(calendarKey: String) async throws -> Set<String> {
        try await pushedValues(calendarKey: calendarKey, column: "pushed_ical_uid")
    }

    /// The non-null values of one `pushed_*` column (a fixed name, never input) over a calendar's pushed appointments.
    private func pushedValues(calendarKey: String, column: StaticString) async throws -> Set<String> {
        try await read("reading leadcenter_appointments") { db in
            var values: Set<String> = []
            let rows = try await db.query(
                """
                SELECT \(unescaped: "\(column)") FROM leadcenter_appointments
                WHERE pushed_calendar_key = \(calendarKey) AND \(unescaped: "\(column)") IS NOT NULL
                """, logger: logger)
            for try await value in rows.decode(String.self) { values.insert(value) }
            return values
        }
    }

    /// Records a pushed event's iCalendar UID.
    public func setPushedICalUID(appointmentID: String, iCalUID: String) async throws {
        try await transaction("saving leadcenter_appointments pushed_ical_uid") { db in
            try await db.query(
                "UPDATE leadcenter_appointments SET pushed_ical_uid = \(iCalUID) WHERE id = \(appointmentID)", logger: logger
            )
        }
    }

    /// Jobs not yet done.
    public func pendingPushJobCount() async throws -> Int {
        try await read("reading push_jobs") { db in
            for try await count in try await db.query("SELECT COUNT(*) FROM push_jobs", logger: logger).decode(Int64.self) {
                return Int(count)
            }
            return 0
        }
    }

    /// Whether `job` is still queued unchanged (same attempt count) and due at `now`.
    public func isPushJobDue(_ job: PushJob, now: Date) async throws -> Bool {
        try await read("reading push_jobs") { db in
            let rows = try await db.query(
                "SELECT 1 FROM push_jobs WHERE id = \(job.id) AND attempts = \(Int64(job.attempts)) AND next_attempt_at <= \(Self.ms(now))", logger: logger
            )
            for try await _ in rows.decode(Int32.self) { return true }
            return false
        }
    }
}
