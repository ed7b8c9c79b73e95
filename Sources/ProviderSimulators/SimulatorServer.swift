import Hummingbird
import Logging
import ServiceLifecycle

/// Runs a simulator's router on loopback in the background (tests, `calgate demo`).
public final class SimulatorServer: Sendable {
    /// The bound port.
    public let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Serves `router` on `host:port` (port 0 picks a free one) and returns once it listens.
    public init(router: Router<BasicRequestContext>, host: String = "127.0.0.1", port: Int = 0, logger: Logger? = nil) async throws {
        var log = logger ?? Logger(label: "calgate.simulator")
        if logger == nil { log.logLevel = .warning }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: log
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: log))
        self.group = group
        task = Task { try await group.run() }
        var bound = 0
        for await p in ports { bound = p }
        self.port = bound
    }

    /// Base URL, `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Stops serving.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
