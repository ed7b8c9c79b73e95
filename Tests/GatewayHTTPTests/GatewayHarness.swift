import Foundation
import GatewayAssembly
import GatewayCore
import GatewayHTTP
import Hummingbird
import Logging
import NIOCore
import OpenSSLTLS
import SecretSealing
import GoogleCalendar
import MicrosoftGraph
import Redtail
import SQLiteStore
import ServiceLifecycle
import SyncEngine
import TestSupport

/// A whole gateway in-process on 127.0.0.1 with a free port, real TLS (dev CA), a real SQLite file and the
/// repository's route table (or another one).
final class GatewayHarness: Sendable {
    let directory: String
    let certificates: DevCertificatePaths
    let tlsContext: TLSServerContext
    let store: SQLiteStore
    let metrics: GatewayMetrics
    let adminToken = "test-admin-token-0123456789abcdef"
    let apiToken = "test-api-token-0123456789abcdef0123"
    let google: GoogleConnectionSyncer?
    let microsoft: GraphConnectionSyncer?
    let scheduler: SyncScheduler?
    let health: StoreConnectionHealthRecorder
    let sealer = try! AESGCMSecretSealer(key: Array(repeating: 7, count: 32))
    let port: Int
    /// The SQLite file the gateway writes.
    let databasePath: String
    private let group: ServiceGroup
    private let runTask: Task<Void, any Error>

    /// The built-in providers' plugins, each with its connector when the test made one.
    static func plugins(
        google: GoogleConnectionSyncer? = nil, microsoft: GraphConnectionSyncer? = nil, redtail: RedtailConnector? = nil,
        configuration: GatewayConfiguration = GatewayConfiguration()
    ) -> [ProviderPlugin] {
        // Sign-in is on where the test configured a provider's client (as `BuiltInProviders` does it).
        [.google(google, signIn: .google(configuration)), .microsoft(microsoft, signIn: .microsoft(configuration)), .redtail(redtail)]
    }

    static var repositoryRoutes: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes").standardized.path
    }

    static func makeTemporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-test-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    init(
        configure: (inout GatewayConfiguration) -> Void = { _ in },
        syncWindow: TimeInterval = 0.05,
        console: (any ConsoleOperations)? = nil,
        clock: any GatewayClock = SystemGatewayClock(),
        google makeGoogle: ((any GatewayStore, any SecretSealer, GatewayConfiguration) throws -> GoogleConnectionSyncer)? = nil,
        microsoft makeMicrosoft: ((any GatewayStore, any SecretSealer, GatewayConfiguration) throws -> GraphConnectionSyncer)? = nil,
        redtail makeRedtail: ((any GatewayStore, any SecretSealer, GatewayConfiguration) throws -> RedtailConnector)? = nil
    ) async throws {
        directory = Self.makeTemporaryDirectory()
        certificates = try DevCertificateAuthority.generate(directory: directory + "/certs")
        tlsContext = try TLSServerContext(
            configuration: TLSServerConfiguration(
                certificateChainPath: certificates.serverCertificate, privateKeyPath: certificates.serverKey,
                handshakeTimeout: .seconds(3)
            ))
        var config = GatewayConfiguration()
        config.listen = ListenAddress(host: "127.0.0.1", port: 0)
        config.dataDirectory = directory
        config.routesDirectory = Self.repositoryRoutes
        configure(&config)
        databasePath = config.effectiveDatabasePath
        store = try SQLiteStore(path: databasePath)
        metrics = GatewayMetrics()
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let store = self.store
        let madeGoogle = try makeGoogle?(store, sealer, config)
        google = madeGoogle
        let madeMicrosoft = try makeMicrosoft?(store, sealer, config)
        microsoft = madeMicrosoft
        var schedule = SyncScheduler.Configuration()
        schedule.window = syncWindow
        let madeRedtail = try makeRedtail?(store, sealer, config)
        let plugins = Self.plugins(google: madeGoogle, microsoft: madeMicrosoft, redtail: madeRedtail, configuration: config)
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        // Built like `serve`; the tests drive renewal and sweeps themselves, so only the store, the scheduler (when a
        // provider is configured) and the listener run.
        let gateway = try GatewayAssembly(
            GatewayAssembly.Parts(
                configuration: config, store: store, sealer: sealer, tlsContext: tlsContext, adminToken: adminToken, apiToken: apiToken,
                metrics: metrics, clock: clock, version: "test", logger: logger
            ),
            plugins: plugins, progress: madeGoogle?.progress ?? madeMicrosoft?.progress, schedulerConfiguration: schedule,
            console: .custom(console)
        ) { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        }
        health = gateway.health
        scheduler = plugins.contains { $0.syncer != nil } ? gateway.scheduler : nil
        let application = gateway.application
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: StoreLifecycleService(store: store, logger: logger))]
        if let scheduler { services.append(.init(service: scheduler)) }
        services.append(.init(service: application))
        group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                logger: logger
            ))
        let group = self.group
        runTask = Task { try await group.run() }
        var bound = 0
        for await p in portStream { bound = p }
        port = bound
    }

    /// Graceful shutdown, as SIGTERM would do it; waits until every service has stopped.
    func shutdown() async {
        await shutdownKeepingFiles()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Graceful shutdown that leaves the directory (and the database file) for the test to read.
    func shutdownKeepingFiles() async {
        await group.triggerGracefulShutdown()
        _ = try? await runTask.value
    }
}
