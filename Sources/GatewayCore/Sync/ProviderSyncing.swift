import CalgateMacros
import Foundation

/// Why a calendar sync failed, in the terms the scheduler acts on.
public typealias SyncFailure = ClassifiedError<SyncFailureKind>

/// What the caller should do about a `SyncFailure`.
public enum SyncFailureKind: Sendable, Hashable {
    /// Transient (rate limit, 5xx, network): back off, at least `retryAfter` seconds when given.
    case retry(retryAfter: TimeInterval?)
    /// The credentials are dead: stop syncing the connection until the user reconnects.
    case needsReconnect
    /// Anything retrying will not fix soon; still retried on the backoff ceiling by the sweep.
    case failed
}

/// A provider as the sync scheduler sees it: map a notification to a calendar, sync a calendar.
public protocol ProviderSyncing: Sendable {
    /// The provider this syncs.
    var provider: Provider { get }
    /// The calendar a stored notification is about; nil when it is about nothing calgate still syncs.
    func calendarKey(for entry: StoredInboxEntry) async throws -> String?
    /// One delta sync of the calendar; throws `SyncFailure`.
    func sync(calendarKey: String) async throws -> SyncOutcome
}

/// What one calendar sync did.
@MemberwiseInit
public struct SyncOutcome: Sendable, Hashable {
    /// Changes applied (upserts, deletions, cancelled instances).
    public var changes: Int
    /// Whether the calendar was replaced by a full sync (then `changes` says nothing about what push missed).
    public var fullSync: Bool

    /// Nothing to do (e.g. the calendar was deselected meanwhile).
    public static let nothing = SyncOutcome(changes: 0, fullSync: false)
}

/// A provider whose push channels or subscriptions must be kept alive: renewed before they lapse, recreated when
/// they lapsed or went missing, and duplicates removed.
public protocol SubscriptionMaintaining: Sendable {
    /// The provider.
    var provider: Provider { get }
    /// One maintenance pass over every syncing connection's selected calendars.
    func maintainSubscriptions(now: Date) async -> MaintenanceReport
    /// Renews the push channels or subscriptions of one connection's selected calendars now, whether due or not;
    /// throws `SyncFailure` or the provider's error when it cannot.
    func renewNow(connectionID: String) async throws -> MaintenanceReport
}

/// What one maintenance pass did.
public struct MaintenanceReport: Sendable, Hashable {
    /// Channels or subscriptions renewed ahead of expiry.
    public var renewed = 0
    /// Created because none was live (lapsed, removed, or never created).
    public var created = 0
    /// Calendars whose channel or subscription had expired before calgate renewed it (should stay zero).
    public var lapsed = 0
    /// Superseded or duplicate channels and subscriptions stopped.
    public var stopped = 0
    /// Calendars whose maintenance failed this pass (retried with backoff).
    public var failures = 0
    /// Calendars that need a delta sync now (their notifications may have been lost).
    public var resync: [String] = []
    /// The outcome per connection (a failure on any calendar wins over successes).
    public var outcomes: [String: ConnectionHealth.Event] = [:]

    /// An empty report.
    public init() {}

    /// Records a calendar's success unless the connection already failed this pass.
    public mutating func succeeded(_ connectionID: String) {
        if outcomes[connectionID] == nil { outcomes[connectionID] = .succeeded }
    }

    /// Whether anything was renewed, created, found lapsed or stopped since `earlier` (a step that did something,
    /// worth a line in the work log).
    public func changedSince(_ earlier: MaintenanceReport) -> Bool {
        renewed != earlier.renewed || created != earlier.created || lapsed != earlier.lapsed || stopped != earlier.stopped
    }

    /// Records a failure for the connection.
    public mutating func failed(_ connectionID: String, _ event: ConnectionHealth.Event) {
        failures += 1
        if case .credentialsRefused? = outcomes[connectionID] { return }
        outcomes[connectionID] = event
    }
}

/// When a channel or subscription is renewed: once less than a quarter of its life or `minimumLead` is left,
/// whichever comes first, stretched by up to `jitter` (a stable per-id fraction) so renewals spread out.
@MemberwiseInit
public struct RenewalPolicy: Sendable, Hashable {
    /// Renew at the latest this long before expiry.
    public var minimumLead: TimeInterval = 86_400
    /// Or once this fraction of the life is left.
    public var lifeFraction: Double = 0.25
    /// Up to this fraction of the lead is added, per id.
    public var jitter: Double = 0.1

    /// How long before expiry `id` is renewed.
    public func lead(id: String, createdAt: Date?, expiresAt: Date) -> TimeInterval {
        let life = createdAt.map { max(0, expiresAt.timeIntervalSince($0)) } ?? 0
        let base = max(minimumLead, life * lifeFraction)
        return base * (1 + jitter * Self.unit(id))
    }

    /// Whether `id` is due for renewal at `now`.
    public func isDue(id: String, createdAt: Date?, expiresAt: Date, now: Date) -> Bool {
        expiresAt.timeIntervalSince(now) <= lead(id: id, createdAt: createdAt, expiresAt: expiresAt)
    }

    /// A stable fraction in [0, 1) from the id (FNV-1a), so the jitter does not move between passes.
    public static func unit(_ id: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Double(hash % 10_000) / 10_000
    }
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
///
/// The API checks each request against the provider's `ProviderPlugin.connectShape` before calling it, so it needs
/// no provider-specific code.
public protocol ConnectionManaging: Sendable {
    /// The provider.
    var provider: Provider { get }
    /// Proves the credentials, stores the connection (secrets sealed), lists calendars (the default one selected),
    /// full-syncs and subscribes each selected calendar. Throws `SyncFailure` (`needsReconnect` when refused).
    func connect(_ request: ConnectRequest) async throws -> Connection
    /// Re-reads the account's calendar list, keeping choices; a selected calendar that disappeared is unsubscribed
    /// and its appointments removed.
    func refreshCalendars(connectionID: String) async throws -> [ConnectionCalendar]
    /// Makes exactly `calendarIDs` the synced calendars: newly chosen ones are full-synced and subscribed, dropped
    /// ones unsubscribed and their appointments removed. Unknown ids throw `ConnectionInputError`.
    func selectCalendars(connectionID: String, calendarIDs: Set<String>) async throws -> [ConnectionCalendar]
    /// Stops the connection's channels or subscriptions (at the provider when it still accepts the credentials),
    /// removes every appointment imported through it (LeadCenter-created ones are untouched) and marks it
    /// `disconnected`.
    func disconnect(connectionID: String) async throws -> Connection
    /// Takes fresh credentials (the shape's `reconnectFields`) for an existing connection: proves them, stores
    /// them, marks the connection active and fully re-syncs and re-subscribes every selected calendar.
    func reconnect(connectionID: String, fields: [String: String]) async throws -> Connection
    /// The account-level integration the provider's connections build on (Redtail's main integration), if any.
    var accountIntegration: (any AccountIntegrating)? { get }
}

extension ConnectionManaging {
    /// Most providers have no account-level integration.
    public var accountIntegration: (any AccountIntegrating)? { nil }
}

/// What a provider's connect and reconnect requests carry besides `user_id`, `provider`, `account_id` and
/// `visibility`: required, non-empty string fields, checked by the API before the provider sees them.
@MemberwiseInit
public struct ConnectShape: Sendable, Hashable {
    /// Fields of `POST /api/v1/connections`.
    public var connectFields: [String]
    /// Whether `account_id` is required (the connection builds on the account's integration).
    public var requiresAccount: Bool = false
    /// Fields of `POST /api/v1/connections/{id}/reconnect`.
    public var reconnectFields: [String]

    /// OAuth providers connected with a client and a refresh token obtained elsewhere.
    public static let refreshToken = ConnectShape(
        connectFields: ["client_id", "client_secret", "refresh_token"], reconnectFields: ["client_id", "client_secret", "refresh_token"]
    )
}

/// A connect request whose fields the API has checked against the provider's `ConnectShape`.
@MemberwiseInit
public struct ConnectRequest: Sendable, Hashable {
    /// The LeadCenter user.
    public var userID: String
    /// The LeadCenter account, when given (required by `ConnectShape.requiresAccount`).
    public var accountID: String? = nil
    /// The shape's fields, each present and non-empty.
    public var fields: [String: String]

    /// A field the shape requires (the API guarantees it; a caller that did not check gets a clear input error).
    public func field(_ name: String) throws -> String {
        guard let value = fields[name], !value.isEmpty else { throw ConnectionInputError("\(name) is required") }
        return value
    }
}

/// An OAuth provider connected with client credentials and a refresh token: the generic entry points forward to
/// the typed ones.
public protocol RefreshTokenConnecting: ConnectionManaging {
    /// Connects with a refresh token obtained elsewhere.
    func connect(userID: String, clientID: String, clientSecret: String, refreshToken: String) async throws -> Connection
    /// Reconnects with new client credentials and refresh token.
    func reconnect(connectionID: String, clientID: String, clientSecret: String, refreshToken: String) async throws -> Connection
}

extension RefreshTokenConnecting {
    /// Forwards to the typed connect.
    public func connect(_ request: ConnectRequest) async throws -> Connection {
        try await connect(
            userID: request.userID, clientID: try request.field("client_id"), clientSecret: try request.field("client_secret"),
            refreshToken: try request.field("refresh_token")
        )
    }

    /// Forwards to the typed reconnect.
    public func reconnect(connectionID: String, fields: [String: String]) async throws -> Connection {
        let request = ConnectRequest(userID: "", fields: fields)
        return try await reconnect(
            connectionID: connectionID, clientID: try request.field("client_id"), clientSecret: try request.field("client_secret"),
            refreshToken: try request.field("refresh_token")
        )
    }
}

/// An account-level integration that a provider's connections build on (Redtail's main integration per LeadCenter
/// account), served at `/api/v1/accounts/{account}/{provider}`.
public protocol AccountIntegrating: Sendable {
    /// Proves and stores the account's integration (secrets sealed), replacing an earlier one.
    /// `fields` are the plugin's `accountIntegrationFields`, each present and non-empty.
    func registerIntegration(accountID: String, fields: [String: String]) async throws -> RedtailIntegration
    /// The account's integration, if it has one.
    func integration(accountID: String) async throws -> RedtailIntegration?
    /// Removes the account's integration; false when it had none.
    func removeIntegration(accountID: String) async throws -> Bool
}

/// A request that conflicts with the state of the LeadCenter account (answered 409), e.g. a Redtail calendar before
/// the account's main Redtail integration is connected.
public struct ConnectionConflictError: Error, Sendable, CustomStringConvertible {
    /// What is in the way, and what to do.
    public let description: String

    /// Creates an error.
    public init(_ description: String) {
        self.description = description
    }
}
