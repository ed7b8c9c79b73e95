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

/// A request about a connection that names something that does not exist or is not allowed (answered 400/404).
public struct ConnectionInputError: Error, Sendable, CustomStringConvertible {
    /// Whether the connection itself is unknown (404) rather than the request being wrong (400).
    public let connectionNotFound: Bool
    /// What is wrong.
    public let description: String

    /// Creates an error.
    public init(_ description: String, connectionNotFound: Bool = false) {
        self.description = description
        self.connectionNotFound = connectionNotFound
    }
}

/// A provider as LeadCenter's API sees it: connect an account, re-read its calendars, choose which ones sync.
public protocol ConnectionManaging: Sendable {
    /// The provider.
    var provider: Provider { get }
    /// Proves the credentials, stores the connection (secrets sealed), lists calendars (the default one selected),
    /// full-syncs and subscribes each selected calendar. Throws `SyncFailure` (`needsReconnect` when refused).
    func connect(userID: String, clientID: String, clientSecret: String, refreshToken: String) async throws -> Connection
    /// Re-reads the account's calendar list, keeping choices; a selected calendar that disappeared is unsubscribed
    /// and its appointments removed.
    func refreshCalendars(connectionID: String) async throws -> [ConnectionCalendar]
    /// Makes exactly `calendarIDs` the synced calendars: newly chosen ones are full-synced and subscribed, dropped
    /// ones unsubscribed and their appointments removed. Unknown ids throw `ConnectionInputError`.
    func selectCalendars(connectionID: String, calendarIDs: Set<String>) async throws -> [ConnectionCalendar]
}
