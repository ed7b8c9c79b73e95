import CalgateMacros
import Foundation

/// One webhook request as a provider's verifier sees it, without HTTP library types.
@MemberwiseInit
public struct WebhookRequest: Sendable {
    /// The route file's handler key (`webhook.microsoft.lifecycle`, …); nil when the request is verified before its
    /// handler is known (the router path), where `path` decides.
    public var handlerKey: String?
    /// The request path.
    public var path: String
    /// The query string without `?`, if any.
    public var query: String?
    /// The header fields whose lower-cased names start with the verifier's `headerPrefix`, by lower-cased name.
    public var headers: [String: String]
    /// The whole body (within the route's limit).
    public var body: [UInt8]
}

/// A push channel's or subscription's verification secret and what it names, opened from the store.
@MemberwiseInit
public struct WebhookCredential: Sendable, Hashable {
    /// The channel or subscription id.
    public var id: String
    /// The opened secret (Google channel token, Graph clientState).
    public var secret: String
    /// The calendar it watches.
    public var calendarKey: String? = nil
    /// The provider's resource id, where it sends one to check (Google's `X-Goog-Resource-ID`).
    public var resourceID: String? = nil
    /// When it expires at the provider; nil when the provider does not say.
    public var expiresAt: Date? = nil
    /// When calgate (or the provider) ended it; notifications through it are refused.
    public var endedAt: Date? = nil
}

/// Why a webhook request was refused: the status class (4xx, which providers do not retry), a message for the
/// caller and a fixed metric label. Never request data.
public struct WebhookRejection: Error, Sendable, Hashable {
    /// Which 4xx answers it.
    public enum Status: Int, Sendable, Hashable {
        /// 400: not a valid notification of this provider.
        case badRequest = 400
        /// 403: it does not match its channel or subscription.
        case forbidden = 403
        /// 404: no such (live) channel or subscription.
        case notFound = 404
    }

    /// The answer's status.
    public var status: Status
    /// What was wrong, for the caller.
    public var message: String
    /// Fixed metric label (`token_mismatch`, …).
    public var reason: String
    /// A metric label per item of a batch refused on its own before the whole batch was (counted one by one).
    public var itemReasons: [String]
    /// The request names a channel or subscription that is unknown or has ended, and tests no secret: providers keep
    /// sending these for a while after a stop, so they do not spend the sender's failed-verification budget (a mass
    /// stop would otherwise get the provider's own addresses refused). Forged and malformed requests do.
    public var isStale: Bool

    /// Creates a rejection.
    public init(_ status: Status, _ message: String, reason: String, itemReasons: [String] = [], isStale: Bool = false) {
        self.status = status
        self.message = message
        self.reason = reason
        self.itemReasons = itemReasons
        self.isStale = isStale
    }
}

/// What a verifier concluded about a request whose credentials it was given.
public enum WebhookVerdict: Sendable {
    /// Append these entries to the durable inbox, then answer `status` with an empty body. `dropped` holds a
    /// metric label per item refused on its own inside an otherwise valid batch.
    case store([InboxEntry], status: Int, dropped: [String])
    /// Answer without storing anything (a provider handshake, or a message that asks for no work).
    case answer(WebhookAnswer)
    /// Refuse the request.
    case rejected(WebhookRejection)
}

/// An answer that stores nothing.
@MemberwiseInit
public struct WebhookAnswer: Sendable, Hashable {
    /// Status.
    public var status: Int
    /// Content type of `body`, if it has one.
    public var contentType: String? = nil
    /// Body, echoed verbatim (e.g. Graph's validation token), so it is sent with `nosniff` and `no-store`.
    public var body: [UInt8] = []
    /// The kind of notification acknowledged (counted as accepted), nil for a handshake.
    public var acknowledgedKind: String? = nil
}

/// The first step of verification: which stored credentials are needed, or the verdict already.
public enum WebhookParse: Sendable {
    /// Look these ids up (the HTTP layer's cache, else `WebhookVerifying.credential(id:store:sealer:)`), then
    /// call `verify` with `parsed`.
    case lookup(ids: [String], parsed: any Sendable)
    /// Decided without any lookup (malformed, a handshake, …).
    case verdict(WebhookVerdict)
}

/// A webhook route handler a provider brings: its route-file key and default body limit.
@MemberwiseInit
public struct WebhookHandlerSpec: Sendable, Hashable {
    /// Handler key used in route files.
    public var key: String
    /// Largest body accepted unless the route file says otherwise.
    public var defaultBodyLimit: Int
}

/// One provider's webhook check: parses a request, names the credentials it needs and decides, failing closed.
///
/// It does no I/O of its own except `credential(id:store:sealer:)`, which the HTTP layer calls only on a cache miss,
/// so the normal path verifies on the event loop without a task or a store read.
public protocol WebhookVerifying: Sendable {
    /// The provider whose notifications it checks.
    var provider: Provider { get }
    /// Verifier key used in route files (`google_channel`, `graph_client_state`).
    var key: String { get }
    /// The handlers this verifier's notifications are served by.
    var handlers: [WebhookHandlerSpec] { get }
    /// Header fields whose lower-cased names start with this are handed over in `WebhookRequest.headers`; nil
    /// when the verifier reads none (the request path builds no header dictionary then).
    var headerPrefix: String? { get }
    /// Parses the request: the credential ids needed, or an immediate verdict.
    func parse(_ request: WebhookRequest) -> WebhookParse
    /// Reads one credential from the store and opens its secret; nil when the store has no such id.
    func credential(id: String, store: any GatewayStore, sealer: any SecretSealer) async throws -> WebhookCredential?
    /// Decides, given what `parse` returned and the credentials found (ids absent from the store are absent here).
    func verify(_ parsed: any Sendable, credentials: [String: WebhookCredential], now: Date) -> WebhookVerdict
}
