import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore
import OpenSSLTLS

/// `GET /admin/health` and `GET /admin/metrics`, and the admin-token verifiers they use.
public struct AdminController: Sendable {
    /// The token operators present as `Authorization: Bearer <token>`, with its optional expiry.
    let adminToken: BearerCredential
    let store: any GatewayStore
    let tlsContext: TLSServerContext
    let metrics: GatewayMetrics
    let evaluator: HealthEvaluator
    let clock: any GatewayClock
    let startedAt: Date
    let version: String

    /// Creates the controller.
    public init(
        adminToken: String, store: any GatewayStore, tlsContext: TLSServerContext, metrics: GatewayMetrics,
        thresholds: GatewayConfiguration.HealthThresholds, clock: any GatewayClock, version: String, adminTokenExpiresAt: Date? = nil
    ) {
        self.adminToken = BearerCredential(token: adminToken, expiresAt: adminTokenExpiresAt)
        self.store = store
        self.tlsContext = tlsContext
        self.metrics = metrics
        self.evaluator = HealthEvaluator(thresholds: thresholds)
        self.clock = clock
        self.startedAt = clock.now()
        self.version = version
    }

    /// Registers the admin handlers and verifiers.
    public func register(into registry: inout RouteRegistry) {
        registry.register(
            RouteVerifier(key: "admin_token") { request, _ in
                switch adminToken.check(authorization: request.headers[.authorization], now: clock.now()) {
                case .accepted:
                    return .accepted(.admin)
                case .expired:
                    return .rejected(.unauthorized("the admin token has expired; configure a new one (admin_token, admin_token_expires_at)"), reason: "expired_admin_token")
                case .missing, .wrong:
                    return .rejected(.unauthorized("this endpoint needs Authorization: Bearer <admin token>"), reason: "bad_admin_token")
                }
            })
        // Never rejects (an anonymous caller sees the status only), so it spends no failure budget.
        registry.register(
            RouteVerifier(key: "admin_token_optional", limitsFailures: false) { request, _ in
                .accepted(presentsAdminToken(request) ? .admin : .anonymous)
            })
        registry.register(
            RouteHandler(
                key: "admin.health", spec: RouteHandlerSpec(kind: .admin, defaultBodyLimit: 0, methods: ["GET", "HEAD"])
            ) { call in
                try await health(caller: call.caller)
            })
        registry.register(
            RouteHandler(
                key: "admin.metrics", spec: RouteHandlerSpec(kind: .admin, defaultBodyLimit: 0, methods: ["GET"])
            ) { call in
                guard call.caller.isAdmin else { throw GatewayHTTPError.unauthorized() }
                return metricsResponse()
            })
    }

    /// True when the request carries the admin token and it has not expired; compared in constant time.
    func presentsAdminToken(_ request: Request) -> Bool {
        adminToken.check(authorization: request.headers[.authorization], now: clock.now()) == .accepted
    }

    /// True when `token` is the admin token and has not expired (the console's login form); constant time.
    func matchesAdminToken(_ token: String) -> Bool {
        adminToken.check(authorization: "Bearer " + token, now: clock.now()) == .accepted
    }

    /// Runs every check and reports; only the admin sees anything but `status`.
    func health(caller: VerifiedCaller) async throws -> Response {
        let report = await currentReport()
        var document: [String: JSONValue] = ["status": .string(report.status.rawValue)]
        if caller.isAdmin {
            document["version"] = .string(version)
            document["uptime_s"] = .integer(Int64(max(0, clock.now().timeIntervalSince(startedAt))))
            var checks: [String: JSONValue] = [:]
            for check in report.checks {
                var details = check.details
                details["status"] = .string(check.status.rawValue)
                checks[check.name] = .object(details)
            }
            document["checks"] = .object(checks)
        }
        let status: HTTPResponse.Status = report.status == .failing ? .serviceUnavailable : .ok
        return Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: JSONValue.object(document).serialized()))
        )
    }

    /// Gathers the checks; each failure turns into that check's status, never an error of the endpoint.
    public func currentReport() async -> HealthReport {
        let now = clock.now()
        var probeError: String?
        var schema: Int?
        do {
            try await store.checkWritable()
            schema = try await store.schemaVersion()
        } catch {
            probeError = String(describing: error)
        }
        let database = evaluator.database(writeProbeError: probeError, schemaVersion: schema)
        let certificate = evaluator.certificate(notAfter: tlsContext.certificateInfo.notAfter, now: now)
        var inbox: HealthCheck
        do {
            inbox = evaluator.inbox(backlog: try await store.backlog(), error: nil, now: now)
        } catch {
            inbox = evaluator.inbox(backlog: nil, error: String(describing: error), now: now)
        }
        var connectionsCheck = HealthCheck(name: "connections", status: .ok)
        do {
            let all = try await store.connections(userID: nil)
            let broken = all.filter { $0.state == .needsReconnect }
            let degraded = all.filter { $0.state == .degraded }
            connectionsCheck.details = [
                "total": .integer(Int64(all.count)),
                "active": .integer(Int64(all.filter { $0.state == .active }.count)),
                "degraded": .integer(Int64(degraded.count)),
                "degraded_ids": .array(degraded.prefix(20).map { .string($0.id) }),
                "needs_reconnect": .integer(Int64(broken.count)),
                "needs_reconnect_ids": .array(broken.prefix(20).map { .string($0.id) }),
                "disconnected": .integer(Int64(all.filter { $0.state == .disconnected }.count)),
            ]
            // Failing syncs or renewals, or a connection the user must fix: degraded, never failing (the gateway
            // itself still works).
            connectionsCheck.status = broken.isEmpty && degraded.isEmpty ? .ok : .degraded
        } catch {
            connectionsCheck = HealthCheck(name: "connections", status: .failing, details: ["error": .string(String(describing: error))])
        }
        let tls = HealthCheck(
            name: "tls", status: .ok,
            details: [
                "handshakes": .integer(Int64(tlsContext.handshakesCompleted)),
                "handshake_failures": .integer(Int64(tlsContext.handshakeFailures)),
            ])
        return HealthReport(checks: [database, certificate, inbox, connectionsCheck, tls])
    }

    func metricsResponse() -> Response {
        metrics.syncHandshakeCounts(completed: tlsContext.handshakesCompleted, failed: tlsContext.handshakeFailures)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: metrics.render()))
        )
    }
}
