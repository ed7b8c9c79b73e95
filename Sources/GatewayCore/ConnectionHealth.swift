import CalgateMacros
import Foundation
import Synchronization

/// Where a connection stands, as a pure state machine: `active`, `degraded` (sync or renewal failing, with the next
/// retry time), `needs_reconnect` (the provider refused the credentials, with the reason) and `disconnected`.
///
/// Stepped by events; the store keeps the result on the connection row, the API shows it per connection and
/// `/admin/health` summarises it.
@MemberwiseInit
public struct ConnectionHealth: Sendable, Hashable {
    /// What happened to the connection.
    public enum Event: Sendable, Hashable {
        /// A sync or a renewal worked.
        case succeeded
        /// A sync or a renewal failed in a way retrying may fix; the next attempt is at `nextRetryAt`.
        case failed(reason: String, nextRetryAt: Date, at: Date)
        /// The provider refused the credentials (revoked, expired, MFA required, account locked).
        case credentialsRefused(reason: String)
        /// The user disconnected the account.
        case disconnected
        /// The user connected the account again with fresh credentials.
        case reconnected
    }

    /// The state.
    public var state: Connection.State = .active
    /// Why it is not `active`, in words for the user (never a secret).
    public var reason: String? = nil
    /// For `degraded`: when the next attempt runs.
    public var nextRetryAt: Date? = nil
    /// For `degraded`: when the failures began (kept across repeated failures).
    public var failingSince: Date? = nil

    /// The state after `event`. `disconnected` leaves only by `reconnected`; `needs_reconnect` ignores sync results
    /// (nothing runs until the user acts).
    public func applying(_ event: Event) -> ConnectionHealth {
        switch (state, event) {
        case (.disconnected, .reconnected), (.needsReconnect, .reconnected):
            return ConnectionHealth()
        case (.disconnected, _):
            return self
        case (_, .disconnected):
            return ConnectionHealth(state: .disconnected, reason: "disconnected by the user")
        case (_, .credentialsRefused(let reason)):
            return ConnectionHealth(state: .needsReconnect, reason: reason)
        case (.needsReconnect, _):
            return self
        case (_, .reconnected), (_, .succeeded):
            return ConnectionHealth()
        case (.degraded, .failed(let reason, let retry, _)):
            return ConnectionHealth(state: .degraded, reason: reason, nextRetryAt: retry, failingSince: failingSince)
        case (.active, .failed(let reason, let retry, let at)):
            return ConnectionHealth(state: .degraded, reason: reason, nextRetryAt: retry, failingSince: at)
        }
    }
}

/// Where sync and renewal report outcomes per connection.
public protocol ConnectionHealthRecording: Sendable {
    /// Applies `event` to the connection's health and stores the result when it changed.
    func record(connectionID: String, _ event: ConnectionHealth.Event) async
}

/// Records health on the connection rows of a `ConnectionStore`, remembering the last state it wrote so the common
/// case (success on a healthy connection) costs no write.
public final class StoreConnectionHealthRecorder: ConnectionHealthRecording {
    let store: any ConnectionStore
    private let known = Mutex<[String: ConnectionHealth]>([:])

    /// Creates a recorder.
    public init(store: any ConnectionStore) {
        self.store = store
    }

    /// Applies the event; store errors are swallowed (health is advisory and the next event retries the write).
    public func record(connectionID: String, _ event: ConnectionHealth.Event) async {
        do {
            let current: ConnectionHealth
            if let cached = known.withLock({ $0[connectionID] }) {
                current = cached
            } else {
                guard let connection = try await store.connection(id: connectionID) else { return }
                current = connection.health
            }
            let next = current.applying(event)
            guard next != current else { return }
            // Re-read before writing: the user (or another path) may have changed the state meanwhile.
            guard let connection = try await store.connection(id: connectionID) else { return }
            let fresh = connection.health.applying(event)
            try await store.setConnectionHealth(id: connectionID, fresh)
            known.withLock { $0[connectionID] = fresh }
        } catch {
            known.withLock { $0[connectionID] = nil }
        }
    }

    /// Forgets the cached state of `connectionID` (after a change made elsewhere).
    public func invalidate(_ connectionID: String) {
        _ = known.withLock { $0.removeValue(forKey: connectionID) }
    }
}
