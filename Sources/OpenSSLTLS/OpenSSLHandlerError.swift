/// Why `OpenSSLServerHandler` ended a connection or failed a write.
///
/// Fired down the pipeline with `fireErrorCaught` for protocol errors after the handshake, and used to fail the
/// promises of writes that can no longer be sent. Handshake failures are otherwise only counted
/// (`TLSServerContext.handshakeFailures`), because scanners and old clients cause them all day.
/// Compare with the static members (`error == .protocolError`); equality ignores `reason`.
public struct OpenSSLHandlerError: Error, CustomStringConvertible, Sendable, Hashable {
    private enum Code: Hashable, Sendable {
        case cannotCreateSession
        case handshakeFailed
        case handshakeTimedOut
        case protocolError
    }

    private let code: Code
    /// OpenSSL's reason strings, for logs (never key material).
    public let reason: String

    private init(_ code: Code, reason: String) {
        self.code = code
        self.reason = reason
    }

    /// OpenSSL could not allocate a session for the connection.
    public static let cannotCreateSession = OpenSSLHandlerError(.cannotCreateSession, reason: "")
    /// The handshake was refused (protocol version, cipher suites) or malformed.
    public static let handshakeFailed = OpenSSLHandlerError(.handshakeFailed, reason: "")
    /// The client did not finish its handshake within `TLSServerConfiguration.handshakeTimeout`.
    public static let handshakeTimedOut = OpenSSLHandlerError(.handshakeTimedOut, reason: "")
    /// A record could not be decrypted or the peer broke the protocol after the handshake.
    public static let protocolError = OpenSSLHandlerError(.protocolError, reason: "")

    /// The same kind of error with OpenSSL's reason attached.
    func with(reason: String) -> OpenSSLHandlerError { OpenSSLHandlerError(code, reason: reason) }

    /// Same kind of failure (the reason text is not compared).
    public static func == (lhs: OpenSSLHandlerError, rhs: OpenSSLHandlerError) -> Bool { lhs.code == rhs.code }

    /// Hashes the kind only, consistent with `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// A message for logs.
    public var description: String {
        let what: String
        switch code {
        case .cannotCreateSession: what = "TLS session could not be created"
        case .handshakeFailed: what = "TLS handshake failed"
        case .handshakeTimedOut: what = "TLS handshake timed out"
        case .protocolError: what = "TLS protocol error"
        }
        return reason.isEmpty ? what : "\(what): \(reason)"
    }
}
