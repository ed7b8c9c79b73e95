import CalgateMacros

/// Fired as a user inbound event by `OpenSSLServerHandler` once a handshake completes.
@MemberwiseInit
public struct TLSHandshakeCompletedEvent: Sendable, Hashable {
    /// `TLSv1.3` or `TLSv1.2`.
    public let protocolVersion: String
    /// OpenSSL's name of the negotiated cipher, e.g. `TLS_AES_256_GCM_SHA384` or `ECDHE-ECDSA-AES128-GCM-SHA256`.
    public let cipher: String
    /// The ALPN protocol agreed, or nil when the client offered none we support (or no ALPN at all).
    public let negotiatedALPN: String?
}
