import CalgateMacros
import Foundation
import Synchronization

/// Work that must run on one instance at a time — a calendar's sync, a calendar's subscription maintenance, a
/// Redtail poll, a push job — is claimed under a key before it runs.
///
/// On PostgreSQL several calgate instances share one database: a claim is a row taken with
/// `SELECT … FOR UPDATE SKIP LOCKED` and held until a deadline, so the work of an instance that dies is free again
/// when its lease lapses. With SQLite one process owns the database and `LocalWorkLeases` keeps the claims in memory.
public protocol WorkLeasing: Sendable {
    /// Whether other processes take leases from the same place (PostgreSQL). When false, claims only keep this
    /// process's own tasks apart, and callers may skip the re-checks a shared store needs after a claim.
    var isShared: Bool { get }
    /// This instance's name as a lease owner (`<host>-<pid>` on PostgreSQL); what its claims are held under.
    var owner: String { get }
    /// Claims `key` for `owner` for `duration` seconds, unless another owner holds a claim that has not lapsed.
    /// Returns true when `owner` holds it now; claiming again what `owner` holds extends it (a heartbeat).
    func claimLease(_ key: String, owner: String, duration: TimeInterval) async throws -> Bool
    /// Gives the claim up; nothing happens when `owner` does not hold it. `record`, when given, is kept in the
    /// store's work log (on stores that keep one) in the same transaction.
    func releaseLease(_ key: String, owner: String, record: WorkRecord?) async throws
    /// The partitions this instance owns (`Partitions`): work about calendars outside them is another instance's.
    /// A store one process owns owns them all.
    var partitions: PartitionOwnership { get }
    /// Where partition leases are claimed and renewed (PostgreSQL); nil when this process owns every partition.
    var partitionLeasing: (any PartitionLeasing)? { get }
}

extension WorkLeasing {
    /// Every partition: one process owns the store.
    public var partitions: PartitionOwnership { .everything }

    /// None: one process owns every partition.
    public var partitionLeasing: (any PartitionLeasing)? { nil }

    /// Gives the claim up without a work-log record.
    public func releaseLease(_ key: String, owner: String) async throws {
        try await releaseLease(key, owner: owner, record: nil)
    }

    /// Claims `key` under this instance's own name.
    public func claim(_ key: String, for duration: TimeInterval) async throws -> Bool {
        try await claimLease(key, owner: owner, duration: duration)
    }

    /// Releases this instance's claim on `key`, logging `record` if given. Failures are swallowed: an unreleased
    /// claim lapses on its own.
    public func release(_ key: String, record: WorkRecord? = nil) async {
        try? await releaseLease(key, owner: owner, record: record)
    }
}

/// What one claimed piece of work did, for the work log that shows which instance did what (and lets the
/// scale-out test prove nothing ran twice).
@MemberwiseInit
public struct WorkRecord: Sendable, Hashable {
    /// `sync`, `renewal` or `push` (a Redtail poll is a `sync` of its calendar).
    public var kind: String
    /// When the work started (after its claim).
    public var startedAt: Date
    /// The items the work covered: the inbox rows a sync covered, a push job's id; empty for renewals.
    public var inboxRows: [Int64] = []
    /// Short outcome: `ok`, `skipped` (another instance had done it), `failed: …`.
    public var outcome: String
}

/// Claims kept in this process's memory: enough when one process owns the database (SQLite). They need no expiry:
/// a process that dies takes its claims with it.
public final class LocalWorkLeases: WorkLeasing {
    private let held = Mutex<[String: String]>([:])

    /// Creates an empty set of claims.
    public init() {}

    /// Always false: nothing outside this process shares these claims.
    public var isShared: Bool { false }

    /// The one owner name a single process needs.
    public var owner: String { "local" }

    /// Claims `key` unless another owner holds it.
    public func claimLease(_ key: String, owner: String, duration: TimeInterval) async throws -> Bool {
        held.withLock { held in
            if let holder = held[key], holder != owner { return false }
            held[key] = owner
            return true
        }
    }

    /// Releases `key` if `owner` holds it.
    public func releaseLease(_ key: String, owner: String, record: WorkRecord?) async throws {
        held.withLock { held in
            if held[key] == owner { held[key] = nil }
        }
    }
}
