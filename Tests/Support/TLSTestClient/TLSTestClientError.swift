/// Why a `TLSTestClient` or `RawTCPConnection` operation failed, with a message that says what happened.
///
/// Compare with the static members (`error == .handshakeFailed`); equality ignores the message.
public struct TLSTestClientError: Error, CustomStringConvertible, Sendable, Hashable {
    private enum Code: Hashable, Sendable {
        case invalidOptions
        case connectFailed
        case handshakeFailed
        case timedOut
        case connectionClosed
        case ioFailed
    }

    private let code: Code
    /// What happened, including OpenSSL's reason strings or the certificate verification error.
    public let message: String

    private init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// OpenSSL refused an option (an unknown cipher name, an unreadable CA file).
    public static let invalidOptions = TLSTestClientError(.invalidOptions, "")
    /// The TCP connection could not be made.
    public static let connectFailed = TLSTestClientError(.connectFailed, "")
    /// The handshake failed: an alert from the server, a certificate that did not verify, or a disconnect.
    public static let handshakeFailed = TLSTestClientError(.handshakeFailed, "")
    /// Nothing arrived (or could be sent) before the deadline.
    public static let timedOut = TLSTestClientError(.timedOut, "")
    /// The peer closed the connection before the operation could finish.
    public static let connectionClosed = TLSTestClientError(.connectionClosed, "")
    /// A socket or TLS error after the handshake.
    public static let ioFailed = TLSTestClientError(.ioFailed, "")

    func with(_ message: String) -> TLSTestClientError { TLSTestClientError(code, message) }

    /// Same kind of failure (the message is not compared).
    public static func == (lhs: TLSTestClientError, rhs: TLSTestClientError) -> Bool { lhs.code == rhs.code }

    /// Hashes the kind only, consistent with `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// The message, prefixed with the kind.
    public var description: String {
        let kind: String
        switch code {
        case .invalidOptions: kind = "invalid options"
        case .connectFailed: kind = "connect failed"
        case .handshakeFailed: kind = "TLS handshake failed"
        case .timedOut: kind = "timed out"
        case .connectionClosed: kind = "connection closed"
        case .ioFailed: kind = "I/O failed"
        }
        return message.isEmpty ? kind : "\(kind): \(message)"
    }
}
