import COpenSSL

/// A TLS protocol version the test client can pin.
public enum TLSTestProtocolVersion: Int32, Sendable, Comparable, CaseIterable {
    /// TLS 1.0 (refused by calgate; offering it needs security level 0, which the client sets itself).
    case tls1_0 = 0x0301
    /// TLS 1.1 (refused by calgate; see `tls1_0`).
    case tls1_1 = 0x0302
    /// TLS 1.2.
    case tls1_2 = 0x0303
    /// TLS 1.3.
    case tls1_3 = 0x0304

    /// Orders by protocol version.
    public static func < (lhs: TLSTestProtocolVersion, rhs: TLSTestProtocolVersion) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// How `TLSTestClient.connect` sets up its connection.
public struct TLSTestClientOptions: Sendable {
    /// Lowest version offered. Below TLS 1.2 the client drops to OpenSSL security level 0 (`@SECLEVEL=0`), without
    /// which OpenSSL 3 will not offer TLS 1.0/1.1 at all.
    public var minimumVersion: TLSTestProtocolVersion
    /// Highest version offered.
    public var maximumVersion: TLSTestProtocolVersion
    /// TLS 1.2 (and older) cipher list in OpenSSL syntax, in preference order, e.g. `"AES128-SHA:ECDHE-RSA-AES128-SHA256"`;
    /// nil for OpenSSL's default.
    public var tls12Ciphers: String?
    /// TLS 1.3 suites in OpenSSL syntax, in preference order, e.g. `"TLS_AES_128_GCM_SHA256"`; nil for the default.
    public var tls13Ciphersuites: String?
    /// ALPN protocols offered, in preference order; empty sends no ALPN extension.
    public var alpnProtocols: [String]
    /// Verify the server's chain against this PEM CA file; nil accepts any certificate.
    public var caFile: String?
    /// DNS name or IP literal the certificate must match (checked only with `caFile`).
    public var expectedHostname: String?
    /// SNI sent; nil sends `expectedHostname` when that is a DNS name.
    public var serverName: String?
    /// A session from an earlier connection, to resume.
    public var session: TLSTestSession?
    /// Split every socket write (the ClientHello included) into TCP sends of this many bytes: a fragmenting or
    /// trickling client. nil sends each flight in one go.
    public var fragmentSize: Int?
    /// Limit for the TCP connect.
    public var connectTimeout: Duration
    /// Limit for the handshake.
    public var handshakeTimeout: Duration
    /// Default limit for each read and write afterwards.
    public var ioTimeout: Duration

    /// Creates options; the defaults offer TLS 1.2–1.3 with OpenSSL's default suites, no ALPN, no verification.
    public init(
        minimumVersion: TLSTestProtocolVersion = .tls1_2, maximumVersion: TLSTestProtocolVersion = .tls1_3,
        tls12Ciphers: String? = nil, tls13Ciphersuites: String? = nil, alpnProtocols: [String] = [],
        caFile: String? = nil, expectedHostname: String? = nil, serverName: String? = nil, session: TLSTestSession? = nil,
        fragmentSize: Int? = nil, connectTimeout: Duration = .seconds(5), handshakeTimeout: Duration = .seconds(5), ioTimeout: Duration = .seconds(5)
    ) {
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.tls12Ciphers = tls12Ciphers
        self.tls13Ciphersuites = tls13Ciphersuites
        self.alpnProtocols = alpnProtocols
        self.caFile = caFile
        self.expectedHostname = expectedHostname
        self.serverName = serverName
        self.session = session
        self.fragmentSize = fragmentSize
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.ioTimeout = ioTimeout
    }
}
