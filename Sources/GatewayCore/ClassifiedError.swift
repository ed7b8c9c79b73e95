import CalgateMacros

/// A failure classified the way the caller acts on it: a kind (what to do next) and a message for logs and the API
/// (never a token, a password or a body).
///
/// The one shape every provider client's error and the scheduler's `SyncFailure` share; each names its own `Kind`.
@MemberwiseInit
public struct ClassifiedError<Kind: Sendable & Hashable>: Error, Sendable, CustomStringConvertible {
    /// The class.
    public let kind: Kind
    /// Details, never secrets.
    public let message: String

    /// `kind: message`.
    public var description: String { "\(kind): \(message)" }
}
