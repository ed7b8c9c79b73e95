import Foundation
import GatewayCore
import Logging
import PostgresNIO
import Synchronization

/// Tuning for `PostgresStore`.
public struct PostgresStoreConfiguration: Sendable {
    /// Most pooled connections (the LISTEN connection is extra).
    public var maximumConnections: Int = 10
    /// Most inbox rows committed in one group-commit transaction.
    public var maximumBatchRows: Int = 512
    /// This instance's name: the owner of its work leases, the payload of its notifications, the work log's `owner`.
    public var instanceID: String = PostgresStoreConfiguration.defaultInstanceID
    /// Creates defaults.
    public init() {}

    /// `<hostname>-<pid>`.
    static var defaultInstanceID: String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }
}

/// Counters that show group commit at work.
public struct PostgresStoreStatistics: Sendable, Hashable {
    /// Transactions that committed inbox appends.
    public var commits: Int
    /// Inbox rows appended (duplicates excluded).
    public var appendedRows: Int
}

/// The PostgreSQL implementation of the gateway's store port, for several calgate instances sharing one database.
///
/// Work runs on a postgres-nio connection pool. Inbox appends queue up and one committer task writes them in batches,
/// one transaction each (group commit), under an advisory lock that keeps inbox ids in commit order across instances.
/// A dedicated connection LISTENs for other instances' inbox appends and credential writes; work leases are rows.
public final class PostgresStore: GatewayStore, Sendable {
    struct PendingAppend: Sendable {
        let entries: [InboxEntry]
        /// Each entry's `headers` column (JSON text), encoded by the appending thread.
        let encodedHeaders: [String]
        let completion: @Sendable (Result<[InboxAppendResult], any Error>) -> Void
    }

    struct AppendQueue {
        var pending: [PendingAppend] = []
        var closing = false
    }

    let client: PostgresClient
    let logger: Logger
    let configuration: PostgresStoreConfiguration
    let url: PostgresURL
    private let runTask: Task<Void, Never>
    let appendQueue = Mutex(AppendQueue())
    /// Wakes the committer; buffers one signal, which is all it needs (it drains the whole queue per wake-up).
    let committerWake: AsyncStream<Void>.Continuation
    private let committerSignals: AsyncStream<Void>
    private let committerTask = Mutex<Task<Void, Never>?>(nil)
    let credentialsVersion = Atomic<UInt64>(0)
    let stats = Mutex(PostgresStoreStatistics(commits: 0, appendedRows: 0))
    let remoteInboxHandler = Mutex<(@Sendable () -> Void)?>(nil)
    private let listener: PostgresListener
    /// Counts work-log inserts so old rows are pruned now and then rather than on every release.
    let workLogInserts = Atomic<Int>(0)
    /// The partitions this instance owns (all until the partition keeper's first heartbeat).
    let partitionOwnership = PartitionOwnership(all: true)

    /// This instance's name (lease owner, notification payload).
    public var instanceID: String { configuration.instanceID }
    /// This store's name as the appender of its inbox rows: the instance and a random suffix, so two stores can never
    /// share one even when misconfigured with the same instance name (see `InboxCursor`).
    let appender: String

    /// Group-commit counters.
    public var statistics: PostgresStoreStatistics { stats.withLock { $0 } }

    private init(
        client: PostgresClient, runTask: Task<Void, Never>, listener: PostgresListener, url: PostgresURL,
        configuration: PostgresStoreConfiguration, logger: Logger
    ) {
        self.client = client
        self.runTask = runTask
        self.listener = listener
        self.url = url
        self.configuration = configuration
        self.logger = logger
        self.appender = configuration.instanceID + "/" + String(UInt32.random(in: .min ... .max), radix: 16)
        (committerSignals, committerWake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Parses the URL, connects, runs migrations (serialized across instances with `pg_advisory_xact_lock`) and
    /// starts LISTEN. Throws `PostgresStoreError` for a bad URL, an unreachable server (within about 10 s), a failed
    /// migration or a database migrated by a newer calgate.
    public static func open(url text: String, configuration: PostgresStoreConfiguration = .init(), logger: Logger) async throws -> PostgresStore {
        let url = try PostgresURL(parsing: text)
        let listenerConfiguration = try connectionConfiguration(url, instanceID: configuration.instanceID)
        // Connect the LISTEN connection first: it proves the server is reachable within a bounded time (the pool
        // would retry forever) and gives a clear error when it is not.
        let first = try await PostgresListener.connect(listenerConfiguration, url: url, logger: logger)

        var clientConfiguration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: try clientTLS(url)
        )
        clientConfiguration.options.maximumConnections = max(1, configuration.maximumConnections)
        clientConfiguration.options.connectTimeout = .seconds(5)
        clientConfiguration.options.additionalStartupParameters = [("application_name", "calgate \(configuration.instanceID)")]
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        let runTask = Task { await client.run() }

        let listener = PostgresListener(configuration: listenerConfiguration, url: url, instanceID: configuration.instanceID, logger: logger)
        let store = PostgresStore(client: client, runTask: runTask, listener: listener, url: url, configuration: configuration, logger: logger)
        do {
            try await withTimeout(seconds: 120, "migrating \(url.endpoint)/\(url.database)") {
                try await PostgresMigrations.migrate(client, logger: logger)
            }
            try await listener.start(first: first) { [weak store] event in store?.listenerEvent(event) }
        } catch {
            try? await first.close()
            await listener.stop()
            runTask.cancel()
            await runTask.value
            throw PostgresStoreError.wrap(error, "opening \(url.endpoint)/\(url.database)", code: .connect)
        }
        let signals = store.committerSignals
        store.committerTask.withLock { $0 = Task { [store] in await store.runCommitter(signals) } }
        logger.info("postgres store open", metadata: ["endpoint": "\(url.endpoint)", "database": "\(url.database)", "instance": "\(configuration.instanceID)"])
        return store
    }

    static func connectionConfiguration(_ url: PostgresURL, instanceID: String) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch url.sslMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        } catch {
            throw PostgresStoreError(.connect, "cannot set up TLS for \(url.endpoint): \(error)")
        }
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: tls
        )
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("application_name", "calgate-listen \(instanceID)")]
        return configuration
    }

    static func clientTLS(_ url: PostgresURL) throws -> PostgresClient.Configuration.TLS {
        switch url.sslMode {
        case .disable: return .disable
        case .prefer: return .prefer(.makeClientConfiguration())
        case .require: return .require(.makeClientConfiguration())
        }
    }

    // MARK: Running statements

    private func checkOpen() throws {
        if appendQueue.withLock({ $0.closing }) { throw closedError() }
    }

    func closedError() -> PostgresStoreError {
        PostgresStoreError(.closed, "the store is closed (the gateway is shutting down)")
    }

    /// Runs `body` on a pooled connection; failures become `PostgresStoreError`s that say what was being done.
    @discardableResult
    func read<T: Sendable>(_ what: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try checkOpen()
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch {
            throw Self.failure(error, what)
        }
    }

    /// Runs `body` in one transaction on a pooled connection (COMMIT on return, ROLLBACK on a throw).
    @discardableResult
    func transaction<T: Sendable>(_ what: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try checkOpen()
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch {
            throw Self.failure(error, what)
        }
    }

    static func failure(_ error: any Error, _ what: String) -> any Error {
        if let transaction = error as? PostgresTransactionError, let inner = transaction.closureError as? PostgresStoreError {
            return inner
        }
        let decoding =
            error is PostgresDecodingError
            || ((error as? PostgresTransactionError)?.closureError is PostgresDecodingError)
        return PostgresStoreError.wrap(error, what, code: decoding ? .decoding : .query)
    }

    // MARK: GatewayStore

    /// The highest applied migration.
    public func schemaVersion() async throws -> Int {
        try await read("reading schema_migrations") { connection in
            try await PostgresMigrations.currentVersion(connection, logger: logger)
        }
    }

    /// Writes a heartbeat row in a transaction; throws when the database cannot take a write.
    public func checkWritable() async throws {
        let now = Date()
        try await transaction("writing the health probe to gateway_meta") { connection in
            try await connection.query(
                """
                INSERT INTO gateway_meta (key, value, updated_at) VALUES ('health_probe', \(instanceID), \(now))
                ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """, logger: logger)
        }
    }

    /// Bumped after each committed write to `push_subscriptions`, here or (by NOTIFY) on another instance, and after
    /// the LISTEN connection reconnects (notifications may have been missed).
    public var webhookCredentialsVersion: UInt64 { credentialsVersion.load(ordering: .acquiring) }

    func credentialsChanged() {
        credentialsVersion.add(1, ordering: .releasing)
    }

    /// Shared leases: rows in `work_leases`.
    public var workLeases: any WorkLeasing { PostgresWorkLeases(store: self) }

    /// Sets the handler called when inbox rows were committed by any instance (this one included).
    public func onRemoteInboxAppend(_ wake: @escaping @Sendable () -> Void) {
        remoteInboxHandler.withLock { $0 = wake }
    }

    func listenerEvent(_ event: PostgresListener.Event) {
        switch event {
        case .inbox(let payload):
            // Any instance's appends, this one's included: its own scheduler learns of them the same way. Only
            // batches touching this instance's partitions wake it (it reads no other rows).
            guard Self.inboxNotification(payload, concerns: partitionOwnership.snapshot.owned) else { return }
            remoteInboxHandler.withLock { $0 }?()
        case .credentials:
            credentialsChanged()
        case .reconnected:
            credentialsChanged()
            remoteInboxHandler.withLock { $0 }?()
        }
    }

    /// Commits queued appends, then stops the listener and the pool; later calls throw.
    public func close() async {
        appendQueue.withLock { $0.closing = true }
        committerWake.finish()
        if let committer = committerTask.withLock({ $0 }) { await committer.value }
        await listener.stop()
        runTask.cancel()
        await runTask.value
    }

    // MARK: Values

    /// An instant at millisecond precision, as SQLiteStore keeps them (so both stores return the same dates, and a
    /// microsecond lost to floating point in postgres-nio's encoding does not show).
    static func ms(_ date: Date) -> Date { Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000) }
    static func ms(_ date: Date?) -> Date? { date.map { ms($0) } }

    static func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }
}

/// Runs `body`, failing with a `PostgresStoreError` naming `what` when it takes longer than `seconds`.
func withTimeout<T: Sendable>(seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw PostgresStoreError(.connect, "\(what): no answer within \(Int(seconds)) s")
        }
        return value
    }
}
