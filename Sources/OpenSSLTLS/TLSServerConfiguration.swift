import CalgateMacros
import NIOCore

/// Certificate files and handshake settings for `TLSServerContext`.
@MemberwiseInit
public struct TLSServerConfiguration: Sendable {
    /// PEM certificate chain: the leaf first, then intermediates.
    public var certificateChainPath: String
    /// PEM private key (EC or RSA, unencrypted).
    public var privateKeyPath: String
    /// ALPN protocols the server accepts, in the server's order of preference.
    public var alpnProtocols: [String] = ["http/1.1"]
    /// Session tickets and the server session cache; `false` turns both off so every handshake is a full one.
    public var sessionResumption: Bool = true
    /// A client that has not finished its handshake by then is disconnected.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// After the server's close_notify and FIN, how long a closing connection waits for the client to close its side,
    /// reading and dropping what it still sends (a lingering close); zero closes at once.
    public var lingerTimeout: TimeAmount = .seconds(2)
}
