import Foundation

/// One user's sign-in to connect (or reconnect) a calendar: created by `POST /api/v1/connections/authorizations`,
/// finished by the provider's callback. Pending until then, connected or failed after; the `state` it hands out is
/// single use and lives ten minutes.
///
/// The transitions are plain mutating functions that do no I/O and return what to do next, so tests step them
/// one event at a time with a test clock; the store keeps the row and claims `state` in one statement.
public struct SignInAuthorization: Sendable, Hashable {
    /// Where a sign-in stands.
    public enum Status: String, Sendable, Hashable, CaseIterable {
        /// Waiting for the user to consent.
        case pending
        /// The connection was made (or reconnected).
        case connected
        /// It ended without a connection; `failure` says why.
        case failed
    }

    /// How long a `state` is accepted.
    public static let lifetime: TimeInterval = 600
    /// How long a sign-in is kept for LeadCenter to read its result; older ones are removed as new ones start.
    public static let retention: TimeInterval = 7 * 86_400

    /// `au_` and 32 hex digits; what LeadCenter polls.
    public var id: String
    /// The provider signed in to.
    public var provider: Provider
    /// The LeadCenter user the connection is for.
    public var userID: String
    /// The LeadCenter account, when given.
    public var accountID: String?
    /// The visibility the new connection gets.
    public var visibility: Connection.Visibility
    /// The connection to reconnect, for a reconnect; nil for a new connection.
    public var reconnectConnectionID: String?
    /// The `state` parameter sent in the consent URL (random, single use).
    public var state: String
    /// The PKCE verifier, sealed for `sealingContext` (never stored or logged in the clear).
    public var sealedVerifier: [UInt8]
    /// Where it stands.
    public var status: Status
    /// Why it failed (set with `.failed`).
    public var failure: SignInFailure?
    /// The connection made or reconnected (set with `.connected`).
    public var connectionID: String?
    /// When it was created.
    public var createdAt: Date
    /// After this instant its `state` is refused.
    public var expiresAt: Date
    /// When the callback claimed its `state` (at most once).
    public var claimedAt: Date?
    /// When it became connected or failed.
    public var finishedAt: Date?

    /// A new pending sign-in expiring `lifetime` after `now`.
    public init(
        id: String, provider: Provider, userID: String, accountID: String? = nil, visibility: Connection.Visibility = .onlyMe,
        reconnectConnectionID: String? = nil, state: String, sealedVerifier: [UInt8], now: Date
    ) {
        self.id = id
        self.provider = provider
        self.userID = userID
        self.accountID = accountID
        self.visibility = visibility
        self.reconnectConnectionID = reconnectConnectionID
        self.state = state
        self.sealedVerifier = sealedVerifier
        status = .pending
        createdAt = now
        expiresAt = now.addingTimeInterval(Self.lifetime)
    }

    /// What the verifier is sealed for: bound to this authorization and its `state`, so a sealed verifier copied
    /// to another row does not open.
    public static func sealingContext(id: String, state: String) -> String { "sign_in:\(id):\(state):code_verifier" }

    /// The sealing context of this row's verifier.
    public var sealingContext: String { Self.sealingContext(id: id, state: state) }

    /// The status as of `now`: a pending sign-in past its expiry reads as failed (`expired`) without a write.
    public func current(now: Date) -> (status: Status, failure: SignInFailure?) {
        if status == .pending, now >= expiresAt {
            return (.failed, Self.expiredFailure)
        }
        return (status, failure)
    }

    static let expiredFailure = SignInFailure(
        .expired, "the sign-in was not completed within 10 minutes; start a new sign-in"
    )

    // MARK: Transitions

    /// What the callback does next.
    public enum CallbackAction: Sendable, Hashable {
        /// Exchange this code at the token endpoint, with the verifier.
        case exchange(code: String)
        /// The sign-in ended here (failed): record it and report it.
        case finished
        /// The `state` was used before: answer without changing anything.
        case refuseReplay
    }

    /// The provider's callback arrived with this row's `state`. `claimed` is whether this request won the store's
    /// single-use claim (a second request with the same `state` did not); `code`, `error` and `errorDescription`
    /// are the callback's query parameters (the description is not repeated: it is text anyone can put in a URL).
    public mutating func callback(claimed: Bool, code: String?, error: String?, errorDescription: String?, now: Date) -> CallbackAction {
        guard claimed, status == .pending else { return .refuseReplay }
        if now >= expiresAt {
            fail(Self.expiredFailure, now: now)
            return .finished
        }
        if let error {
            // The query comes through the user's browser: only a well-formed error code is repeated, never the
            // free-text description.
            if error == "access_denied" {
                fail(SignInFailure(.accessDenied, "the user declined to give calgate access to the calendar"), now: now)
            } else {
                let code = SignInFailure.errorCode(error) ?? "an unreadable error"
                fail(SignInFailure(.providerError, "\(provider.displayName) ended the sign-in with \(code); start a new sign-in"), now: now)
            }
            return .finished
        }
        guard let code, !code.isEmpty else {
            fail(SignInFailure(.missingCode, "\(provider.displayName) sent no authorization code back; start a new sign-in"), now: now)
            return .finished
        }
        return .exchange(code: code)
    }

    /// What happens after the exchange.
    public enum ExchangeAction: Sendable, Hashable {
        /// Run today's connect (or reconnect) path with these fields.
        case connect(fields: [String: String])
        /// The sign-in ended here (failed).
        case finished
    }

    /// The token endpoint answered (or could not be reached: a failure).
    public mutating func exchanged(_ result: Result<[String: String], SignInFailure>, now: Date) -> ExchangeAction {
        guard status == .pending else { return .finished }
        switch result {
        case .success(let fields): return .connect(fields: fields)
        case .failure(let failure):
            fail(failure, now: now)
            return .finished
        }
    }

    /// The connect path made (or reconnected) `connectionID`.
    public mutating func connected(connectionID: String, now: Date) {
        guard status == .pending else { return }
        status = .connected
        self.connectionID = connectionID
        finishedAt = now
    }

    /// It ended without a connection.
    public mutating func fail(_ failure: SignInFailure, now: Date) {
        guard status == .pending else { return }
        status = .failed
        self.failure = failure
        finishedAt = now
    }
}

/// What the store answered to a claim of a `state`.
public enum SignInStateClaim: Sendable, Hashable {
    /// No sign-in has this `state`.
    case unknown
    /// This request claimed it (the row as it was, claim time set).
    case claimed(SignInAuthorization)
    /// Another request claimed it before.
    case alreadyClaimed(SignInAuthorization)
}

/// Where pending and finished sign-ins are kept.
public protocol SignInStore: Sendable {
    /// Inserts a new sign-in.
    func createSignInAuthorization(_ authorization: SignInAuthorization) async throws
    /// A sign-in by id.
    func signInAuthorization(id: String) async throws -> SignInAuthorization?
    /// Claims `state` for one request, in one statement so two concurrent callbacks cannot both win.
    func claimSignInState(_ state: String, at now: Date) async throws -> SignInStateClaim
    /// Records the end of a sign-in (`status`, `failure`, `connectionID`, `finishedAt`) if it is still pending;
    /// false when it was not.
    func finishSignInAuthorization(_ authorization: SignInAuthorization) async throws -> Bool
    /// Removes sign-ins created before `cutoff`; how many.
    func deleteSignInAuthorizations(createdBefore cutoff: Date) async throws -> Int
}
