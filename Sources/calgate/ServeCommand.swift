import ArgumentParser
import Foundation
import GatewayCore
import GatewayHTTP
import Hummingbird
import Logging
import Metrics
import OpenSSLTLS
import SecretSealing
import CurlHTTP
import GatewayAssembly
import GoogleCalendar
import MicrosoftGraph
import Redtail
import PostgresStore
import SQLiteStore
import ServiceLifecycle
import Synchronization
import SyncEngine

/// `calgate serve`: the gateway.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway: TLS listener, route table, durable inbox, sync, admin endpoints."
    )

    @OptionGroup var options: ServeOptions

    func run() async throws {
        let configuration = try options.loadConfiguration()
        let logger = LoggingSetup.bootstrap(level: configuration.logLevel, format: configuration.logFormat)
        do {
            try await GatewayRunner(logger: logger).serve(configuration)
        } catch let error as CLIError {
            logger.critical("calgate cannot start", metadata: ["error": "\(error.description)"])
            throw error
        }
    }
}

/// The flags `serve` and `demo` share.
struct ServeOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "JSON configuration file (unknown keys are rejected).")
    var configFile: String?

    @Option(name: .customLong("listen"), help: "HOST:PORT to listen on (IPv6 as [::1]:8443). Default 127.0.0.1:8443.")
    var listen: String?

    @Option(name: .customLong("data-dir"), help: "Data directory (database, generated admin token). Default ./data.")
    var dataDirectory: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "text or json.")
    var logFormat: String?

    @Option(name: .customLong("routes"), help: "Routes directory. Default ./routes.")
    var routesDirectory: String?

    /// Defaults, then the file, then `CALGATE_*`, then flags.
    func loadConfiguration() throws -> GatewayConfiguration {
        var config = GatewayConfiguration()
        if let configFile {
            guard let data = FileManager.default.contents(atPath: configFile) else {
                throw CLIError("\(configFile): configuration file does not exist or cannot be read")
            }
            do { config = try GatewayConfiguration.parse(data, file: configFile) } catch { throw CLIError(error.description) }
        }
        do { config = try config.applying(environment: ProcessInfo.processInfo.environment) } catch { throw CLIError(error.description) }
        if let listen {
            do { config.listen = try ListenAddress(parsing: listen) } catch { throw CLIError("--listen: \(error.message)") }
        }
        if let dataDirectory {
            guard !dataDirectory.isEmpty else { throw CLIError("--data-dir must not be empty") }
            config.dataDirectory = dataDirectory
        }
        if let routesDirectory { config.routesDirectory = routesDirectory }
        if let logLevel {
            do { config.logLevel = try GatewayConfiguration.validLevel(logLevel, path: "--log-level") } catch { throw CLIError(error.description) }
        }
        if let logFormat {
            guard let format = GatewayConfiguration.LogFormat(rawValue: logFormat.lowercased()) else {
                throw CLIError("--log-format \"\(logFormat)\" is not a log format (text, json)")
            }
            config.logFormat = format
        }
        return config
    }

}

/// What a running gateway is made of, for add-ons such as the demo driver.
struct GatewayRuntime: Sendable {
    let configuration: GatewayConfiguration
    let apiToken, adminToken: String
    let google: GoogleConnectionSyncer
    let microsoft: GraphConnectionSyncer
    let redtail: RedtailConnector
    let scheduler: SyncScheduler
    let ready: ReadySignal
}

/// Fires once the listener is bound.
final class ReadySignal: Sendable {
    private let fired = Mutex(false)

    func fire() { fired.withLock { $0 = true } }

    /// Waits until fired; returns false when the task is cancelled or the service group shuts down first
    /// (a listener that never came up must not hold shutdown hostage).
    func wait() async -> Bool {
        while !fired.withLock({ $0 }) {
            if Task.isCancelled || Task.isShuttingDownGracefully { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}

/// Builds and runs the gateway from a configuration (shared by `serve` and `demo`).
struct GatewayRunner {
    let logger: Logger

    func serve(_ config: GatewayConfiguration, extraServices: (GatewayRuntime) -> [any Service] = { _ in [] }) async throws {
        let logger = self.logger
        try prepareDataDirectory(config.dataDirectory)
        let tlsContext = try makeTLSContext(config, logger: logger)
        let adminToken = try resolveToken(config.adminToken, file: "admin-token", what: "admin", config, logger: logger)
        let apiToken = try resolveToken(config.apiToken, file: "api-token", what: "API", config, logger: logger)
        let sealer = try loadSealer(config, logger: logger)

        let store = try await openStore(config, logger: logger)
        do { try await checkSealerOpensStoredSecrets(store, sealer: sealer, config) } catch {
            await store.close()
            throw error
        }
        let metrics = GatewayMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        // One board for every provider's full-sync progress (console and connection API).
        let progress = SyncProgressBoard()
        let http: CurlHTTPClient
        do { http = try CurlHTTPClient() } catch { throw CLIError("outbound HTTP: \(error)") }
        let providers = BuiltInProviders(configuration: config, http: http, store: store, sealer: sealer, progress: progress)
        let parts = GatewayAssembly.Parts(
            configuration: config, store: store, sealer: sealer, tlsContext: tlsContext, adminToken: adminToken, apiToken: apiToken, metrics: metrics,
            version: Calgate.version, logger: logger
        )
        let ready = ReadySignal()
        let gateway: GatewayAssembly
        do {
            gateway = try GatewayAssembly(parts, plugins: providers.plugins, progress: progress) { channel in
                ready.fire()
                let bound = channel.localAddress.map { "\($0.ipAddress ?? config.listen.host):\($0.port ?? config.listen.port)" }
                logger.notice(
                    "calgate ready",
                    metadata: [
                        "listen.address": "\(bound ?? config.listen.description)",
                        "database": "\(config.databaseDescription)",
                    ])
            }
        } catch {
            await store.close()
            throw CLIError("\(error)")
        }
        let runtime = GatewayRuntime(
            configuration: config, apiToken: apiToken, adminToken: adminToken, google: providers.google, microsoft: providers.microsoft,
            redtail: providers.redtail, scheduler: gateway.scheduler, ready: ready
        )
        var groupConfiguration = ServiceGroupConfiguration(
            services: (gateway.services + extraServices(runtime)).map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(config.shutdownGraceSeconds)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: groupConfiguration).run()
        await http.shutdown()
        logger.notice("calgate stopped")
    }

    /// The SQLite store (the default), or the PostgreSQL store when `database` is a `postgres://` URL.
    func openStore(_ config: GatewayConfiguration, logger: Logger) async throws -> any GatewayStore {
        guard let url = config.postgresURL else {
            do { return try SQLiteStore(path: config.effectiveDatabasePath) } catch { throw CLIError("\(error)") }
        }
        do {
            return try await PostgresStore.open(url: url, logger: logger)
        } catch {
            throw CLIError("database: \(error)")
        }
    }

    /// Refuses to start with a key that cannot open the secrets already stored: instances sharing one PostgreSQL
    /// must share one key (`secret_key_file` or `CALGATE_SECRET_KEY`), and a key file generated anew by a second
    /// instance would otherwise seal new secrets the others cannot read and fail every sync of the old ones.
    func checkSealerOpensStoredSecrets(_ store: any GatewayStore, sealer: any SecretSealer, _ config: GatewayConfiguration) async throws {
        let connections: [Connection]
        do { connections = try await store.connections(userID: nil) } catch { throw CLIError("database: \(error)") }
        for connection in connections.prefix(3) {
            guard let credentials = try? await store.credentials(connectionID: connection.id) else { continue }
            guard credentials.opens(with: sealer, connectionID: connection.id) else {
                throw CLIError(
                    "the secret key (\(config.effectiveSecretKeyFile) or CALGATE_SECRET_KEY) does not open the secrets stored in \(config.databaseDescription); "
                        + "instances sharing a database must use the same key"
                )
            }
        }
    }

    func prepareDataDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CLIError("\(path): data directory path exists but is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CLIError("\(path): cannot create the data directory (\(error.localizedDescription))")
        }
    }

    /// The configured certificate, or the dev certificate (generated when missing or about to expire).
    func makeTLSContext(_ config: GatewayConfiguration, logger: Logger) throws -> TLSServerContext {
        func load(_ cert: String, _ key: String) throws -> TLSServerContext {
            try TLSServerContext(
                configuration: TLSServerConfiguration(
                    certificateChainPath: cert, privateKeyPath: key,
                    sessionResumption: config.tls.sessionResumption,
                    handshakeTimeout: .seconds(Int64(config.tls.handshakeTimeoutSeconds))
                ))
        }
        do {
            if let cert = config.tls.certificatePath, let key = config.tls.privateKeyPath {
                return try load(cert, key)
            }
            let dir = config.tls.devCertificateDirectory
            let cert = (dir as NSString).appendingPathComponent("server.pem")
            let key = (dir as NSString).appendingPathComponent("server.key")
            if FileManager.default.fileExists(atPath: cert), FileManager.default.fileExists(atPath: key) {
                let context = try load(cert, key)
                if context.certificateInfo.notAfter.timeIntervalSinceNow > 7 * 86_400 {
                    logger.info("using the dev certificate", metadata: ["tls.certificate": "\(cert)"])
                    return context
                }
                logger.notice("dev certificate expires within 7 days; generating a new one", metadata: ["tls.certificate": "\(cert)"])
            }
            let paths = try DevCertificateAuthority.generate(directory: dir)
            logger.notice(
                "no certificate configured: generated a dev certificate for localhost, 127.0.0.1 and ::1",
                metadata: [
                    "tls.certificate": "\(paths.serverCertificate)", "tls.ca": "\(paths.caCertificate)",
                ])
            return try load(paths.serverCertificate, paths.serverKey)
        } catch let error as TLSConfigurationError {
            throw CLIError("TLS: \(error)")
        } catch {
            throw CLIError("TLS: \(error)")
        }
    }

    /// The key ring sealing stored secrets: `CALGATE_SECRET_KEY`, or the key file (generated on first start when it
    /// is the default `<data_dir>/secret.key`).
    func loadSealer(_ config: GatewayConfiguration, logger: Logger) throws -> AESGCMSecretSealer {
        do {
            let key = try SecretKeyStore.load(
                keyFile: config.effectiveSecretKeyFile, createIfMissing: config.secretKeyFile == nil,
                environment: ProcessInfo.processInfo.environment
            )
            if key.created {
                logger.notice("generated the secret key that seals stored credentials; back it up apart from the database", metadata: ["secret_key.file": "\(key.source)"])
            } else {
                logger.info("secret key loaded", metadata: ["secret_key.source": "\(key.source)", "secret_key.id": "\(key.sealer.keyID)"])
            }
            for warning in key.warnings {
                logger.warning("secret key needs attention", metadata: ["secret_key.warning": "\(warning)"])
            }
            return key.sealer
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// A configured token, or the one in `<data_dir>/<file>` (generated on first start).
    func resolveToken(_ configured: String?, file name: String, what: String, _ config: GatewayConfiguration, logger: Logger) throws -> String {
        if let configured { return configured }
        do {
            let (token, generated) = try AdminTokenFile.loadOrGenerate(dataDirectory: config.dataDirectory, name: name)
            let file = AdminTokenFile.path(dataDirectory: config.dataDirectory, name: name)
            if generated {
                logger.notice("generated the \(what) token (send it as Authorization: Bearer)", metadata: ["token.file": "\(file)"])
            } else {
                logger.info("\(what) token read from file", metadata: ["token.file": "\(file)"])
            }
            return token
        } catch {
            throw CLIError(error.description)
        }
    }
}
