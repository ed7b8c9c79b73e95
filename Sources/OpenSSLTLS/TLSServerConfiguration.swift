import Foundation
import NIOCore

/// Certificate files and handshake settings for `TLSServerContext`.
public struct TLSServerConfiguration: Sendable {
    /// PEM certificate chain: the leaf first, then intermediates.
    public var certificateChainPath: String
    /// PEM private key (EC or RSA).
    public var privateKeyPath: String
    /// ALPN protocols the server accepts, in preference order.
    public var alpnProtocols: [String]
    /// Session tickets and the session cache; off to measure full handshakes.
    public var sessionResumption: Bool
    /// A client that has not finished its handshake by then is cut.
    public var handshakeTimeout: TimeAmount

    /// Creates a configuration.
    public init(
        certificateChainPath: String, privateKeyPath: String, alpnProtocols: [String] = ["http/1.1"],
        sessionResumption: Bool = true, handshakeTimeout: TimeAmount = .seconds(10)
    ) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.alpnProtocols = alpnProtocols
        self.sessionResumption = sessionResumption
        self.handshakeTimeout = handshakeTimeout
    }
}

/// What the served certificate is.
public struct TLSCertificateInfo: Sendable, Hashable {
    /// Subject in OpenSSL's one-line form.
    public let subject: String
    /// End of validity.
    public let notAfter: Date
    /// SHA-256 of the DER certificate, lower-case hex.
    public let sha256Fingerprint: String
}

/// Fired as a user inbound event once a handshake completes.
public struct TLSHandshakeCompletedEvent: Sendable, Hashable {
    /// `TLSv1.3` or `TLSv1.2`.
    public let protocolVersion: String
    /// OpenSSL cipher name.
    public let cipher: String
    /// The ALPN protocol agreed, if any.
    public let negotiatedALPN: String?
}
