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
    /// Unprocessed entries with an id above `after`, in commit order, oldest first, at most `limit`. Ids grow with
    /// commit order, so a reader that remembers the last id it saw reads each row once.
    func pending(after: Int64, limit: Int) async throws -> [StoredInboxEntry]
    /// Marks entries processed so `pending` no longer returns them.
    func markProcessed(_ ids: [Int64]) async throws
    /// Which of `ids` are still unprocessed (a sync that claimed a calendar after another instance's sync of it asks
    /// this, so it does not repeat work that is done).
    func unprocessed(_ ids: [Int64]) async throws -> [Int64]
    /// Number of unprocessed entries and the receive time of the oldest.
    func backlog() async throws -> InboxBacklog
}

extension InboxStore {
    /// Every unprocessed entry, oldest first, at most `limit`.
    public func pending(limit: Int) async throws -> [StoredInboxEntry] {
        try await pending(after: 0, limit: limit)
    }
}

/// Size and age of the unprocessed inbox.
public struct InboxBacklog: Sendable, Hashable {
    /// Number of unprocessed rows.
    public var count: Int
    /// Receive time of the oldest unprocessed row, if any.
    public var oldestReceivedAt: Date?

    /// Creates a backlog summary.
    public init(count: Int, oldestReceivedAt: Date?) {
        self.count = count
        self.oldestReceivedAt = oldestReceivedAt
    }
}

/// The gateway's store port. `SQLiteStore` (one process, the default) and `PostgresStore` (several instances sharing
/// one database) implement it.
public protocol GatewayStore: InboxStore, GoogleChannelStore, GraphSubscriptionStore, AppointmentStore, ConnectionStore, LeadCenterAppointmentStore, PushStore, RedtailIntegrationStore {
    /// Current schema version after migrations.
    func schemaVersion() async throws -> Int
    /// Proves the database accepts a durable write (used by the health check). Throws when it cannot.
    func checkWritable() async throws
    /// Changes after every committed write to a Google channel or Graph subscription row. Caches of opened
    /// verification secrets compare it to know when to forget what they hold.
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
