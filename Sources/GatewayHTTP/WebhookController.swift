import CalgateMacros
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore

/// Registers every provider plugin's webhook verifiers (`google_channel`, `graph_client_state`, …) and handlers
/// (`webhook.google`, `webhook.microsoft`, …) with the router.
///
/// In a running gateway `WebhookAckHandler` answers these routes on the event loop before they reach the router;
/// the router's copies serve route tables that pair the handlers with other verifiers, and they use the same
/// `WebhookIntake`, so both paths verify, store and answer identically.
@MemberwiseInit
public struct WebhookController: Sendable {
    let intake: WebhookIntake
    let verifiers: [any WebhookVerifying]

    /// What a router-path verifier hands its handler.
    struct Evidence: Sendable {
        var verdict: WebhookVerdict
        var provider: Provider
    }

    /// The catalog entries of these verifiers' handlers.
    static func specs(_ verifiers: [any WebhookVerifying]) -> [String: RouteHandlerSpec] {
        var specs: [String: RouteHandlerSpec] = [:]
        for verifier in verifiers {
            for handler in verifier.handlers {
                specs[handler.key] = RouteHandlerSpec(kind: .webhook, defaultBodyLimit: handler.defaultBodyLimit, methods: ["POST"])
            }
        }
        return specs
    }

    /// Registers each verifier and each handler.
    public func register(into registry: inout RouteRegistry) {
        for verifier in verifiers {
            registry.register(
                RouteVerifier(key: verifier.key) { [intake] request, body in
                    let webhook = WebhookIntake.request(
                        for: verifier, handlerKey: nil, path: request.uri.path, query: request.uri.query, fields: request.headers, body: body
                    )
                    return Self.outcome(
                        await withCheckedContinuation { continuation in
                            intake.verify(webhook, with: verifier) { continuation.resume(returning: $0) }
                        })
                })
        }
        for (key, spec) in Self.specs(verifiers).sorted(by: { $0.key < $1.key }) {
            registry.register(
                RouteHandler(key: key, spec: spec) { [intake] call in
                    guard let evidence = call.caller.evidence as? Evidence else { throw GatewayHTTPError.internalError() }
                    let reply = await withCheckedContinuation { continuation in
                        intake.accept(evidence.verdict, provider: evidence.provider) { continuation.resume(returning: $0) }
                    }
                    return Response(status: reply.status, headers: reply.fields, body: .init(byteBuffer: reply.body))
                })
        }
    }

    private static func outcome(_ verification: WebhookIntake.Verification) -> VerificationOutcome {
        switch verification {
        case .verified(let verdict, let provider): .accepted(VerifiedCaller(isAdmin: false, evidence: Evidence(verdict: verdict, provider: provider)))
        case .rejected(let error, let reason): .rejected(error, reason: reason)
        }
    }
}
