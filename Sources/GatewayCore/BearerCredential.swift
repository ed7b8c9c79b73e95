import Foundation

/// A static bearer token (admin or API) with an optional expiry, checked in constant time.
///
/// Missing, malformed, wrong and expired tokens all go through the same full-length comparison, so the time an
/// answer takes says nothing about how much of a guess was right. Expiry is checked only after the comparison,
/// and only reported to a caller that presented the right token (who learns nothing new from it).
public struct BearerCredential: Sendable, Hashable {
    /// What a presented `Authorization` header amounts to.
    public enum Verdict: String, Sendable, Hashable {
        /// The right token, not expired.
        case accepted
        /// No `Authorization: Bearer` header.
        case missing
        /// A token other than this one.
        case wrong
        /// This token, past its expiry.
        case expired
    }

    /// The token.
    public let token: String
    /// When it stops being accepted; nil: never.
    public let expiresAt: Date?

    /// Creates a credential.
    public init(token: String, expiresAt: Date? = nil) {
        self.token = token
        self.expiresAt = expiresAt
    }

    /// Checks an `Authorization` header value at `now`.
    public func check(authorization: String?, now: Date) -> Verdict {
        let prefix = "bearer "
        var presented: Substring = ""
        var wellFormed = false
        if let authorization, authorization.utf8.count > prefix.utf8.count, authorization.prefix(prefix.count).lowercased() == prefix {
            presented = authorization.dropFirst(prefix.count)
            wellFormed = true
        }
        // Always compare, even with nothing presented, so a missing header costs what a wrong one does.
        let matches = ConstantTime.equals(presented.utf8, token.utf8)
        guard wellFormed else { return .missing }
        guard matches, !token.isEmpty else { return .wrong }
        if let expiresAt, now >= expiresAt { return .expired }
        return .accepted
    }
}
