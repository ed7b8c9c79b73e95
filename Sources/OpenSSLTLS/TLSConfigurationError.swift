import CalgateMacros

/// A certificate or key problem at start-up or reload, naming the file and what is wrong with it.
///
/// For example `certs/server.key: private key does not match the certificate in certs/server.pem`.
@MemberwiseInit
public struct TLSConfigurationError: Error, CustomStringConvertible, Sendable, Hashable {
    /// The file at fault.
    public let file: String
    /// What is wrong, and what to do about it.
    public let problem: String

    /// `file: problem`.
    public var description: String { "\(file): \(problem)" }
}
