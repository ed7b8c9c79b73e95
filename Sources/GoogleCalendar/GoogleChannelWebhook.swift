import Foundation
import GatewayCore

/// Google Calendar's push notifications behind the gateway's provider boundary: the `google_channel` verifier of
/// `webhook.google`, checking each push against its stored channel (PROVIDERS.md §1.5).
public struct GoogleChannelWebhook: WebhookVerifying {
    /// Verifier key used in route files.
    public static let verifierKey = "google_channel"
    /// Handler key used in route files.
    public static let handlerKey = "webhook.google"

    private let verifier = GoogleChannelVerifier()

    /// Creates the verifier.
    public init() {}

    /// Google.
    public var provider: Provider { .google }
    /// `google_channel`.
    public var key: String { Self.verifierKey }
    /// `webhook.google`: pushes have empty bodies, so 1 KiB is plenty.
    public var handlers: [WebhookHandlerSpec] { [WebhookHandlerSpec(key: Self.handlerKey, defaultBodyLimit: 1024)] }
    /// Everything Google sends that matters is in `X-Goog-*` fields.
    public var headerPrefix: String? { "x-goog-" }

    struct Parsed: Sendable {
        var headers: [String: String]
        var bodyLength: Int
        var channelID: String?
    }

    /// Names the channel to look up (none when the header is absent or too long: `verify` refuses it then).
    public func parse(_ request: WebhookRequest) -> WebhookParse {
        let id = verifier.channelID(in: request.headers)
        return .lookup(ids: id.map { [$0] } ?? [], parsed: Parsed(headers: request.headers, bodyLength: request.body.count, channelID: id))
    }

    /// The channel row with its token opened.
    public func credential(id: String, store: any GatewayStore, sealer: any SecretSealer) async throws -> WebhookCredential? {
        guard let row = try await store.googleChannel(id: id) else { return nil }
        let token = try sealer.open(row.sealedToken, context: "google_channel:\(row.id)")
        return WebhookCredential(
            id: row.id, secret: String(decoding: token, as: UTF8.self), calendarKey: row.calendarKey, resourceID: row.resourceID,
            expiresAt: row.expiresAt, endedAt: row.stoppedAt
        )
    }

    /// Refuses pushes through stopped or expired channels, then checks every header; a `sync` push is acknowledged
    /// without storing (it only announces that the channel works).
    public func verify(_ parsed: any Sendable, credentials: [String: WebhookCredential], now: Date) -> WebhookVerdict {
        guard let parsed = parsed as? Parsed else { return .rejected(Self.rejection(.missingHeader)) }
        var channel: GoogleChannel?
        if let id = parsed.channelID, let credential = credentials[id] {
            if credential.endedAt != nil || (credential.expiresAt ?? .distantFuture) <= now {
                return .rejected(
                    WebhookRejection(
                        .notFound, "this channel is no longer active", reason: credential.endedAt != nil ? "stopped_channel" : "expired_channel",
                        isStale: true
                    ))
            }
            channel = GoogleChannel(
                id: credential.id, resourceID: credential.resourceID ?? "", token: credential.secret, calendarKey: credential.calendarKey ?? "",
                expiresAt: credential.expiresAt ?? .distantFuture
            )
        }
        switch verifier.verify(headers: parsed.headers, bodyLength: parsed.bodyLength, channel: channel, receivedAt: now) {
        case .success(let push):
            guard push.state != "sync" else { return .answer(WebhookAnswer(status: 200, acknowledgedKind: push.state)) }
            return .store([push.entry.naming(calendar: push.channel.calendarKey)], status: 200, dropped: [])
        case .failure(let rejection):
            return .rejected(Self.rejection(rejection))
        }
    }

    /// The one place a Google rejection becomes a status: forged or unknown pushes get 4xx, which Google does not retry.
    static func rejection(_ rejection: GoogleChannelVerifier.Rejection) -> WebhookRejection {
        switch rejection {
        case .missingHeader, .badMessageNumber, .unknownState, .unexpectedBody, .oversizedHeader:
            return WebhookRejection(.badRequest, "not a valid Google Calendar push notification", reason: rejection.rawValue)
        case .tokenMismatch, .resourceMismatch:
            return WebhookRejection(.forbidden, "notification does not match its channel", reason: rejection.rawValue)
        case .unknownChannel:
            return WebhookRejection(.notFound, "unknown channel", reason: rejection.rawValue, isStale: true)
        }
    }
}

extension ProviderPlugin {
    /// Google Calendar: push channels, sync tokens, push-out; `syncer` nil when Google is not configured; `signIn` when users may sign in.
    public static func google(_ syncer: GoogleConnectionSyncer?, signIn: OAuthSignIn? = nil) -> ProviderPlugin {
        ProviderPlugin(provider: .google, webhooks: [GoogleChannelWebhook()], connectShape: .refreshToken, connector: syncer, syncer: syncer, maintainer: syncer, pusher: syncer, takesPushOut: true, signIn: signIn)
    }
}
