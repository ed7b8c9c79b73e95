import Foundation
import GatewayCore

/// A Google API failure, classified the way the sync engine acts on it (PROVIDERS.md §2.6, §2.7).
public typealias GoogleAPIError = ClassifiedError<GoogleAPIErrorKind>

/// What the caller should do about a `GoogleAPIError`.
public enum GoogleAPIErrorKind: Sendable, Hashable {
    /// 410: the sync token is gone; wipe and full-sync the calendar.
    case fullSyncRequired
    /// 401: refresh the access token and retry once.
    case unauthorized
    /// The refresh token is dead: the connection needs the user to reconnect.
    case invalidGrant
    /// 429 or a 403 rate-limit reason: back off (at least `Retry-After`).
    case rateLimited(retryAfter: TimeInterval?)
    /// 5xx: back off and retry.
    case server
    /// The response could not be understood.
    case badResponse
    /// The request did not complete (connect, TLS, timeout).
    case transport
    /// Anything else (4xx that retrying will not fix).
    case other(status: Int)
}

extension ClassifiedError where Kind == GoogleAPIErrorKind {
    /// Whether waiting and retrying can help.
    public var isRetryable: Bool {
        switch kind {
        case .rateLimited, .server, .transport: return true
        case .fullSyncRequired, .unauthorized, .invalidGrant, .badResponse, .other: return false
        }
    }
}
