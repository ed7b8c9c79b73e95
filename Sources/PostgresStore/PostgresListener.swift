import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The LISTEN side of a `PostgresStore`: one dedicated connection (not pooled: a pooled connection is handed to
/// other work, and a LISTEN lives as long as its session) that listens on `calgate_inbox` and `calgate_credentials`.
///
/// When the connection drops it reconnects with backoff; notifications sent meanwhile are lost, so after a reconnect
/// it reports `.reconnected` and the store behaves as if both channels had fired.
final class PostgresListener: Sendable {
    /// What the listener saw.
    enum Event: Sendable {
        /// Inbox rows were appended by the instance named in the payload.
        case inbox(sender: String)
        /// A Google channel or Graph subscription row changed.
        case credentials
        /// The connection came back after a drop; notifications may have been missed.
        case reconnected
    }

    static let inboxChannel = "calgate_inbox"
    static let credentialsChannel = "calgate_credentials"
    /// How long a fresh connection's LISTENs may take before it is given up and replaced.
    static let listenTimeout: Duration = .seconds(4)

    private struct State {
        var task: Task<Void, Never>?
        var connection: PostgresConnection?
        var stopping = false
    }

    private let configuration: PostgresConnection.Configuration
    private let url: PostgresURL
    private let instanceID: String
    private let logger: Logger
    private let state = Mutex(State())
    private static let nextConnectionID = Atomic<Int>(1)

    init(configuration: PostgresConnection.Configuration, url: PostgresURL, instanceID: String, logger: Logger) {
        self.configuration = configuration
        self.url = url
        self.instanceID = instanceID
        self.logger = logger
    }

    /// Connects one connection within a bounded time; the error names host:port and the reason (never the password).
    static func connect(_ configuration: PostgresConnection.Configuration, url: PostgresURL, logger: Logger) async throws -> PostgresConnection {
        let id = nextConnectionID.add(1, ordering: .relaxed).newValue
        do {
            return try await withTimeout(seconds: 8, "connecting to \(url.endpoint)") {
                try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
            }
        } catch let error as PostgresStoreError {
            throw PostgresStoreError(.connect, "cannot connect to \(url.endpoint) (database \(url.database), user \(url.user)): \(error.message)")
        } catch {
            throw PostgresStoreError(
                .connect, "cannot connect to \(url.endpoint) (database \(url.database), user \(url.user)): \(PostgresStoreError.reason(error))"
            )
        }
    }

    /// Starts listening on `first` and returns once both channels are listened to; then keeps listening (and
    /// reconnecting) in the background until `stop`.
    func start(first: PostgresConnection, events: @escaping @Sendable (Event) -> Void) async throws {
        let (readySignals, ready) = AsyncStream<Void>.makeStream()
        let task = Task { [self] in
            await self.run(first: first, events: events, ready: ready)
        }
        state.withLock { $0.task = task }
        // Both channels must be listened to before the store is handed out, or an early NOTIFY would be lost.
        let listening = try await withTimeout(seconds: 20, "starting LISTEN on \(url.endpoint)") {
            for await _ in readySignals { return true }
            return false
        }
        guard listening else { throw PostgresStoreError(.connect, "LISTEN on \(url.endpoint) failed") }
    }

    /// Closes the connection and ends the background task.
    func stop() async {
        let (task, connection) = state.withLock { state -> (Task<Void, Never>?, PostgresConnection?) in
            state.stopping = true
            return (state.task, state.connection)
        }
        task?.cancel()
        try? await connection?.close()
        await task?.value
    }

    private func run(first: PostgresConnection, events: @escaping @Sendable (Event) -> Void, ready: AsyncStream<Void>.Continuation) async {
        var connection: PostgresConnection? = first
        var failures = 0
        var listenedBefore = false
        while !Task.isCancelled {
            if connection == nil {
                do {
                    connection = try await Self.connect(configuration, url: url, logger: logger)
                    failures = 0
                } catch {
                    if Task.isCancelled { break }
                    failures += 1
                    let delay = min(5.0, 0.1 * pow(2.0, Double(min(failures, 6))))
                    logger.warning("postgres LISTEN connection lost; retrying", metadata: ["error": "\(error)", "retry_in_s": "\(delay)"])
                    try? await Task.sleep(for: .seconds(delay))
                    continue
                }
            }
            guard let current = connection else { continue }
            let stopping = state.withLock { state in
                if !state.stopping { state.connection = current }
                return state.stopping
            }
            if stopping {
                try? await current.close()
                break
            }
            // The first time both LISTENs take effect `start` returns; any later time is a reconnect.
            let wasListening = listenedBefore
            let listened = await listen(on: current, events: events) {
                if wasListening {
                    events(.reconnected)
                } else {
                    ready.yield()
                }
            }
            if listened { listenedBefore = true }
            state.withLock { $0.connection = nil }
            try? await current.close()
            connection = nil
            if !Task.isCancelled { logger.warning("postgres LISTEN connection closed; reconnecting", metadata: ["endpoint": "\(url.endpoint)"]) }
        }
        ready.finish()
    }

    /// Listens on both channels until the connection closes or the task is cancelled. `listening` runs once, when
    /// both LISTENs took effect. The two LISTENs are issued one after the other, and a connection whose LISTENs do
    /// not take effect within `listenTimeout` is given up (and the loop in `run` reconnects) rather than left
    /// silently deaf: a backend terminated while its LISTEN was starting was seen to leave postgres-nio's `listen`
    /// waiting without an error.
    private func listen(on connection: PostgresConnection, events: @escaping @Sendable (Event) -> Void, listening: @escaping @Sendable () -> Void) async -> Bool {
        let started = ListenFlag()
        let logger = logger
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await connection.listen(on: Self.inboxChannel) { inbox in
                        try await connection.listen(on: Self.credentialsChannel) { credentials in
                            started.set()
                            listening()
                            try await withThrowingTaskGroup(of: Void.self) { streams in
                                streams.addTask {
                                    for try await notification in inbox { events(.inbox(sender: notification.payload)) }
                                }
                                streams.addTask {
                                    for try await _ in credentials { events(.credentials) }
                                }
                                try await streams.next()
                                streams.cancelAll()
                            }
                        }
                    }
                } catch {
                    // The connection failed or closed; the loop in `run` reconnects.
                    logger.debug("postgres LISTEN ended", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
            group.addTask {
                // A dropped socket fails the notification streams too; this catches a close they would not see.
                try? await connection.closeFuture.get()
            }
            group.addTask {
                try? await Task.sleep(for: Self.listenTimeout)
                guard !started.isSet else {
                    // Listening: wait for the end (cancellation) without ending the group.
                    while !Task.isCancelled { try? await Task.sleep(for: .seconds(3_600)) }
                    return
                }
                logger.warning("postgres LISTEN did not take effect in time; reconnecting", metadata: ["connection": "\(connection.id)"])
            }
            await group.next()
            group.cancelAll()
            try? await connection.close()
        }
        return started.isSet
    }
}

/// Whether a connection's LISTENs took effect (a class: an `Atomic` cannot be captured by the group's tasks).
private final class ListenFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
