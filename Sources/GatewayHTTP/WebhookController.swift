import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore

/// Registers the webhook verifiers (`google_channel`, `graph_client_state`) and handlers (`webhook.google`,
/// `webhook.microsoft`, `webhook.microsoft.lifecycle`) with the router.
///
/// In a running gateway `WebhookAckHandler` answers these routes on the event loop before they reach the router;
/// the router's copies serve route tables that pair the handlers with other verifiers, and they use the same
/// `WebhookIntake`, so both paths verify, store and answer identically.
public struct WebhookController: Sendable {
    let intake: WebhookIntake

    /// Creates the controller over `intake`.
    public init(intake: WebhookIntake) {
        self.intake = intake
    }

    /// Registers both verifiers and the three handlers.
    public func register(into registry: inout RouteRegistry) {
        registry.register(RouteVerifier(key: WebhookIntake.googleVerifierKey) { [intake] request, body in
            Self.outcome(await withCheckedContinuation { continuation in
                intake.verifyGoogle(fields: request.headers, bodyLength: body.readableBytes) { continuation.resume(returning: $0) }
            })
        })
        registry.register(RouteVerifier(key: WebhookIntake.graphVerifierKey) { [intake] request, body in
            Self.outcome(await withCheckedContinuation { continuation in
                intake.verifyGraph(query: request.uri.query, lifecycle: request.uri.path.hasSuffix("/lifecycle"), body: body) {
                    continuation.resume(returning: $0)
                }
            })
        })
        let handlers: [(String, Int)] = [("webhook.google", 1024), ("webhook.microsoft", 256 * 1024), ("webhook.microsoft.lifecycle", 256 * 1024)]
        for (key, limit) in handlers {
            registry.register(RouteHandler(key: key, spec: RouteHandlerSpec(kind: .webhook, defaultBodyLimit: limit, methods: ["POST"])) { [intake] call in
                guard let evidence = call.caller.evidence as? WebhookIntake.Evidence else { throw GatewayHTTPError.internalError() }
                let reply = await withCheckedContinuation { continuation in
                    intake.accept(evidence) { continuation.resume(returning: $0) }
                }
                return Response(status: reply.status, headers: reply.fields, body: .init(byteBuffer: reply.body))
            })
        }
    }

    private static func outcome(_ verification: WebhookIntake.Verification) -> VerificationOutcome {
        switch verification {
        case .verified(let evidence): .accepted(VerifiedCaller(isAdmin: false, evidence: evidence))
        case .rejected(let error, let reason): .rejected(error, reason: reason)
        }
    }
}
