import COpenSSL
import Foundation
import NIOCore
import Synchronization

/// Owns one configured `SSL_CTX`; freed when the last handler and the context let go of it.
final class SSLContextBox: @unchecked Sendable {
    // @unchecked: an SSL_CTX is safe to share once configured (OpenSSL locks its internals); we never mutate it after init.
    let ctx: OpaquePointer
    let info: TLSCertificateInfo
    /// ALPN protocols in wire format, read by the select callback through its `arg` pointer.
    let alpnWire: UnsafeMutableBufferPointer<UInt8>

    init(ctx: OpaquePointer, info: TLSCertificateInfo, alpnWire: UnsafeMutableBufferPointer<UInt8>) {
        self.ctx = ctx
        self.info = info
        self.alpnWire = alpnWire
    }

    deinit {
        SSL_CTX_free(ctx)
        alpnWire.deallocate()
    }
}

/// The server's TLS configuration on OpenSSL 3: TLS 1.2–1.3, ECDHE+AEAD suites, ALPN, reloadable certificate.
///
/// `reload()` swaps the `SSL_CTX`; connections already open keep the one their `SSL` object references, new
/// handshakes use the new one.
public final class TLSServerContext: Sendable {
    /// Only forward-secret AEAD suites for TLS 1.2; TLS 1.3 suites are all AEAD and keep OpenSSL's defaults.
    static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    private let configuration: TLSServerConfiguration
    private let current: Mutex<SSLContextBox>
    private let completed = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)

    /// Loads and checks the certificate and key; throws `TLSConfigurationError` naming the file at fault.
    public init(configuration: TLSServerConfiguration) throws {
        self.configuration = configuration
        self.current = Mutex(try Self.makeContext(configuration))
    }

    /// Re-reads the files; on failure keeps the current certificate and throws.
    public func reload() throws {
        let box = try Self.makeContext(configuration)
        current.withLock { $0 = box }
    }

    /// The certificate new handshakes present.
    public var certificateInfo: TLSCertificateInfo { current.withLock { $0.info } }
    /// Handshakes completed since start.
    public var handshakesCompleted: Int { completed.load(ordering: .relaxed) }
    /// Handshakes that failed (refused protocol or suite, bad data, timeout, disconnect before completion).
    public var handshakeFailures: Int { failed.load(ordering: .relaxed) }
    /// How long a handshake may take.
    public var handshakeTimeout: TimeAmount { configuration.handshakeTimeout }

    func recordHandshake(success: Bool) {
        if success {
            completed.wrappingAdd(1, ordering: .relaxed)
        } else {
            failed.wrappingAdd(1, ordering: .relaxed)
        }
    }

    var contextBox: SSLContextBox { current.withLock { $0 } }

    /// A handler for one new connection, on the current certificate.
    public func makeServerHandler() -> OpenSSLServerHandler {
        OpenSSLServerHandler(context: self, box: contextBox)
    }

    // MARK: Building an SSL_CTX

    static func makeContext(_ configuration: TLSServerConfiguration) throws -> SSLContextBox {
        ERR_clear_error()
        try checkReadable(configuration.certificateChainPath, what: "certificate")
        try checkReadable(configuration.privateKeyPath, what: "private key")
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw TLSConfigurationError(file: configuration.certificateChainPath, problem: "OpenSSL could not create a context: \(drainOpenSSLErrors())")
        }
        var handedOver = false
        defer { if !handedOver { SSL_CTX_free(ctx) } }

        guard calgate_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1,
              calgate_SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1,
              SSL_CTX_set_cipher_list(ctx, tls12Ciphers) == 1,
              calgate_SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") == 1
        else {
            throw TLSConfigurationError(file: configuration.certificateChainPath, problem: "OpenSSL refused the protocol settings: \(drainOpenSSLErrors())")
        }
        var options = calgate_SSL_OP_NO_COMPRESSION() | calgate_SSL_OP_NO_RENEGOTIATION()
            | calgate_SSL_OP_CIPHER_SERVER_PREFERENCE() | calgate_SSL_OP_NO_SSL_MASK()
        if !configuration.sessionResumption { options |= calgate_SSL_OP_NO_TICKET() }
        _ = SSL_CTX_set_options(ctx, options)
        _ = calgate_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        if configuration.sessionResumption {
            _ = calgate_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_SERVER))
            let sessionContext: [UInt8] = Array("calgate".utf8)
            _ = SSL_CTX_set_session_id_context(ctx, sessionContext, UInt32(sessionContext.count))
        } else {
            _ = calgate_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
            _ = SSL_CTX_set_num_tickets(ctx, 0)
        }

        guard SSL_CTX_use_certificate_chain_file(ctx, configuration.certificateChainPath) == 1 else {
            throw TLSConfigurationError(
                file: configuration.certificateChainPath,
                problem: "is not a PEM certificate chain (\(drainOpenSSLErrors())); expected the leaf certificate first, then intermediates"
            )
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, configuration.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            let reason = drainOpenSSLErrors()
            if reason.contains("values mismatch") || reason.contains("key values mismatch") {
                throw TLSConfigurationError(
                    file: configuration.privateKeyPath,
                    problem: "private key does not match the certificate in \(configuration.certificateChainPath)"
                )
            }
            throw TLSConfigurationError(file: configuration.privateKeyPath, problem: "is not a PEM private key (\(reason)); an encrypted key is not supported")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            _ = drainOpenSSLErrors()
            throw TLSConfigurationError(
                file: configuration.privateKeyPath,
                problem: "private key does not match the certificate in \(configuration.certificateChainPath)"
            )
        }
        guard let leaf = SSL_CTX_get0_certificate(ctx) else {
            throw TLSConfigurationError(file: configuration.certificateChainPath, problem: "holds no certificate")
        }
        let info = certificateInfo(leaf)

        // Zero-terminated so the C callback can find the end without a length.
        let wire = alpnWireFormat(configuration.alpnProtocols) + [0]
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: wire.count)
        _ = buffer.initialize(from: wire)
        SSL_CTX_set_alpn_select_cb(ctx, alpnSelect, UnsafeMutableRawPointer(buffer.baseAddress))
        ERR_clear_error()
        handedOver = true
        return SSLContextBox(ctx: ctx, info: info, alpnWire: buffer)
    }

    static func checkReadable(_ path: String, what: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TLSConfigurationError(file: path, problem: "\(what) file does not exist")
        }
        guard !isDirectory.boolValue else {
            throw TLSConfigurationError(file: path, problem: "is a directory, not a \(what) file")
        }
        guard FileManager.default.isReadableFile(atPath: path), FileManager.default.contents(atPath: path) != nil else {
            throw TLSConfigurationError(file: path, problem: "\(what) file cannot be read; check its permissions")
        }
    }

    static func alpnWireFormat(_ protocols: [String]) -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols where !name.isEmpty && name.utf8.count < 256 {
            wire.append(UInt8(name.utf8.count))
            wire += Array(name.utf8)
        }
        return wire
    }

    static func certificateInfo(_ certificate: OpaquePointer) -> TLSCertificateInfo {
        var subject = "unknown"
        if let name = X509_get_subject_name(certificate), let line = X509_NAME_oneline(name, nil, 0) {
            subject = String(cString: line)
            CRYPTO_free(line, #fileID, #line)
        }
        var notAfter = Date.distantPast
        if let time = X509_get0_notAfter(certificate) {
            var parts = tm()
            if ASN1_TIME_to_tm(time, &parts) == 1 {
                notAfter = Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
            }
        }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        X509_digest(certificate, EVP_sha256(), &digest, &length)
        let fingerprint = digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
        return TLSCertificateInfo(subject: subject, notAfter: notAfter, sha256Fingerprint: fingerprint)
    }
}

/// ALPN: pick the first of the client's protocols that we support; without one, carry on without ALPN.
private func alpnSelect(
    _ ssl: OpaquePointer?,
    _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ clientList: UnsafePointer<UInt8>?,
    _ clientLength: UInt32,
    _ arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let out, let outLength, let clientList, let arg else { return SSL_TLSEXT_ERR_NOACK }
    // Our list starts with the length of "http/1.1"; read it back from the buffer the context owns.
    let ours = arg.assumingMemoryBound(to: UInt8.self)
    var supported: [[UInt8]] = []
    var index = 0
    while ours[index] != 0, supported.count < 8 {
        let length = Int(ours[index])
        supported.append(Array(UnsafeBufferPointer(start: ours + index + 1, count: length)))
        index += length + 1
    }
    var offset = 0
    let total = Int(clientLength)
    while offset < total {
        let length = Int(clientList[offset])
        guard offset + 1 + length <= total else { break }
        let candidate = Array(UnsafeBufferPointer(start: clientList + offset + 1, count: length))
        if supported.contains(candidate) {
            out.pointee = clientList + offset + 1
            outLength.pointee = UInt8(length)
            return SSL_TLSEXT_ERR_OK
        }
        offset += 1 + length
    }
    return SSL_TLSEXT_ERR_NOACK
}
