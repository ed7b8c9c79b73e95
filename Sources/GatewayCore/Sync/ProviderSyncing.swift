import Foundation

/// Why a calendar sync failed, in the terms the scheduler acts on.
public struct SyncFailure: Error, Sendable, CustomStringConvertible {
    /// What to do next.
    public enum Kind: Sendable, Hashable {
        /// Transient (rate limit, 5xx, network): back off, at least `retryAfter` seconds when given.
        case retry(retryAfter: TimeInterval?)
        /// The credentials are dead: stop syncing the connection until the user reconnects.
        case needsReconnect
        /// Anything retrying will not fix soon; still retried on the backoff ceiling by the sweep.
        case failed
    }

    /// The class.
    public let kind: Kind
    /// Details for logs and the connection's last error (never secrets).
    public let message: String

    /// Creates a failure.
    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// `kind: message`.
    public var description: String { "\(kind): \(message)" }
}

/// A provider as the sync scheduler sees it: map a notification to a calendar, sync a calendar.
public protocol ProviderSyncing: Sendable {
    /// The provider this syncs.
    var provider: Provider { get }
    /// The calendar a stored notification is about; nil when it is about nothing calgate still syncs.
    func calendarKey(for entry: StoredInboxEntry) async throws -> String?
    /// One delta sync of the calendar; throws `SyncFailure`.
    func sync(calendarKey: String) async throws -> Int
}
