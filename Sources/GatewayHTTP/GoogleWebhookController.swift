import Foundation
import GatewayCore
import GoogleCalendar
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `POST /webhooks/google`: verify the push against its stored channel, append it to the durable inbox, then 200.
///
/// Answers follow Google's retry rules (PROVIDERS.md §1.5): forged pushes get 401/403 and unknown, stopped or
/// expired channels 404 — none of which Google retries; only a store failure answers 503, which Google retries.
public struct GoogleWebhookController: Sendable {
    let store: any GatewayStore
    let sealer: any SecretSealer
    let metrics: GatewayMetrics
    let clock: any GatewayClock
    let logger: Logger
    private let verifier = GoogleChannelVerifier()

    /// Creates the controller.
    public init(store: any GatewayStore, sealer: any SecretSealer, metrics: GatewayMetrics, clock: any GatewayClock, logger: Logger) {
        self.store = store
        self.sealer = sealer
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
    }

    /// Registers the `google_channel` verifier and the `webhook.google` handler.
    public func register(into registry: inout RouteRegistry) {
        registry.register(RouteVerifier(key: "google_channel") { request, body in
            await verify(request, bodyLength: body.readableBytes)
        })
        registry.register(RouteHandler(
            key: "webhook.google", spec: RouteHandlerSpec(kind: .webhook, defaultBodyLimit: 1024, methods: ["POST"])
        ) { call in
            guard let push = call.caller.evidence as? GoogleChannelVerifier.Push else {
                throw GatewayHTTPError.internalError()
            }
            return try await accept(push)
        })
    }

    func verify(_ request: Request, bodyLength: Int) async -> VerificationOutcome {
        var headers: [String: String] = [:]
        for field in request.headers where field.name.canonicalName.hasPrefix("x-goog-") {
            headers[field.name.canonicalName] = field.value
        }
        let now = clock.now()
        var channel: GoogleChannel?
        if let id = verifier.channelID(in: headers) {
            do {
                if let stored = try await store.googleChannel(id: id) {
                    if stored.stoppedAt != nil || stored.expiresAt <= now {
                        return .rejected(.notFound("this channel is no longer active"), reason: stored.stoppedAt != nil ? "stopped_channel" : "expired_channel")
                    }
                    let token = try sealer.open(stored.sealedToken, context: "google_channel:\(stored.id)")
                    channel = GoogleChannel(
                        id: stored.id, resourceID: stored.resourceID, token: String(decoding: token, as: UTF8.self),
                        calendarKey: stored.calendarKey, expiresAt: stored.expiresAt
                    )
                }
            } catch {
                logger.error("google channel lookup failed", metadata: ["error": "\(error)"])
                return .rejected(.unavailable("the gateway cannot verify notifications right now; retry"), reason: "store_unavailable")
            }
        }
        switch verifier.verify(headers: headers, bodyLength: bodyLength, channel: channel, receivedAt: now) {
        case .success(let push):
            return .accepted(VerifiedCaller(isAdmin: false, evidence: push))
        case .failure(let rejection):
            return .rejected(Self.error(for: rejection), reason: rejection.rawValue)
        }
    }

    /// The one place a rejection becomes a status.
    static func error(for rejection: GoogleChannelVerifier.Rejection) -> GatewayHTTPError {
        switch rejection {
        case .missingHeader, .badMessageNumber, .unknownState, .unexpectedBody, .oversizedHeader:
            return .badRequest("not a valid Google Calendar push notification")
        case .tokenMismatch, .resourceMismatch:
            return .forbidden("notification does not match its channel")
        case .unknownChannel:
            return .notFound("unknown channel")
        }
    }

    func accept(_ push: GoogleChannelVerifier.Push) async throws -> Response {
        // `sync` only announces that the channel works: acknowledged, nothing to fetch.
        if push.state != "sync" {
            do {
                _ = try await store.append([push.entry])
            } catch {
                logger.error("inbox append failed; answering 503 so Google retries", metadata: [
                    "provider": "google", "channel.id": "\(push.channel.id)", "error": "\(error)",
                ])
                throw GatewayHTTPError.unavailable("the notification could not be stored; retry")
            }
        }
        metrics.notificationAccepted(provider: "google", kind: push.state)
        return Response(status: .ok)
    }
}
