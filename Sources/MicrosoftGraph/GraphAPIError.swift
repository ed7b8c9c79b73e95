import Foundation
import GatewayCore

/// A Microsoft Graph or Entra ID failure, classified the way the sync engine acts on it (PROVIDERS.md §3.7, §4.4–4.6).
public typealias GraphAPIError = ClassifiedError<GraphAPIErrorKind>

/// What the caller should do about a `GraphAPIError`.
public enum GraphAPIErrorKind: Sendable, Hashable {
    /// 410, `syncStateNotFound` or `resyncRequired`: drop the delta link and run a full round.
    case resyncRequired
    /// 401: refresh the access token and retry once.
    case unauthorized
    /// `invalid_grant`: the refresh token is dead; the user must connect again.
    case invalidGrant
    /// `interaction_required` (MFA, conditional access) or `consent_required`: the user must sign in interactively.
    case interactionRequired
    /// 429 (or 503 with `Retry-After`): back off at least that long.
    case rateLimited(retryAfter: TimeInterval?)
    /// 5xx: back off and retry.
    case server
    /// 404 `ResourceNotFound`: the subscription (or item) is gone.
    case notFound
    /// 400 from subscription create/renew: Graph's validation handshake with calgate failed.
    case validationFailed
    /// The response could not be understood, or pointed somewhere calgate will not follow.
    case badResponse
    /// The request did not complete (connect, TLS, timeout).
    case transport
    /// Anything else (4xx that retrying will not fix).
    case other(status: Int)
}
