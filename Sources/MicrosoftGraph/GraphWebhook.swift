import Foundation
import GatewayCore

/// Microsoft Graph's change and lifecycle notifications behind the gateway's provider boundary: the
/// `graph_client_state` verifier of `webhook.microsoft` and `webhook.microsoft.lifecycle` (PROVIDERS.md §3.3–§3.6).
///
/// A validation handshake is echoed; a batch is verified item by item against each subscription's clientState, and
/// unknown or forged items are dropped (counted); a batch in which nothing verifies is refused 403.
public struct GraphWebhook: WebhookVerifying {
    /// Verifier key used in route files.
    public static let verifierKey = "graph_client_state"
    /// Handler key of change notifications.
    public static let notificationsHandlerKey = "webhook.microsoft"
    /// Handler key of lifecycle notifications.
    public static let lifecycleHandlerKey = "webhook.microsoft.lifecycle"

    /// Creates the verifier.
    public init() {}

    /// Microsoft.
    public var provider: Provider { .microsoft }
    /// `graph_client_state`.
    public var key: String { Self.verifierKey }
    /// Both handlers; batches hold up to 1,000 items, so 256 KiB.
    public var handlers: [WebhookHandlerSpec] {
        [
            WebhookHandlerSpec(key: Self.notificationsHandlerKey, defaultBodyLimit: 256 * 1024),
            WebhookHandlerSpec(key: Self.lifecycleHandlerKey, defaultBodyLimit: 256 * 1024),
        ]
    }
    /// Graph signs nothing in headers; everything is in the body.
    public var headerPrefix: String? { nil }

    /// Answers a validation handshake, or decodes the batch and names its subscriptions.
    public func parse(_ request: WebhookRequest) -> WebhookParse {
        if let token = request.query.flatMap(GraphNotificationDecoder.validationToken(inQuery:)) {
            return .verdict(Self.validation(token))
        }
        let lifecycle = request.handlerKey.map { $0 == Self.lifecycleHandlerKey } ?? request.path.hasSuffix("/lifecycle")
        let notifications: [GraphNotification]
        do {
            notifications = try GraphNotificationDecoder.decode(request.body, lifecycle: lifecycle)
        } catch {
            return .verdict(.rejected(WebhookRejection(.badRequest, "not a Graph notification collection: \(error.description)", reason: "malformed")))
        }
        var ids: [String] = []
        var seen: Set<String> = []
        for notification in notifications where seen.insert(notification.subscriptionID).inserted { ids.append(notification.subscriptionID) }
        return .lookup(ids: ids, parsed: notifications)
    }

    static func validation(_ token: String) -> WebhookVerdict {
        guard !token.isEmpty, token.utf8.count <= 1024 else {
            return .rejected(WebhookRejection(.badRequest, "validationToken must be 1 to 1024 bytes", reason: "bad_validation"))
        }
        // Echoed verbatim, so nothing that could split or smuggle a response: no control characters at all.
        guard !token.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            return .rejected(WebhookRejection(.badRequest, "validationToken contains control characters", reason: "bad_validation"))
        }
        return .answer(WebhookAnswer(status: 200, contentType: "text/plain; charset=utf-8", body: Array(token.utf8)))
    }

    /// The subscription row with its clientState opened.
    public func credential(id: String, store: any GatewayStore, sealer: any SecretSealer) async throws -> WebhookCredential? {
        guard let row = try await store.graphSubscription(id: id) else { return nil }
        let state = try sealer.open(row.sealedClientState, context: "graph_subscription:\(row.id)")
        return WebhookCredential(
            id: row.id, secret: String(decoding: state, as: UTF8.self), calendarKey: row.calendarKey, expiresAt: row.expiresAt, endedAt: row.removedAt
        )
    }

    /// Keeps the items whose subscription is live and whose clientState matches, in constant time.
    public func verify(_ parsed: any Sendable, credentials: [String: WebhookCredential], now: Date) -> WebhookVerdict {
        guard let notifications = parsed as? [GraphNotification] else {
            return .rejected(WebhookRejection(.badRequest, "not a Graph notification collection", reason: "malformed"))
        }
        var accepted: [InboxEntry] = []
        var unknown = 0
        var forged = 0
        for notification in notifications {
            guard let credential = credentials[notification.subscriptionID], credential.endedAt == nil else {
                unknown += 1
                continue
            }
            guard let given = notification.clientState, !credential.secret.isEmpty, ConstantTime.equals(given, credential.secret) else {
                forged += 1
                continue
            }
            accepted.append(GraphNotificationDecoder.inboxEntry(for: notification, receivedAt: now).naming(calendar: credential.calendarKey))
        }
        let dropped = Array(repeating: "unknown_subscription", count: unknown) + Array(repeating: "client_state_mismatch", count: forged)
        guard !accepted.isEmpty else {
            // Nothing verifies: refuse without saying which subscriptions exist.
            return .rejected(
                WebhookRejection(
                    .forbidden, "no notification in the batch matches a live subscription and its clientState",
                    reason: forged > 0 ? "client_state_mismatch" : "unknown_subscription", itemReasons: dropped,
                    // Only items for unknown or removed subscriptions: what Graph sends after a subscription ends.
                    isStale: forged == 0
                ))
        }
        return .store(accepted, status: 202, dropped: dropped)
    }
}

extension ProviderPlugin {
    /// Microsoft 365 through Graph: change notifications, delta links, push-out; `syncer` nil when not configured; `signIn` when users may sign in.
    public static func microsoft(_ syncer: GraphConnectionSyncer?, signIn: OAuthSignIn? = nil) -> ProviderPlugin {
        ProviderPlugin(provider: .microsoft, webhooks: [GraphWebhook()], connectShape: .refreshToken, connector: syncer, syncer: syncer, maintainer: syncer, pusher: syncer, takesPushOut: true, signIn: signIn)
    }
}
