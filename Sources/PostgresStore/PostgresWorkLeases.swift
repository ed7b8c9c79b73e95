import Foundation
import GatewayCore
import PostgresNIO
import Synchronization

/// Work leases shared by every instance on the database: rows in `work_leases`, claimed with
/// `SELECT … FOR UPDATE SKIP LOCKED` and held until `expires_at` (the database clock, so instances' clocks need not
/// agree). A released claim can leave a record in `work_log`.
public final class PostgresWorkLeases: WorkLeasing {
    private let store: PostgresStore
    /// Work-log rows are kept this long.
    static let workLogRetention = "7 days"
    /// Prune every this many inserts.
    static let pruneEvery = 500

    init(store: PostgresStore) {
        self.store = store
    }

    /// Always true: other instances claim from the same table.
    public var isShared: Bool { true }

    /// This instance's name (`<host>-<pid>` unless configured).
    public var owner: String { store.instanceID }

    /// The partitions this instance owns (kept by `PartitionKeeper` through `partitionLeasing`). Until the first
    /// heartbeat it owns them all (as before partitions: correct, since every sync runs under its calendar's lease).
    public var partitions: PartitionOwnership { store.partitionOwnership }

    /// `partition_leases` and `calgate_instances`.
    public var partitionLeasing: (any PartitionLeasing)? { PostgresPartitionLeases(store: store) }

    /// Claims `key` for `owner` unless another owner's claim has not lapsed; claiming what `owner` holds extends it.
    public func claimLease(_ key: String, owner: String, duration: TimeInterval) async throws -> Bool {
        let seconds = max(0, duration)
        let logger = store.logger
        return try await store.transaction("claiming work lease \(key)") { connection in
            // Make sure the row exists, so there is something to lock.
            try await connection.query(
                """
                INSERT INTO work_leases (key, owner, expires_at) VALUES (\(key), \(owner), '-infinity')
                ON CONFLICT (key) DO NOTHING
                """, logger: logger)
            let rows = try await connection.query(
                "SELECT owner, expires_at > clock_timestamp() FROM work_leases WHERE key = \(key) FOR UPDATE SKIP LOCKED", logger: logger
            )
            var holder: (owner: String, live: Bool)?
            for try await (rowOwner, live) in rows.decode((String, Bool).self) { holder = (rowOwner, live) }
            // No row: another instance is in the middle of claiming it.
            guard let holder else { return false }
            if holder.owner != owner && holder.live { return false }
            try await connection.query(
                """
                UPDATE work_leases SET owner = \(owner), expires_at = clock_timestamp() + make_interval(secs => \(seconds))
                WHERE key = \(key)
                """, logger: logger)
            return true
        }
    }

    /// Deletes `owner`'s claim of `key` (if it holds it) and records `record` in the work log, in one transaction.
    public func releaseLease(_ key: String, owner: String, record: WorkRecord?) async throws {
        let logger = store.logger
        let prune = record != nil && store.workLogInserts.add(1, ordering: .relaxed).newValue % Self.pruneEvery == 0
        try await store.transaction("releasing work lease \(key)") { connection in
            try await connection.query("DELETE FROM work_leases WHERE key = \(key) AND owner = \(owner)", logger: logger)
            guard let record else { return }
            try await connection.query(
                """
                INSERT INTO work_log (kind, key, owner, started_at, inbox_rows, outcome)
                VALUES (\(record.kind), \(key), \(owner), \(PostgresStore.ms(record.startedAt)), \(record.inboxRows), \(record.outcome))
                """, logger: logger)
            if prune {
                try await connection.query(
                    "DELETE FROM work_log WHERE finished_at < clock_timestamp() - interval '\(unescaped: Self.workLogRetention)'", logger: logger
                )
            }
        }
    }
}

/// One row of the work log.
public struct WorkLogEntry: Sendable, Hashable {
    /// What ran.
    public var record: WorkRecord
    /// The lease key it ran under.
    public var key: String
    /// The instance that ran it.
    public var owner: String
    /// When it finished (the database clock).
    public var finishedAt: Date
}

extension PostgresStore {
    /// The work log, oldest first: which instance did what (the scale-out test reads it to prove nothing ran twice).
    public func workLog(limit: Int = 10_000) async throws -> [WorkLogEntry] {
        try await read("reading work_log") { connection in
            let rows = try await connection.query(
                """
                SELECT kind, key, owner, started_at, finished_at, inbox_rows, outcome FROM work_log ORDER BY id LIMIT \(Int64(max(0, limit)))
                """, logger: logger)
            var entries: [WorkLogEntry] = []
            for try await (kind, key, owner, started, finished, inboxRows, outcome)
                in rows.decode((String, String, String, Date, Date, [Int64], String).self)
            {
                entries.append(
                    WorkLogEntry(
                        record: WorkRecord(kind: kind, startedAt: Self.ms(started), inboxRows: inboxRows, outcome: outcome),
                        key: key, owner: owner, finishedAt: finished
                    ))
            }
            return entries
        }
    }
}
