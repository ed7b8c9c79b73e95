import Foundation
import GatewayCore

extension SQLiteStore: PushStore {
    /// The user's push target.
    public func pushTarget(userID: String) async throws -> String? {
        try await run { database in
            try database.first("SELECT calendar_key FROM push_targets WHERE user_id = ?", userID) { $0.string(0) } ?? nil
        }
    }

    /// Sets or clears it (one per user by construction).
    public func setPushTarget(userID: String, calendarKey: String?) async throws {
        try await run { database in
            let statement: SQLiteStatement
            if let calendarKey {
                statement = try database.prepare(
                    """
                    INSERT INTO push_targets (user_id, calendar_key) VALUES (?, ?)
                    ON CONFLICT(user_id) DO UPDATE SET calendar_key = excluded.calendar_key
                    """)
                statement.bind(2, calendarKey)
            } else {
                statement = try database.prepare("DELETE FROM push_targets WHERE user_id = ?")
            }
            statement.bind(1, userID)
            try statement.run()
        }
    }

    /// Saves the appointment, its push state and the job together.
    public func saveLeadCenterAppointment(_ appointment: LeadCenterAppointment, push: (action: PushAction, calendarKey: String)?, state: PushState) async throws {
        let now = Self.milliseconds(Date())
        try await run { database in
            try database.transaction {
                try Self.write(appointment, into: database)
                try database.run("UPDATE leadcenter_appointments SET push_status = ?, push_error = ? WHERE id = ?", state.status, state.error, appointment.id)
                if let push { try Self.enqueue(appointment.id, push, now: now, into: database) }
            }
        }
    }

    /// Hides the appointment and enqueues the provider delete (or removes it at once when nothing was pushed).
    public func markLeadCenterAppointmentDeleted(id: String, push: (action: PushAction, calendarKey: String)?) async throws {
        let now = Self.milliseconds(Date())
        try await run { database in
            try database.transaction {
                if let push {
                    try database.run("UPDATE leadcenter_appointments SET deleted_at_ms = ?, push_status = 'pending' WHERE id = ?", now, id)
                    try Self.enqueue(id, push, now: now, into: database)
                } else {
                    try database.run("DELETE FROM leadcenter_appointments WHERE id = ?", id)
                }
            }
        }
    }

    static func enqueue(_ appointmentID: String, _ push: (action: PushAction, calendarKey: String), now: Int64, into database: SQLiteDatabase) throws {
        try database.run("INSERT INTO push_jobs (appointment_id, action, calendar_key, next_attempt_ms) VALUES (?, ?, ?, ?)", appointmentID, push.action.rawValue, push.calendarKey, now)
    }

    /// The push state.
    public func pushState(appointmentID: String) async throws -> PushState? {
        try await run { database in
            try database.first("SELECT push_status, pushed_calendar_key, pushed_external_id, push_error FROM leadcenter_appointments WHERE id = ?", appointmentID) { statement -> PushState in
                PushState(
                    status: statement.string(0) ?? "no_target", calendarKey: statement.isNull(1) ? nil : statement.string(1),
                    externalID: statement.isNull(2) ? nil : statement.string(2), error: statement.isNull(3) ? nil : statement.string(3)
                )
            }
        }
    }

    /// Due jobs: only the oldest of each appointment, so an appointment's pushes run in order.
    public func duePushJobs(now: Date, limit: Int) async throws -> [PushJob] {
        let when = Self.milliseconds(now)
        return try await run { database in
            let statement = try database.prepare(
                """
                SELECT id, appointment_id, action, calendar_key, attempts, next_attempt_ms FROM push_jobs j
                WHERE next_attempt_ms <= ? AND id = (SELECT MIN(id) FROM push_jobs WHERE appointment_id = j.appointment_id)
                ORDER BY id LIMIT ?
                """)
            statement.bind(1, when)
            statement.bind(2, Int64(limit))
            var jobs: [PushJob] = []
            while try statement.step() {
                jobs.append(
                    PushJob(
                        id: statement.int64(0), appointmentID: statement.string(1) ?? "",
                        action: PushAction(rawValue: statement.string(2) ?? "") ?? .update, calendarKey: statement.string(3) ?? "",
                        attempts: Int(statement.int64(4)), nextAttemptAt: Self.date(statement.int64(5))
                    ))
            }
            return jobs
        }
    }

    /// Success: the job goes, the appointment records where it now is (a finished delete removes the row).
    public func completePushJob(_ job: PushJob, state: PushState) async throws {
        try await run { database in
            try database.transaction {
                try database.run("DELETE FROM push_jobs WHERE id = ?", job.id)
                if job.action == .delete {
                    try database.run("DELETE FROM leadcenter_appointments WHERE id = ? AND deleted_at_ms IS NOT NULL", job.appointmentID)
                } else {
                    try database.run(
                        """
                        UPDATE leadcenter_appointments SET push_status = ?, pushed_calendar_key = ?, pushed_external_id = ?, push_error = NULL
                        WHERE id = ?
                        """, state.status, state.calendarKey, state.externalID, job.appointmentID)
                }
            }
        }
    }

    /// Failure: try again later.
    public func retryPushJob(_ job: PushJob, nextAttemptAt: Date, error: String) async throws {
        let when = Self.milliseconds(nextAttemptAt)
        try await run { database in
            try database.transaction {
                try database.run("UPDATE push_jobs SET attempts = attempts + 1, next_attempt_ms = ?, last_error = ? WHERE id = ?", when, error, job.id)
                try database.run("UPDATE leadcenter_appointments SET push_status = 'pending', push_error = ? WHERE id = ?", error, job.appointmentID)
            }
        }
    }

    /// Permanent failure.
    public func abandonPushJob(_ job: PushJob, error: String) async throws {
        try await run { database in
            try database.transaction {
                try database.run("DELETE FROM push_jobs WHERE id = ?", job.id)
                try database.run("UPDATE leadcenter_appointments SET push_status = 'failed', push_error = ? WHERE id = ?", error, job.appointmentID)
            }
        }
    }

    /// Ids calgate pushed into a calendar.
    public func pushedExternalIDs(calendarKey: String) async throws -> Set<String> {
        try await pushedValues(calendarKey: calendarKey, column: "pushed_external_id")
    }

    /// iCalendar UIDs of pushed events in a calendar.
    public func pushedICalUIDs(calendarKey: String) async throws -> Set<String> {
        try await pushedValues(calendarKey: calendarKey, column: "pushed_ical_uid")
    }

    /// The non-null values of one `pushed_*` column (a fixed name, never input) over a calendar's pushed appointments.
    private func pushedValues(calendarKey: String, column: StaticString) async throws -> Set<String> {
        try await run { database in
            let statement = try database.prepare(
                "SELECT \(column) FROM leadcenter_appointments WHERE pushed_calendar_key = ? AND \(column) IS NOT NULL"
            )
            statement.bind(1, calendarKey)
            var values: Set<String> = []
            while try statement.step() { if let value = statement.string(0) { values.insert(value) } }
            return values
        }
    }

    /// Records a pushed event's iCalendar UID.
    public func setPushedICalUID(appointmentID: String, iCalUID: String) async throws {
        try await run { database in
            try database.run("UPDATE leadcenter_appointments SET pushed_ical_uid = ? WHERE id = ?", iCalUID, appointmentID)
        }
    }

    /// Jobs not yet done.
    public func pendingPushJobCount() async throws -> Int {
        try await run { database in
            let statement = try database.prepare("SELECT COUNT(*) FROM push_jobs")
            guard try statement.step() else { return 0 }
            let count = Int(statement.int64(0))
            try statement.run()
            return count
        }
    }

    /// Whether `job` is still queued unchanged and due.
    public func isPushJobDue(_ job: PushJob, now: Date) async throws -> Bool {
        let nowMS = Self.milliseconds(now)
        return try await run { database in
            let statement = try database.prepare("SELECT 1 FROM push_jobs WHERE id = ? AND attempts = ? AND next_attempt_ms <= ?")
            statement.bind(1, job.id)
            statement.bind(2, Int64(job.attempts))
            statement.bind(3, nowMS)
            let found = try statement.step()
            if found { try statement.run() }
            return found
        }
    }
}
