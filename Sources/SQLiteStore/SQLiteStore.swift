import CSQLite
import Foundation
import GatewayCore
import Synchronization

/// Tuning for `SQLiteStore`.
public struct SQLiteStoreConfiguration: Sendable {
    /// How long a statement waits for another connection's lock before failing, in milliseconds.
    public var busyTimeoutMilliseconds: Int32 = 5_000
    /// Most inbox rows committed in one group-commit transaction.
    public var maximumBatchRows: Int = 512
    /// How often a background connection checkpoints the WAL into the database file, in seconds.
    public var checkpointInterval: TimeInterval = 1
    /// Creates defaults.
    public init() {}
}

/// Counters that show group commit at work.
public struct SQLiteStoreStatistics: Sendable, Hashable {
    /// Transactions that committed inbox appends.
    public var commits: Int
    /// Inbox rows appended (duplicates excluded).
    public var appendedRows: Int
}

/// The SQLite implementation of the gateway's store port: WAL, `synchronous=FULL`, versioned migrations, and a
/// durable inbox with group commit.
///
/// All database work runs on one dedicated thread that owns the connection. Appends queue up while a commit is in
/// flight and go into the next transaction together; each caller resumes only after its own rows committed. Rows
/// marked processed ride in the same transaction (`markProcessed`), so the scheduler's bookkeeping never costs the
/// acknowledgements waiting behind it a commit of its own.
public final class SQLiteStore: GatewayStore, @unchecked Sendable {
    // @unchecked: `database` is touched only on `thread`; everything shared is behind `condition`, `checkpointWake`
    // or `stats`.
    private typealias Job = (SQLiteDatabase?) -> Void

    private struct PendingAppend {
        let entries: [InboxEntry]
        /// Each entry's `headers` column, encoded by the appending thread.
        let encodedHeaders: [String]
        let completion: @Sendable (Result<[InboxAppendResult], any Error>) -> Void
    }

    /// Inbox rows to mark processed in the next group commit.
    private struct PendingMark {
        let ids: [Int64]
        let at: Int64
        let completion: @Sendable (Result<Void, any Error>) -> Void
    }

    private struct Queue {
        var jobs: [Job] = []
        var appends: [PendingAppend] = []
        var marks: [PendingMark] = []
        var closing = false
        var finished = false
    }

    /// Database file path.
    public let path: String
    private let configuration: SQLiteStoreConfiguration
    private let condition = NSCondition()
    /// The checkpointer's own wake-up (sharing `condition` would let it swallow a signal meant for the writer).
    private let checkpointWake = NSCondition()
    private var checkpointerStopping = false
    private var queue = Queue()
    private var database: SQLiteDatabase?
    private let stats = Mutex(SQLiteStoreStatistics(commits: 0, appendedRows: 0))
    private let credentialsVersion = Atomic<UInt64>(0)
    private let leases = LocalWorkLeases()
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []

    /// Opens (creating if needed) and migrates the database at `path`; the directory must exist.
    public init(path: String, configuration: SQLiteStoreConfiguration = .init()) throws {
        self.path = path
        self.configuration = configuration
        let database = try SQLiteDatabase(path: path, busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds)
        do {
            try database.execute("PRAGMA journal_mode = WAL")
            try database.execute("PRAGMA synchronous = FULL")
            try database.execute("PRAGMA foreign_keys = ON")
            try SQLiteMigrations.migrate(database)
        } catch {
            database.close()
            throw error
        }
        self.database = database
        // Checkpoints move the WAL into the database file. Run by the committing thread (SQLite's default, every
        // 1,000 pages) one lands inside an acknowledgement now and then and holds up every webhook waiting for that
        // commit; a second connection checkpoints instead, which in WAL mode does not block the writer.
        try? database.execute("PRAGMA wal_autocheckpoint = 0")
        let checkpointer = try SQLiteDatabase(path: path, busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds)
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "calgate-sqlite"
        thread.start()
        let background = Thread { [self] in self.checkpointLoop(checkpointer) }
        background.name = "calgate-sqlite-checkpoint"
        background.start()
    }

    /// Checkpoints the WAL every `checkpointInterval` from its own connection until the store closes.
    private func checkpointLoop(_ connection: SQLiteDatabase) {
        while true {
            checkpointWake.lock()
            if !checkpointerStopping { _ = checkpointWake.wait(until: Date().addingTimeInterval(configuration.checkpointInterval)) }
            let stopping = checkpointerStopping
            checkpointWake.unlock()
            if stopping { break }
            // PASSIVE never waits for the writer or readers; what it cannot copy now it copies next time.
            try? connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        }
        connection.close()
    }

    /// Group-commit counters.
    public var statistics: SQLiteStoreStatistics { stats.withLock { $0 } }

    // MARK: The database thread

    private func runLoop() {
        while true {
            condition.lock()
            while queue.jobs.isEmpty && queue.appends.isEmpty && queue.marks.isEmpty && !queue.closing {
                condition.wait()
            }
            var batch: [PendingAppend] = []
            var rows = 0
            while !queue.appends.isEmpty, rows == 0 || rows + queue.appends[0].entries.count <= configuration.maximumBatchRows {
                let next = queue.appends.removeFirst()
                rows += next.entries.count
                batch.append(next)
            }
            let marks = queue.marks
            queue.marks.removeAll()
            let job: Job? = batch.isEmpty && marks.isEmpty && !queue.jobs.isEmpty ? queue.jobs.removeFirst() : nil
            let shouldFinish = queue.closing && batch.isEmpty && marks.isEmpty && job == nil && queue.jobs.isEmpty && queue.appends.isEmpty
            condition.unlock()

            if !batch.isEmpty || !marks.isEmpty {
                commit(batch, marks: marks)
            } else if let job {
                job(database)
            } else if shouldFinish {
                finish()
                return
            }
        }
    }

    /// One transaction: the appends, then the rows marked processed (behind a savepoint, so a failed mark cannot
    /// cost the appends their commit).
    private func commit(_ batch: [PendingAppend], marks: [PendingMark]) {
        guard let database else {
            for pending in batch { pending.completion(.failure(closedError())) }
            for mark in marks { mark.completion(.failure(closedError())) }
            return
        }
        var markFailure: (any Error)?
        do {
            var newRows = 0
            let results: [[InboxAppendResult]] = try database.transaction {
                let results = try batch.map { pending in
                    try zip(pending.entries, pending.encodedHeaders).map { entry, headers in
                        let result = try insert(entry, headers: headers, into: database)
                        if case .stored = result { newRows += 1 }
                        return result
                    }
                }
                if !marks.isEmpty { markFailure = markProcessed(marks, in: database) }
                return results
            }
            stats.withLock {
                $0.commits += 1
                $0.appendedRows += newRows
            }
            for (pending, result) in zip(batch, results) { pending.completion(.success(result)) }
            for mark in marks { mark.completion(markFailure.map { .failure($0) } ?? .success(())) }
        } catch {
            for pending in batch { pending.completion(.failure(error)) }
            for mark in marks { mark.completion(.failure(error)) }
        }
    }

    /// Marks every pending mark's rows in one statement, stamped with the newest mark's time, inside a savepoint;
    /// returns the error that rolled it back, if any.
    private func markProcessed(_ marks: [PendingMark], in database: SQLiteDatabase) -> (any Error)? {
        let ids = marks.count == 1 ? marks[0].ids : Array(Set(marks.flatMap(\.ids))).sorted()
        let at = marks.map(\.at).max() ?? Self.milliseconds(Date())
        do {
            try database.execute("SAVEPOINT mark_processed")
        } catch {
            return error
        }
        do {
            try database.run(
                "UPDATE inbox SET processed_at_ms = ? WHERE id IN (SELECT value FROM json_each(?)) AND processed_at_ms IS NULL", at,
                Self.jsonArray(ids))
            try database.execute("RELEASE mark_processed")
            return nil
        } catch {
            try? database.execute("ROLLBACK TO mark_processed")
            try? database.execute("RELEASE mark_processed")
            return error
        }
    }

    private func insert(_ entry: InboxEntry, headers: String, into database: SQLiteDatabase) throws -> InboxAppendResult {
        let statement = try database.prepare(
            """
            INSERT INTO inbox (provider, channel_id, dedupe_key, kind, received_at_ms, headers, body)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedupe_key) DO NOTHING
            """)
        statement.bind(1, entry.provider.rawValue)
        statement.bind(2, entry.channelID)
        statement.bind(3, entry.dedupeKey)
        statement.bind(4, entry.kind)
        statement.bind(5, Self.milliseconds(entry.receivedAt))
        statement.bind(6, headers)
        statement.bind(7, blob: entry.body)
        try statement.run()
        if database.changes > 0 { return .stored(database.lastInsertRowID) }
        let existing = try database.prepare("SELECT id FROM inbox WHERE dedupe_key = ?")
        existing.bind(1, entry.dedupeKey)
        guard try existing.step() else {
            throw SQLiteStoreError(.query, path: path, "inbox insert was ignored but no duplicate exists")
        }
        let id = existing.int64(0)
        try existing.run()
        return .duplicate(id)
    }

    private func finish() {
        if let database {
            try? database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            database.close()
        }
        database = nil
        condition.lock()
        queue.finished = true
        let waiters = closeWaiters
        closeWaiters = []
        condition.unlock()
        for waiter in waiters { waiter.resume() }
    }

    private func closedError() -> SQLiteStoreError {
        SQLiteStoreError(.closed, path: path, "the store is closed (the gateway is shutting down)")
    }

    /// Runs `body` on the database thread.
    @discardableResult
    func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteDatabase) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            guard !queue.closing else {
                condition.unlock()
                continuation.resume(throwing: closedError())
                return
            }
            let path = self.path
            queue.jobs.append { database in
                guard let database else {
                    continuation.resume(throwing: SQLiteStoreError(.closed, path: path, "the store is closed"))
                    return
                }
                continuation.resume(with: Result { try body(database) })
            }
            condition.signal()
            condition.unlock()
        }
    }

    // MARK: InboxStore

    /// Queues entries for the next group commit; `completion` runs on the database thread once they committed.
    public func append(_ entries: [InboxEntry], completion: @escaping @Sendable (Result<[InboxAppendResult], any Error>) -> Void) {
        guard !entries.isEmpty else { return completion(.success([])) }
        let encoded = entries.map { InboxHeadersCodec.encode($0.headers) }
        condition.lock()
        guard !queue.closing else {
            condition.unlock()
            completion(.failure(closedError()))
            return
        }
        queue.appends.append(PendingAppend(entries: entries, encodedHeaders: encoded, completion: completion))
        condition.signal()
        condition.unlock()
    }

    /// Unprocessed entries past `cursor`, oldest first. SQLite has one appender (""): ids are AUTOINCREMENT and
    /// assigned by the one writer thread, so they grow in commit order.
    public func pending(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry] {
        let after = cursor.position(of: "")
        return try await run { database in
            let statement = try database.prepare(
                """
                SELECT id, provider, channel_id, dedupe_key, kind, received_at_ms, headers, body, attempts
                FROM inbox WHERE processed_at_ms IS NULL AND id > ? ORDER BY id LIMIT ?
                """)
            statement.bind(1, after)
            statement.bind(2, Int64(max(0, limit)))
            var rows: [StoredInboxEntry] = []
            while try statement.step() {
                let provider = Provider(rawValue: statement.string(1) ?? "") ?? .google
                let entry = InboxEntry(
                    provider: provider,
                    channelID: statement.string(2) ?? "",
                    dedupeKey: statement.isNull(3) ? nil : statement.string(3),
                    kind: statement.string(4) ?? "",
                    receivedAt: Date(timeIntervalSince1970: Double(statement.int64(5)) / 1000),
                    headers: InboxHeadersCodec.decode(statement.string(6) ?? "{}"),
                    body: statement.blob(7)
                )
                rows.append(StoredInboxEntry(id: statement.int64(0), entry: entry, attempts: Int(statement.int64(8))))
            }
            return rows
        }
    }

    /// The rows the scheduler routes: no headers decoded (SQLite extracts the recorded calendar from the JSON) and
    /// no body read.
    public func pendingRoutes(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry] {
        let after = cursor.position(of: "")
        return try await run { database in
            let statement = try database.prepare(
                """
                SELECT id, provider, channel_id, kind, received_at_ms, json_extract(headers, '$."calgate.calendar_key"')
                FROM inbox WHERE processed_at_ms IS NULL AND id > ? ORDER BY id LIMIT ?
                """)
            statement.bind(1, after)
            statement.bind(2, Int64(max(0, limit)))
            var rows: [StoredInboxEntry] = []
            rows.reserveCapacity(max(0, min(limit, 4_096)))
            while try statement.step() {
                let entry = InboxEntry(
                    provider: Provider(rawValue: statement.string(1) ?? "") ?? .google,
                    channelID: statement.string(2) ?? "",
                    kind: statement.string(3) ?? "",
                    receivedAt: Date(timeIntervalSince1970: Double(statement.int64(4)) / 1000),
                    headers: statement.isNull(5) ? [:] : [InboxEntry.calendarKeyHeader: statement.string(5) ?? ""]
                )
                rows.append(StoredInboxEntry(id: statement.int64(0), entry: entry, attempts: 0))
            }
            return rows
        }
    }

    /// Marks entries processed, in one statement (the ids travel as one JSON array) inside the next group commit:
    /// no commit of its own, so acknowledgements never wait behind one; it returns once that commit is durable.
    public func markProcessed(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        let now = Self.milliseconds(Date())
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            condition.lock()
            guard !queue.closing else {
                condition.unlock()
                continuation.resume(throwing: closedError())
                return
            }
            queue.marks.append(PendingMark(ids: ids, at: now) { continuation.resume(with: $0) })
            condition.signal()
            condition.unlock()
        }
    }

    /// Which of `ids` are still unprocessed, in the order given (one statement).
    public func unprocessed(_ ids: [Int64]) async throws -> [Int64] {
        guard !ids.isEmpty else { return [] }
        let list = Self.jsonArray(ids)
        let open = try await run { database in
            let statement = try database.prepare("SELECT id FROM inbox WHERE id IN (SELECT value FROM json_each(?)) AND processed_at_ms IS NULL")
            statement.bind(1, list)
            var open: Set<Int64> = []
            while try statement.step() { open.insert(statement.int64(0)) }
            return open
        }
        return ids.filter { open.contains($0) }
    }

    /// `[1,2,3]`: row ids as one bound value for `json_each`.
    static func jsonArray(_ ids: [Int64]) -> String {
        var text = "["
        text.reserveCapacity(ids.count * 8 + 2)
        for (index, id) in ids.enumerated() {
            if index > 0 { text += "," }
            text += String(id)
        }
        return text + "]"
    }

    /// Count and age of unprocessed entries.
    public func backlog() async throws -> InboxBacklog {
        try await run { database in
            let statement = try database.prepare("SELECT COUNT(*), MIN(received_at_ms) FROM inbox WHERE processed_at_ms IS NULL")
            guard try statement.step() else { return InboxBacklog(count: 0, oldestReceivedAt: nil) }
            let count = Int(statement.int64(0))
            let oldest = statement.isNull(1) ? nil : Date(timeIntervalSince1970: Double(statement.int64(1)) / 1000)
            try statement.run()
            return InboxBacklog(count: count, oldestReceivedAt: oldest)
        }
    }

    // MARK: GatewayStore

    /// Schema version in the file.
    public func schemaVersion() async throws -> Int {
        try await run { try SQLiteMigrations.userVersion($0) }
    }

    /// Writes a heartbeat row in a real transaction; throws when the database cannot take a write.
    public func checkWritable() async throws {
        let now = Self.milliseconds(Date())
        try await run { database in
            try database.transaction {
                try database.run(
                    """
                    INSERT INTO gateway_meta (key, value, updated_at_ms) VALUES ('health_probe', ?, ?)
                    ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms
                    """, String(now), now)
            }
        }
    }

    /// Bumped after each committed write to `push_subscriptions` (any provider, or the Google and Graph views).
    public var webhookCredentialsVersion: UInt64 { credentialsVersion.load(ordering: .acquiring) }

    /// Records that push subscription rows changed (call after the write committed).
    func credentialsChanged() {
        credentialsVersion.add(1, ordering: .releasing)
    }

    /// Claims in memory: one process owns an SQLite database.
    public var workLeases: any WorkLeasing { leases }

    /// Never called: no other process appends to this database.
    public func onRemoteInboxAppend(_ wake: @escaping @Sendable () -> Void) {}

    /// Commits queued appends, then closes; later calls throw.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            if queue.finished {
                condition.unlock()
                continuation.resume()
                return
            }
            queue.closing = true
            closeWaiters.append(continuation)
            condition.signal()
            condition.unlock()
            checkpointWake.lock()
            checkpointerStopping = true
            checkpointWake.signal()
            checkpointWake.unlock()
        }
    }

    // MARK: Encoding

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
