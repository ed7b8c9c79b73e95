import Foundation
import GatewayCore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import OpenSSLTLS

/// Everything the HTTPS server needs, already loaded and validated.
public struct GatewayServerDependencies: Sendable {
    /// Settings in force.
    public var configuration: GatewayConfiguration
    /// The admin bearer token.
    public var adminToken: String
    /// The LeadCenter API bearer token.
    public var apiToken: String
    /// The providers this gateway knows (webhooks, account integrations), each with its connector when configured;
    /// connecting through one without a connector answers 503.
    public var plugins: [ProviderPlugin]
    /// The configured connectors of `plugins`.
    public var connectors: [any ConnectionManaging] { plugins.compactMap(\.connector) }
    /// The store every handler writes to.
    public var store: any GatewayStore
    /// Seals and opens secrets kept in the store.
    public var sealer: any SecretSealer
    /// The TLS context (reloadable).
    public var tlsContext: TLSServerContext
    /// Metrics served at `/admin/metrics`.
    public var metrics: GatewayMetrics
    /// Time source.
    public var clock: any GatewayClock
    /// Version string reported to the admin.
    public var version: String
    /// Logger for the server.
    public var logger: Logger
    /// Failed verifications per source address, shared by every path that verifies (router and webhook fast path).
    public var verificationFailures: VerificationFailureGate
    /// What the operator console's buttons and figures need from the sync and renewal services (nil: the console
    /// shows no running syncs or missed-by-push counts, and its actions answer 503).
    public var console: (any ConsoleOperations)?
    /// Full-sync progress, shown in the console and as `progress` in the connection API (nil: always empty).
    public var progress: SyncProgressBoard?
    /// Exchanges sign-in codes at the providers' token endpoints (nil: sign-in answers 503).
    public var codeExchanger: (any OAuthCodeExchanging)?

    /// Bundles the dependencies.
    public init(
        configuration: GatewayConfiguration, adminToken: String, apiToken: String, plugins: [ProviderPlugin],
        store: any GatewayStore, sealer: any SecretSealer,
        tlsContext: TLSServerContext,
        metrics: GatewayMetrics, clock: any GatewayClock = SystemGatewayClock(), version: String, logger: Logger,
        console: (any ConsoleOperations)? = nil, progress: SyncProgressBoard? = nil, codeExchanger: (any OAuthCodeExchanging)? = nil
    ) {
        self.codeExchanger = codeExchanger
        self.console = console
        self.progress = progress
        self.configuration = configuration
        self.adminToken = adminToken
        self.apiToken = apiToken
        self.plugins = plugins
        self.store = store
        self.sealer = sealer
        self.tlsContext = tlsContext
        self.metrics = metrics
        self.clock = clock
        self.version = version
        self.verificationFailures = VerificationFailureGate(
            configuration: .init(
                burst: configuration.limits.verificationFailureBurst,
                refillInterval: TimeInterval(configuration.limits.verificationFailureRefillSeconds)
            ))
        self.logger = logger
    }
}

/// Builds the HTTPS gateway: handler registry, route table, router, OpenSSL child channel and limits.
public enum GatewayServer {
    /// The handlers and verifiers this build has, wired to their dependencies.
    public static func makeRegistry(_ deps: GatewayServerDependencies) -> RouteRegistry {
        makeRegistry(deps, intake: makeIntake(deps))
    }

    /// The webhook verifier and inbox writer (with its secret cache) the router and `WebhookAckHandler` share.
    static func makeIntake(_ deps: GatewayServerDependencies) -> WebhookIntake {
        deps.metrics.attribute(deps.plugins.flatMap(\.webhooks))
        return WebhookIntake(
            store: deps.store, sealer: deps.sealer, metrics: deps.metrics, clock: deps.clock, logger: deps.logger,
            failures: deps.verificationFailures
        )
    }

    static func makeRegistry(_ deps: GatewayServerDependencies, intake: WebhookIntake) -> RouteRegistry {
        var registry = RouteRegistry()
        let admin = AdminController(
            adminToken: deps.adminToken, store: deps.store, tlsContext: deps.tlsContext, metrics: deps.metrics,
            thresholds: deps.configuration.health, clock: deps.clock, version: deps.version,
            adminTokenExpiresAt: deps.configuration.adminTokenExpiresAt
        )
        admin.register(into: &registry)
        ConsoleController(
            admin: admin, store: deps.store, connectors: deps.connectors, operations: deps.console, activity: deps.metrics.activity,
            progress: deps.progress, sessions: ConsoleSessions(clock: deps.clock),
            renewal: RenewalPolicy(minimumLead: TimeInterval(deps.configuration.maintenance.renewalMinimumLeadSeconds)),
            clock: deps.clock, version: deps.version, logger: deps.logger
        ).register(into: &registry)
        WebhookController(intake: intake, verifiers: deps.plugins.flatMap(\.webhooks)).register(into: &registry)
        ConnectionsController(
            apiToken: deps.apiToken, store: deps.store, plugins: deps.plugins,
            maxConnectionsPerUser: deps.configuration.maxConnectionsPerUser, clock: deps.clock, progress: deps.progress, logger: deps.logger,
            apiTokenExpiresAt: deps.configuration.apiTokenExpiresAt, sealer: deps.sealer, codeExchanger: deps.codeExchanger,
            signInResultURL: deps.configuration.signInResultURL
        )
        .register(into: &registry)
        AppointmentsController(
            store: deps.store, pushTargets: deps.plugins.filter(\.takesPushOut).map(\.provider), openAPIDocument: OpenAPIDocument.document(plugins: deps.plugins),
            clock: deps.clock, logger: deps.logger
        ).register(into: &registry)
        return registry
    }

    /// The catalog route files are checked against (also used by `calgate routes check`): the gateway's own
    /// handlers and verifiers plus those the provider plugins bring.
    public static func catalog(plugins: [ProviderPlugin]) -> RouteCatalog {
        // Handler and verifier keys do not depend on runtime dependencies; a registry with inert
        // dependencies would be heavier than listing them here, so the registry tests pin the two together.
        var handlers: [String: RouteHandlerSpec] = [
            "admin.health": RouteHandlerSpec(kind: .admin, defaultBodyLimit: 0, methods: ["GET", "HEAD"]),
            "admin.metrics": RouteHandlerSpec(kind: .admin, defaultBodyLimit: 0, methods: ["GET"]),
            "api.connections.create": ConnectionsController.spec(["POST"], body: 16_384),
            "api.connections.list": ConnectionsController.spec(["GET"]),
            "api.connections.get": ConnectionsController.spec(["GET"]),
            "api.connections.calendars.list": ConnectionsController.spec(["GET"]),
            "api.connections.calendars.refresh": ConnectionsController.spec(["POST"]),
            "api.connections.calendars.select": ConnectionsController.spec(["PUT"], body: 65_536),
            "api.connections.update": ConnectionsController.spec(["PATCH"], body: 4096),
            "api.connections.disconnect": ConnectionsController.spec(["DELETE"]),
            "api.connections.reconnect": ConnectionsController.spec(["POST"], body: 16_384),
            "api.imported.update": ConnectionsController.spec(["PATCH"], body: 16_384),
            "api.imported.delete": ConnectionsController.spec(["DELETE"]),
            "api.appointments.create": ConnectionsController.spec(["POST"], body: 65_536),
            "api.appointments.update": ConnectionsController.spec(["PATCH"], body: 65_536),
            "api.appointments.delete": ConnectionsController.spec(["DELETE"]),
            "api.availability": ConnectionsController.spec(["GET"]),
            "api.push_target.get": ConnectionsController.spec(["GET"]),
            "api.openapi": ConnectionsController.spec(["GET"]),
            "api.push_target.set": ConnectionsController.spec(["PUT"], body: 4096),
            "api.appointments.list": ConnectionsController.spec(["GET"]),
        ].merging(ConsoleController.specs) { first, _ in first }
        handlers.merge(ConnectionsController.signInSpecs) { first, _ in first }
        handlers.merge(WebhookController.specs(plugins.flatMap(\.webhooks))) { first, _ in first }
        for plugin in plugins where !plugin.accountIntegrationFields.isEmpty {
            handlers.merge(ConnectionsController.accountIntegrationSpecs(plugin.provider)) { first, _ in first }
        }
        let verifiers: Set<String> = ["none", "admin_token", "admin_token_optional", "admin_session", "api_token"]
        return RouteCatalog(handlers: handlers, verifiers: verifiers.union(plugins.flatMap(\.webhooks).map(\.key)))
    }

    /// Loads the route table and builds the application; `onServerRunning` receives the bound channel.
    public static func makeApplication(
        _ deps: GatewayServerDependencies,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> Application<RouterResponder<GatewayRequestContext>> {
        let intake = makeIntake(deps)
        let registry = makeRegistry(deps, intake: intake)
        let table = try RouteTableLoader.load(directory: deps.configuration.routesDirectory, catalog: registry.catalog)
        let webhookRoutes = WebhookRoute.routes(in: table, catalog: registry.catalog, verifiers: deps.plugins.flatMap(\.webhooks))
        let limits = deps.configuration.limits
        let router = registry.makeRouter(
            table: table, metrics: deps.metrics, logger: deps.logger, failures: deps.verificationFailures, clock: deps.clock
        )
        let metrics = deps.metrics
        // Idle timeouts and graceful shutdown are `HTTPActivityHandler`'s, which sees webhooks too.
        let http1 = HTTP1Channel.Configuration(
            idleTimeout: nil,
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: limits.maxHeaderBytes,
                maxHeaderListSize: limits.maxHeaderBytes,
                maxHeaderFieldCount: limits.maxHeaderCount
            )
        )
        let tls = deps.tlsContext
        let headTimeout = TimeAmount.seconds(Int64(limits.headerTimeoutSeconds))
        let bodyTimeout = TimeAmount.seconds(Int64(limits.bodyTimeoutSeconds))
        let idleTimeout = TimeAmount.seconds(Int64(limits.idleTimeoutSeconds))
        let server = HTTPServerBuilder { responder in
            OpenSSLChildChannel(
                HTTP1Channel(responder: responder, configuration: http1), tlsContext: tls,
                makeGuard: { ConnectionGuardHandler(headTimeout: headTimeout, bodyTimeout: bodyTimeout) { metrics.connectionCut($0) } },
                makeHTTP1Handlers: {
                    [HTTPActivityHandler(idleTimeout: idleTimeout), WebhookAckHandler(routes: webhookRoutes, intake: intake, metrics: metrics)]
                }
            )
        }
        let address = deps.configuration.listen
        let eventLoopGroup: any EventLoopGroup =
            limits.eventLoopThreads.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) }
            ?? MultiThreadedEventLoopGroup.singleton
        return Application(
            router: router,
            server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port),
                serverName: nil,
                availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections, logger: deps.logger)
            ),
            onServerRunning: onServerRunning,
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: deps.logger
        )
    }
}
