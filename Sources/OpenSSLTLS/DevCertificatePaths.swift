/// Where `DevCertificateAuthority.generate` wrote its files.
public struct DevCertificatePaths: Sendable, Hashable {
    /// The dev CA certificate: the trust root to give clients and simulators.
    public let caCertificate: String
    /// The dev CA private key (mode 0600).
    public let caKey: String
    /// The server certificate chain: the leaf, then the CA.
    public let serverCertificate: String
    /// The server private key (mode 0600).
    public let serverKey: String
}
