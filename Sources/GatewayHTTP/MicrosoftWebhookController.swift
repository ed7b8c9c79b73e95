import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import MicrosoftGraph
import NIOCore

/// `POST /webhooks/microsoft` and `POST /webhooks/microsoft/lifecycle`: Graph's validation handshake, then
/// notifications verified item by item against their subscription's `clientState`, stored, and answered 202.
///
/// Items are verified one by one (a POST may mix subscriptions): items naming an unknown or removed subscription, or
/// carrying the wrong `clientState`, are counted and dropped; the rest are stored and the answer is 202 after the
/// commit. A batch in which nothing verifies is refused 403 and triggers nothing.
public struct MicrosoftWebhookController: Sendable {
    /// What the verifier established.
    enum Evidence: Sendable {
        /// A validation handshake carrying this token.
        case validation(String)
        /// Verified items, ready for the inbox.
        case notifications([InboxEntry], dropped: Int)
    }

    let store: any GatewayStore
    let sealer: any SecretSealer
    let metrics: GatewayMetrics
    let clock: any GatewayClock
    let logger: Logger

    /// Creates the controller.
    public init(store: any GatewayStore, sealer: any SecretSealer, metrics: GatewayMetrics, clock: any GatewayClock, logger: Logger) {
        self.store = store
        self.sealer = sealer
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
    }

    /// Registers the `graph_client_state` verifier and both webhook handlers.
    public func register(into registry: inout RouteRegistry) {
        registry.register(RouteVerifier(key: "graph_client_state") { request, body in
            await verify(request, body: body)
        })
        for (key, lifecycle) in [("webhook.microsoft", false), ("webhook.microsoft.lifecycle", true)] {
            registry.register(RouteHandler(
                key: key, spec: RouteHandlerSpec(kind: .webhook, defaultBodyLimit: 256 * 1024, methods: ["POST"])
            ) { call in
                try await handle(call, lifecycle: lifecycle)
            })
        }
    }

    func verify(_ request: Request, body: ByteBuffer) async -> VerificationOutcome {
        if let token = request.uri.query.flatMap(GraphNotificationDecoder.validationToken(inQuery:)) {
            guard !token.isEmpty, token.utf8.count <= 1024 else {
                return .rejected(.badRequest("validationToken must be 1 to 1024 bytes"), reason: "bad_validation")
            }
            // Echoed verbatim, so nothing that could split or smuggle a response: no control characters at all.
            guard !token.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                return .rejected(.badRequest("validationToken contains control characters"), reason: "bad_validation")
            }
            return .accepted(VerifiedCaller(isAdmin: false, evidence: Evidence.validation(token)))
        }
        let lifecycle = request.uri.path.hasSuffix("/lifecycle")
        let notifications: [GraphNotification]
        do {
            notifications = try GraphNotificationDecoder.decode(Array(buffer: body), lifecycle: lifecycle)
        } catch {
            return .rejected(.badRequest("not a Graph notification collection: \(error.description)"), reason: "malformed")
        }
        let now = clock.now()
        var accepted: [InboxEntry] = []
        var unknown = 0
        var forged = 0
        var states: [String: String?] = [:]
        for notification in notifications {
            let expected: String?
            if let cached = states[notification.subscriptionID] {
                expected = cached
            } else {
                do {
                    if let row = try await store.graphSubscription(id: notification.subscriptionID), row.removedAt == nil {
                        expected = String(decoding: try sealer.open(row.sealedClientState, context: "graph_subscription:\(row.id)"), as: UTF8.self)
                    } else {
                        expected = nil
                    }
                } catch {
                    logger.error("graph subscription lookup failed", metadata: ["error": "\(error)"])
                    return .rejected(.unavailable("the gateway cannot verify notifications right now; retry"), reason: "store_unavailable")
                }
                states[notification.subscriptionID] = .some(expected)
            }
            guard let expected else {
                unknown += 1
                continue
            }
            guard let given = notification.clientState, !expected.isEmpty, ConstantTime.equals(given, expected) else {
                forged += 1
                continue
            }
            accepted.append(GraphNotificationDecoder.inboxEntry(for: notification, receivedAt: now))
        }
        for _ in 0..<unknown { metrics.verificationRejected(verifier: "graph_client_state", reason: "unknown_subscription") }
        for _ in 0..<forged { metrics.verificationRejected(verifier: "graph_client_state", reason: "client_state_mismatch") }
        if accepted.isEmpty {
            // Nothing verifies: refuse without saying which subscriptions exist.
            return .rejected(
                .forbidden("no notification in the batch matches a live subscription and its clientState"),
                reason: forged > 0 ? "client_state_mismatch" : "unknown_subscription"
            )
        }
        return .accepted(VerifiedCaller(isAdmin: false, evidence: Evidence.notifications(accepted, dropped: unknown + forged)))
    }

    func handle(_ call: RouteCall, lifecycle: Bool) async throws -> Response {
        switch call.caller.evidence as? Evidence {
        case .validation(let token)?:
            // Echoed only as text/plain with nosniff: the token is opaque and may carry markup.
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; charset=utf-8", HTTPField.Name("X-Content-Type-Options")!: "nosniff", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: token))
            )
        case .notifications(let entries, _)?:
            if !entries.isEmpty {
                do {
                    _ = try await store.append(entries)
                } catch {
                    logger.error("inbox append failed; answering 503 so Graph retries", metadata: ["provider": "microsoft", "error": "\(error)"])
                    throw GatewayHTTPError.unavailable("the notifications could not be stored; retry")
                }
                for entry in entries { metrics.notificationAccepted(provider: "microsoft", kind: entry.kind) }
            }
            return Response(status: .accepted)
        case nil:
            throw GatewayHTTPError.internalError()
        }
    }
}
