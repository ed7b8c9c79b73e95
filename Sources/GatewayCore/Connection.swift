import CalgateMacros
import Foundation

/// A LeadCenter user's link to one provider account.
public struct Connection: Sendable, Hashable {
    /// Whether sync runs.
    public enum State: String, Sendable, Hashable {
        /// Syncing.
        case active
        /// Syncing, but syncs or renewals are failing; `nextRetryAt` says when the next attempt runs.
        case degraded
        /// The provider refused the credentials (`invalid_grant`); sync stops until the user reconnects.
        case needsReconnect = "needs_reconnect"
        /// The user disconnected the account; nothing runs.
        case disconnected

        /// Whether syncs and renewals run.
        public var syncs: Bool { self == .active || self == .degraded }
    }

    /// calgate's id for the connection.
    public var id: String
    /// The LeadCenter user.
    public var userID: String
    /// Which provider.
    public var provider: Provider
    /// Sync state.
    public var state: State
    /// Why the state is not `active`, in words for the user (never a token).
    public var stateReason: String?
    /// When it was created.
    public var createdAt: Date
    /// For `degraded`: when the next attempt runs.
    public var nextRetryAt: Date?
    /// For `degraded`: since when it has been failing.
    public var failingSince: Date?
    /// What kind of LeadCenter account owns it (`financial_advisor`, …), when the provider needs to know (Redtail).
    public var accountType: String?
    /// The LeadCenter account (team) the user belongs to; `everyone` visibility is relative to it.
    public var accountID: String
    /// Who may see the appointments imported through it.
    public var visibility: Visibility

    /// Who on the LeadCenter account may see a connection's imported appointments.
    public enum Visibility: String, Sendable, Hashable, CaseIterable {
        /// Only the user who connected it.
        case onlyMe = "only_me"
        /// Everyone on the same LeadCenter account.
        case everyone
    }

    /// Whether `viewer` (a user of `viewerAccount`) may see what this connection imports.
    public func isVisible(to viewer: String, viewerAccount: String?) -> Bool {
        if viewer == userID { return true }
        return visibility == .everyone && (viewerAccount ?? accountID) == accountID
    }

    /// Creates a connection.
    public init(
        id: String, userID: String, provider: Provider, state: State = .active, stateReason: String? = nil, createdAt: Date,
        nextRetryAt: Date? = nil, failingSince: Date? = nil, accountType: String? = nil, accountID: String? = nil,
        visibility: Visibility = .onlyMe
    ) {
        self.accountID = accountID ?? userID
        self.visibility = visibility
        self.id = id
        self.userID = userID
        self.provider = provider
        self.state = state
        self.stateReason = stateReason
        self.createdAt = createdAt
        self.nextRetryAt = nextRetryAt
        self.failingSince = failingSince
        self.accountType = accountType
    }

    /// The health fields as a state-machine value.
    public var health: ConnectionHealth {
        ConnectionHealth(state: state, reason: stateReason, nextRetryAt: nextRetryAt, failingSince: failingSince)
    }
}

/// OAuth client and refresh token for a connection; the secrets are sealed (`SecretSealer`, context
/// `connection:<id>:client_secret` and `connection:<id>:refresh_token`).
@MemberwiseInit
public struct SealedCredentials: Sendable, Hashable {
    /// OAuth client id (not secret).
    public var clientID: String
    /// Sealed client secret.
    public var sealedClientSecret: [UInt8]
    /// Sealed refresh token.
    public var sealedRefreshToken: [UInt8]

    /// Whether `sealer` opens the refresh token (every provider seals it for `connection:<id>:refresh_token`): false
    /// means the key in use is not the one these were sealed with.
    public func opens(with sealer: any SecretSealer, connectionID: String) -> Bool {
        (try? sealer.open(sealedRefreshToken, context: "connection:\(connectionID):refresh_token")) != nil
    }
}

/// One provider calendar of a connection.
@MemberwiseInit
public struct ConnectionCalendar: Sendable, Hashable {
    /// The connection.
    public var connectionID: String
    /// The provider's calendar id.
    public var calendarID: String
    /// Display name.
    public var name: String
    /// Whether calgate syncs it.
    public var selected: Bool

    /// The key appointments, cursors and channels use.
    public var calendarKey: String { "\(connectionID)/\(calendarID)" }
}

/// A LeadCenter account's main Redtail integration: the CRM link calendar connections build on. The API key and
/// UserKey are sealed (contexts `redtail_integration:<account>:api_key` and `:user_key`); the password is never kept.
@MemberwiseInit
public struct RedtailIntegration: Sendable, Hashable {
    /// The LeadCenter account.
    public var accountID: String
    /// The account's type (only `financial_advisor` accounts have Redtail).
    public var accountType: String
    /// Redtail's user id for the UserKey, when it said.
    public var redtailUserID: String?
    /// Sealed partner API key.
    public var sealedAPIKey: [UInt8]
    /// Sealed UserKey.
    public var sealedUserKey: [UInt8]
    /// When it was connected.
    public var createdAt: Date
}

extension ConnectionCalendar {
    /// The connection and calendar ids of a calendar key (`<connection>/<calendar>`; calendar ids may contain `/`),
    /// or nil when it has no `/`.
    public static func parts(of calendarKey: String) -> (connectionID: String, calendarID: String)? {
        guard let slash = calendarKey.firstIndex(of: "/") else { return nil }
        return (String(calendarKey[..<slash]), String(calendarKey[calendarKey.index(after: slash)...]))
    }
}

extension ConnectionStore {
    /// What a sync of `calendarKey` works on: its connection, which must exist and be syncing (else `SyncFailure`),
    /// and the calendar, nil when it is no longer selected (nothing to sync).
    public func syncTarget(calendarKey: String) async throws -> (connection: Connection, calendar: ConnectionCalendar?) {
        guard let (connectionID, calendarID) = ConnectionCalendar.parts(of: calendarKey) else {
            throw SyncFailure(kind: .failed, message: "\(calendarKey) is not <connection>/<calendar>")
        }
        guard let connection = try await connection(id: connectionID) else {
            throw SyncFailure(kind: .failed, message: "connection \(connectionID) no longer exists")
        }
        guard connection.state.syncs else {
            throw SyncFailure(kind: .needsReconnect, message: connection.stateReason ?? "the connection needs to be reconnected")
        }
        let calendar = try await calendars(connectionID: connectionID).first { $0.calendarID == calendarID && $0.selected }
        return (connection, calendar)
    }
}
