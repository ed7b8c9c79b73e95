import CalgateMacros
import Foundation

/// The durable inbox: every webhook awaits `append` before it answers 2xx.
///
/// Implementations batch concurrent appends into one transaction (group commit); each call returns only after
/// its own rows are committed, or throws, in which case nothing of that call is visible and the webhook answers 5xx.
public protocol InboxStore: Sendable {
    /// Appends entries durably. Returns one result per entry, in order, after the commit.
    func append(_ entries: [InboxEntry]) async throws -> [InboxAppendResult]
    /// `append(_:)` for callers on an event loop, which must not wait: `completion` runs once, on the store's own
    /// thread, after the commit (or with the error); it must hand off quickly and never block.
    func append(_ entries: [InboxEntry], completion: @escaping @Sendable (Result<[InboxAppendResult], any Error>) -> Void)
    /// Unprocessed entries past `cursor`, oldest first, at most `limit`. A reader that advances its cursor past what
    /// it read (`InboxCursor.advance(past:)`) reads each row once, even rows an instance committed after another's.
    func pending(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry]
    /// `pending(after:limit:)` as the sync scheduler reads it: id, provider, channel, kind, receive time and appender,
    /// and of the headers only the calendar verification recorded (`InboxEntry.calendarKeyHeader`); no other header
    /// and no body is read or decoded (the scheduler routes each row and never looks at them).
    func pendingRoutes(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry]
    /// `pendingRoutes(after:limit:)` narrowed to rows of `partitions` (`InboxEntry.partition`; nil: every row), so an
    /// instance of several reads only its share. Rows stored before partitions were recorded are in every
    /// instance's read. Stores one process owns (SQLite) own every partition and return every row.
    func pendingRoutes(after cursor: InboxCursor, limit: Int, partitions: Set<Int>?) async throws -> [StoredInboxEntry]
    /// Marks entries processed so `pending` no longer returns them (one statement, however many ids).
    func markProcessed(_ ids: [Int64]) async throws
    /// Which of `ids` are still unprocessed (a sync that claimed a calendar after another instance's sync of it asks
    /// this, so it does not repeat work that is done).
    func unprocessed(_ ids: [Int64]) async throws -> [Int64]
    /// Number of unprocessed entries and the receive time of the oldest.
    func backlog() async throws -> InboxBacklog
}

extension InboxStore {
    /// `append(_:completion:)` for async callers: returns after the commit holding the entries.
    public func append(_ entries: [InboxEntry]) async throws -> [InboxAppendResult] {
        guard !entries.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            append(entries) { continuation.resume(with: $0) }
        }
    }

    /// Stores without a narrower read return whole rows.
    public func pendingRoutes(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry] {
        try await pending(after: cursor, limit: limit)
    }

    /// Stores one process owns read every row.
    public func pendingRoutes(after cursor: InboxCursor, limit: Int, partitions: Set<Int>?) async throws -> [StoredInboxEntry] {
        try await pendingRoutes(after: cursor, limit: limit)
    }

    /// Every unprocessed entry, oldest first, at most `limit`.
    public func pending(limit: Int) async throws -> [StoredInboxEntry] {
        try await pending(after: .start, limit: limit)
    }
}

/// How far a reader of the inbox has got: the last row id seen per appender.
///
/// An appender is one committing thread of one store (an instance's group commit), and its rows commit in the order
/// of their ids. Rows of different appenders do not (a PostgreSQL sequence hands out ids before commit, so instance
/// B may commit id 11 while A still holds 10), so one position per appender lets a reader see each row once without
/// a lock that would order every instance's commits — and serialize their fsyncs.
@MemberwiseInit
public struct InboxCursor: Sendable, Hashable {
    /// Last id seen per appender; a missing appender is at 0.
    public private(set) var positions: [String: Int64] = [:]

    /// Before every row.
    public static let start = InboxCursor()

    /// The last id seen of `appender`'s rows.
    public func position(of appender: String) -> Int64 { positions[appender] ?? 0 }

    /// Moves past `rows` (read with this cursor).
    public mutating func advance(past rows: [StoredInboxEntry]) {
        for row in rows where row.id > position(of: row.appender) { positions[row.appender] = row.id }
    }
}

/// Size and age of the unprocessed inbox.
@MemberwiseInit
public struct InboxBacklog: Sendable, Hashable {
    /// Number of unprocessed rows.
    public var count: Int
    /// Receive time of the oldest unprocessed row, if any.
    public var oldestReceivedAt: Date?
}

/// The gateway's store port. `SQLiteStore` (one process, the default) and `PostgresStore` (several instances sharing
/// one database) implement it.
public protocol GatewayStore: InboxStore, PushSubscriptionStore, AppointmentStore, ConnectionStore, LeadCenterAppointmentStore, PushStore, RedtailIntegrationStore, SignInStore {
    /// Current schema version after migrations.
    func schemaVersion() async throws -> Int
    /// Proves the database accepts a durable write (used by the health check). Throws when it cannot.
    func checkWritable() async throws
    /// Changes after every committed write to a push subscription row (any provider's, through `PushSubscriptionStore`
    /// or the Google and Graph views of it). Caches of opened verification secrets compare it to know when to forget
    /// what they hold.
    var webhookCredentialsVersion: UInt64 { get }
    /// Where work that must run once is claimed: in memory for SQLite, shared rows for PostgreSQL.
    var workLeases: any WorkLeasing { get }
    /// Calls `wake` (on any thread; it must return quickly) when inbox rows were committed to a database several
    /// instances share (PostgreSQL `LISTEN/NOTIFY`, any instance's appends, this one's included), so idle schedulers
    /// need not poll often. Stores only one process writes never call it. A later call replaces the handler.
    func onRemoteInboxAppend(_ wake: @escaping @Sendable () -> Void)
    /// Commits anything buffered and closes the database. Appends after `close` throw.
    func close() async
}
