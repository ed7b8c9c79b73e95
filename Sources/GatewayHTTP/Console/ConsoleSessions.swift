import Foundation
import GatewayCore
import Synchronization

/// The console's server-side sessions and one-time login codes.
///
/// A session id is 256 random bits (the `__Host-calgate_session` cookie); its CSRF token is another 256 bits that
/// every state-changing form sends back. Sessions expire `sessionLifetime` after login (no sliding renewal) and end at
/// logout; they live in memory, so a restart logs everyone out. A login code is minted by a caller holding the admin
/// token (`POST /admin/api/login-codes`), lives `codeLifetime`, and is good for one exchange.
public final class ConsoleSessions: Sendable {
    /// One logged-in browser.
    public struct Session: Sendable, Hashable {
        /// The cookie value.
        public var id: String
        /// What forms must echo.
        public var csrfToken: String
        /// When it stops being accepted.
        public var expiresAt: Date
    }

    private struct State {
        var sessions: [String: Session] = [:]
        var codes: [String: Date] = [:]
    }

    /// How long a session lasts.
    public let sessionLifetime: TimeInterval
    /// How long a login code can be exchanged.
    public let codeLifetime: TimeInterval
    /// Most sessions kept at once (the oldest go first), so logins cannot grow memory without bound.
    let maximumSessions: Int
    private let clock: any GatewayClock
    private let state = Mutex(State())

    /// Creates an empty session store.
    public init(clock: any GatewayClock, sessionLifetime: TimeInterval = 8 * 3600, codeLifetime: TimeInterval = 60, maximumSessions: Int = 256) {
        self.clock = clock
        self.sessionLifetime = sessionLifetime
        self.codeLifetime = codeLifetime
        self.maximumSessions = maximumSessions
    }

    /// 32 random bytes, hex.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        for _ in 0..<4 { text += String(format: "%016llx", generator.next() as UInt64) }
        return text
    }

    /// Starts a session.
    public func create() -> Session {
        let now = clock.now()
        let session = Session(id: Self.randomToken(), csrfToken: Self.randomToken(), expiresAt: now.addingTimeInterval(sessionLifetime))
        let limit = maximumSessions
        state.withLock { state in
            state.sessions = state.sessions.filter { $0.value.expiresAt > now }
            if state.sessions.count >= limit, let oldest = state.sessions.values.min(by: { $0.expiresAt < $1.expiresAt }) {
                state.sessions[oldest.id] = nil
            }
            state.sessions[session.id] = session
        }
        return session
    }

    /// The live session with this id, or nil (unknown, expired or logged out).
    public func session(id: String) -> Session? {
        let now = clock.now()
        return state.withLock { state in
            guard let session = state.sessions[id] else { return nil }
            guard session.expiresAt > now else {
                state.sessions[id] = nil
                return nil
            }
            return session
        }
    }

    /// Ends a session (logout, disconnect of the operator).
    public func end(id: String) {
        _ = state.withLock { $0.sessions.removeValue(forKey: id) }
    }

    /// Mints a one-time login code.
    public func issueCode() -> (code: String, expiresAt: Date) {
        let now = clock.now()
        let code = Self.randomToken()
        let expiry = now.addingTimeInterval(codeLifetime)
        state.withLock { state in
            state.codes = state.codes.filter { $0.value > now }
            state.codes[code] = expiry
        }
        return (code, expiry)
    }

    /// Uses up a login code; true when it was live.
    public func redeem(code: String) -> Bool {
        let now = clock.now()
        return state.withLock { state in
            guard let expiry = state.codes.removeValue(forKey: code) else { return false }
            return expiry > now
        }
    }
}
