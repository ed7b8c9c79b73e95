import CalgateMacros
import Foundation

/// What the served leaf certificate is: for logs, the admin page and expiry warnings.
@MemberwiseInit
public struct TLSCertificateInfo: Sendable, Hashable {
    /// Subject distinguished name in RFC 2253 form, e.g. `CN=calgate dev server,O=calgate development`.
    public let subject: String
    /// End of validity. An expired certificate still loads (clients decide); compare this with the clock to warn.
    public let notAfter: Date
    /// SHA-256 of the DER certificate, lower-case hex without separators.
    public let sha256Fingerprint: String

    /// Whether the certificate is past its `notAfter` at `date`.
    public func isExpired(at date: Date = Date()) -> Bool { notAfter <= date }
}
