import COpenSSL
import Foundation
import NIOCore
import Synchronization

/// The server's TLS configuration on OpenSSL 3: TLS 1.2–1.3, forward-secret AEAD suites only, ALPN, and a
/// certificate that can be reloaded while serving.
///
/// `reload()` swaps the `SSL_CTX`: connections already open keep the one their `SSL` object references, new
/// handshakes use the new one. Handlers are made per connection with `makeServerHandler()`.
public final class TLSServerContext: Sendable {
    /// TLS 1.2 suites: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305, in server preference order. TLS 1.3
    /// suites are all AEAD with ephemeral key exchange and keep OpenSSL's defaults.
    static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    private let configuration: TLSServerConfiguration
    private let current: Mutex<SSLContextBox>
    private let completed = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)

    /// Loads and checks the certificate chain and key; throws `TLSConfigurationError` naming the file at fault.
    public init(configuration: TLSServerConfiguration) throws {
        self.configuration = configuration
        self.current = Mutex(try Self.makeContext(configuration))
    }

    /// Re-reads the configured files; new handshakes use them. On failure the current certificate stays in
    /// service and the `TLSConfigurationError` says what is wrong.
    public func reload() throws {
        // Built outside the lock: loading files and keys is slow, and handlers only take the lock to copy a reference.
        let box = try Self.makeContext(configuration)
        current.withLock { $0 = box }
    }

    /// The certificate new handshakes present.
    public var certificateInfo: TLSCertificateInfo { current.withLock { $0.info } }
    /// Handshakes completed since start.
    public var handshakesCompleted: Int { completed.load(ordering: .relaxed) }
    /// Handshakes that failed: refused protocol or suites, malformed data, timeout, or a disconnect before the end.
    public var handshakeFailures: Int { failed.load(ordering: .relaxed) }
    /// How long a client may take to finish its handshake.
    public var handshakeTimeout: TimeAmount { configuration.handshakeTimeout }
    /// How long a closing connection lingers for the client (see `TLSServerConfiguration.lingerTimeout`).
    public var lingerTimeout: TimeAmount { configuration.lingerTimeout }

    /// A handler for one new connection, on the current (possibly reloaded) certificate.
    public func makeServerHandler() -> OpenSSLServerHandler {
        OpenSSLServerHandler(owner: self, box: current.withLock { $0 })
    }

    func recordHandshake(success: Bool) {
        if success {
            completed.wrappingAdd(1, ordering: .relaxed)
        } else {
            failed.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// The settings OpenSSL holds for new handshakes, read back from the current `SSL_CTX` (tests check them).
    struct AppliedSettings: Equatable {
        var minimumVersion, maximumVersion: Int32
        var noCompression, noRenegotiation, serverCipherPreference, noTickets, sessionCacheOff: Bool
    }

    var appliedSettings: AppliedSettings {
        let box = current.withLock { $0 }
        let options = SSL_CTX_get_options(box.ctx)
        return AppliedSettings(
            minimumVersion: calgate_SSL_CTX_get_min_proto_version(box.ctx),
            maximumVersion: calgate_SSL_CTX_get_max_proto_version(box.ctx),
            noCompression: options & calgate_SSL_OP_NO_COMPRESSION() != 0,
            noRenegotiation: options & calgate_SSL_OP_NO_RENEGOTIATION() != 0,
            serverCipherPreference: options & calgate_SSL_OP_CIPHER_SERVER_PREFERENCE() != 0,
            noTickets: options & calgate_SSL_OP_NO_TICKET() != 0,
            sessionCacheOff: calgate_SSL_CTX_get_session_cache_mode(box.ctx) == Int(SSL_SESS_CACHE_OFF)
        )
    }

    // MARK: Building an SSL_CTX

    static func makeContext(_ configuration: TLSServerConfiguration) throws -> SSLContextBox {
        let certPath = configuration.certificateChainPath
        let keyPath = configuration.privateKeyPath
        let certText = try readPEMFile(certPath, what: "certificate")
        let keyText = try readPEMFile(keyPath, what: "private key")
        try checkCertificateFileShape(certText, path: certPath)
        try checkKeyFileShape(keyText, path: keyPath)

        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw TLSConfigurationError(file: certPath, problem: "OpenSSL could not create a TLS context (\(OpenSSLErrorQueue.drain()))")
        }
        var handedOver = false
        defer { if !handedOver { SSL_CTX_free(ctx) } }

        guard calgate_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1,
            calgate_SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1,
            SSL_CTX_set_cipher_list(ctx, tls12Ciphers) == 1,
            calgate_SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") == 1
        else {
            throw TLSConfigurationError(file: certPath, problem: "OpenSSL refused the protocol settings (\(OpenSSLErrorQueue.drain()))")
        }
        var options =
            calgate_SSL_OP_NO_COMPRESSION() | calgate_SSL_OP_NO_RENEGOTIATION()
            | calgate_SSL_OP_CIPHER_SERVER_PREFERENCE() | calgate_SSL_OP_NO_SSL_MASK()
        if !configuration.sessionResumption { options |= calgate_SSL_OP_NO_TICKET() }
        _ = SSL_CTX_set_options(ctx, options)
        // Idle keep-alive connections then hold no 16 KiB record buffers (what nginx does too).
        _ = calgate_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        if configuration.sessionResumption {
            _ = calgate_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_SERVER))
            let sessionContext: [UInt8] = Array("calgate".utf8)
            _ = SSL_CTX_set_session_id_context(ctx, sessionContext, UInt32(sessionContext.count))
        } else {
            // Both mechanisms off, so every handshake is a full one (benchmarks measure exactly that).
            _ = calgate_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
            _ = SSL_CTX_set_num_tickets(ctx, 0)
        }
        // Without this, OpenSSL asks for an encrypted key's passphrase on the terminal and start-up hangs.
        SSL_CTX_set_default_passwd_cb(ctx) { _, _, _, _ in 0 }

        guard SSL_CTX_use_certificate_chain_file(ctx, certPath) == 1 else {
            throw TLSConfigurationError(
                file: certPath,
                problem: "is not a readable PEM certificate chain (\(OpenSSLErrorQueue.drain())); expected the leaf certificate first, then intermediates"
            )
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, keyPath, SSL_FILETYPE_PEM) == 1 else {
            let reason = OpenSSLErrorQueue.drain()
            if reason.contains("key values mismatch") {
                throw mismatch(configuration)
            }
            throw TLSConfigurationError(file: keyPath, problem: "is not a readable PEM private key (\(reason))")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            // Also reached for a key of another type (an RSA key beside an ECDSA certificate).
            OpenSSLErrorQueue.clear()
            throw mismatch(configuration)
        }
        guard let leaf = SSL_CTX_get0_certificate(ctx) else {
            OpenSSLErrorQueue.clear()
            throw TLSConfigurationError(file: certPath, problem: "holds no certificate")
        }
        let info = certificateInfo(leaf)
        OpenSSLErrorQueue.clear()
        handedOver = true
        return SSLContextBox(ctx: ctx, info: info, alpnWire: SSLContextBox.alpnWireFormat(configuration.alpnProtocols))
    }

    private static func mismatch(_ configuration: TLSServerConfiguration) -> TLSConfigurationError {
        TLSConfigurationError(
            file: configuration.privateKeyPath,
            problem: "private key does not match the certificate in \(configuration.certificateChainPath)"
        )
    }

    /// Reads a small text file, turning each way it can be unusable into a message about that file.
    static func readPEMFile(_ path: String, what: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TLSConfigurationError(file: path, problem: "\(what) file does not exist")
        }
        guard !isDirectory.boolValue else {
            throw TLSConfigurationError(file: path, problem: "is a directory, not a \(what) file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TLSConfigurationError(file: path, problem: "\(what) file cannot be read; check its permissions")
        }
        guard !data.isEmpty else {
            throw TLSConfigurationError(file: path, problem: "\(what) file is empty")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Catches the common mistakes before OpenSSL does, with a clearer message than its reason strings: swapped
    /// paths, DER instead of PEM, an empty file.
    static func checkCertificateFileShape(_ text: String, path: String) throws {
        try checkPEMShape(
            text, path: path, holds: ("certificate", "-----BEGIN CERTIFICATE-----"), other: ("private key", "PRIVATE KEY-----"),
            notPEM: "is not PEM (no -----BEGIN CERTIFICATE----- line); convert DER with `openssl x509 -inform der`",
            empty: "holds no certificate (no -----BEGIN CERTIFICATE----- block)")
    }

    /// See `checkCertificateFileShape`; encrypted keys are refused because a server cannot prompt for a passphrase.
    static func checkKeyFileShape(_ text: String, path: String) throws {
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED") {
            throw TLSConfigurationError(
                file: path, problem: "private key is encrypted; store it unencrypted with mode 0600 (`openssl pkey -in KEY -out KEY.plain`)"
            )
        }
        try checkPEMShape(
            text, path: path, holds: ("private key", "PRIVATE KEY-----"), other: ("certificate", "-----BEGIN CERTIFICATE-----"),
            notPEM: "is not PEM (no -----BEGIN PRIVATE KEY----- line)", empty: "holds no private key (no -----BEGIN … PRIVATE KEY----- block)")
    }

    /// Passes when `text` holds the marker of what it should; otherwise says whether it holds the other thing
    /// (swapped paths), no PEM at all, or PEM without it.
    private static func checkPEMShape(
        _ text: String, path: String, holds wanted: (name: String, marker: String), other: (name: String, marker: String), notPEM: String,
        empty: String
    ) throws {
        if text.contains(wanted.marker) { return }
        if text.contains(other.marker) {
            throw TLSConfigurationError(file: path, problem: "holds a \(other.name), not a \(wanted.name); are the certificate and key paths swapped?")
        }
        throw TLSConfigurationError(file: path, problem: text.contains("-----BEGIN ") ? empty : notPEM)
    }

    /// Subject, expiry and fingerprint of a certificate.
    static func certificateInfo(_ certificate: OpaquePointer) -> TLSCertificateInfo {
        var subject = "unknown"
        if let name = X509_get_subject_name(certificate), let bio = BIO_new(BIO_s_mem()) {
            defer { BIO_free(bio) }
            if X509_NAME_print_ex(bio, name, 0, calgate_XN_FLAG_RFC2253()) >= 0 {
                subject = String(decoding: readAll(bio), as: UTF8.self)
            }
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
        _ = X509_digest(certificate, EVP_sha256(), &digest, &length)
        OpenSSLErrorQueue.clear()
        return TLSCertificateInfo(subject: subject, notAfter: notAfter, sha256Fingerprint: hex(digest.prefix(Int(length))))
    }

    static func readAll(_ bio: OpaquePointer) -> [UInt8] {
        let length = Int(calgate_BIO_pending(bio))
        guard length > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: length)
        let read = bytes.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(length)) }
        return Array(bytes.prefix(max(0, Int(read))))
    }

    static func hex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
