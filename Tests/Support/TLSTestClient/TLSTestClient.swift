import COpenSSL
import Foundation
import Glibc

/// A small blocking TLS client on a raw socket and OpenSSL, for tests.
///
/// It can offer what real clients offer and what calgate must refuse (TLS 1.0/1.1, non-AEAD suites), verify the
/// server against a CA, resume sessions, and send bytes in any slicing (an HTTP request one byte at a time).
/// OpenSSL runs over memory BIOs and the socket is driven with `poll`, so every step has a deadline and nothing
/// raises SIGPIPE.
///
/// ```swift
/// let client = try TLSTestClient.connect(port: port, options: .init(alpnProtocols: ["http/1.1"], caFile: ca))
/// try client.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
/// let head = try client.read(until: "\r\n\r\n")
/// ```
public final class TLSTestClient: @unchecked Sendable {
    // @unchecked: a connection is driven from one thread at a time (the test that made it); OpenSSL objects are
    // never touched concurrently.
    private let socket: TCPSocket
    private let ctx: OpaquePointer
    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    /// Plaintext read past a `read(until:)` marker, handed out first by the next read.
    private var buffered: [UInt8] = []
    /// The TCP connection reached end of file (or was reset).
    public private(set) var peerClosed = false
    /// The options it was made with.
    public let options: TLSTestClientOptions

    // MARK: Connecting

    /// Connects to `host:port` and completes a TLS handshake; throws `TLSTestClientError.handshakeFailed` with the
    /// server's alert or the verification error when it fails.
    public static func connect(host: String = "127.0.0.1", port: Int, options: TLSTestClientOptions = TLSTestClientOptions()) throws -> TLSTestClient {
        let client = try TLSTestClient(host: host, port: port, options: options)
        try client.handshake()
        return client
    }

    /// Opens a plain TCP connection (no TLS) for idle, slow or malformed clients.
    public static func rawTCPConnect(host: String = "127.0.0.1", port: Int, timeout: Duration = .seconds(5)) throws -> RawTCPConnection {
        RawTCPConnection(socket: try TCPSocket.connect(host: host, port: port, timeout: timeout))
    }

    /// Sets OpenSSL up first, so a bad option is reported without touching the network, then connects.
    private init(host: String, port: Int, options: TLSTestClientOptions) throws {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSTestClientError.invalidOptions.with("SSL_CTX_new failed: \(Self.drainErrors())")
        }
        guard let ssl = SSL_new(ctx), let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_CTX_free(ctx)
            throw TLSTestClientError.invalidOptions.with("SSL_new failed: \(Self.drainErrors())")
        }
        SSL_set_bio(ssl, rbio, wbio)
        SSL_set_connect_state(ssl)
        do {
            try Self.configure(ssl: ssl, ctx: ctx, options)
            self.socket = try TCPSocket.connect(host: host, port: port, timeout: options.connectTimeout)
        } catch {
            SSL_free(ssl)
            SSL_CTX_free(ctx)
            throw error
        }
        self.ctx = ctx
        self.ssl = ssl
        self.readBIO = rbio
        self.writeBIO = wbio
        self.options = options
    }

    deinit {
        socket.close()
        SSL_free(ssl)
        SSL_CTX_free(ctx)
    }

    private static func configure(ssl: OpaquePointer, ctx: OpaquePointer, _ options: TLSTestClientOptions) throws {
        func check(_ ok: Bool, _ what: String) throws {
            if !ok { throw TLSTestClientError.invalidOptions.with("\(what): \(Self.drainErrors())") }
        }
        try check(calgate_SSL_set_min_proto_version(ssl, options.minimumVersion.rawValue) == 1, "minimum version")
        try check(calgate_SSL_set_max_proto_version(ssl, options.maximumVersion.rawValue) == 1, "maximum version")
        let legacy = options.minimumVersion < .tls1_2
        if legacy {
            // OpenSSL 3's default security level 1 refuses SHA-1 signatures, so TLS 1.0/1.1 would never be offered.
            SSL_set_security_level(ssl, 0)
        }
        if options.tls12Ciphers != nil || legacy {
            let list = (options.tls12Ciphers ?? "DEFAULT") + (legacy ? ":@SECLEVEL=0" : "")
            try check(SSL_set_cipher_list(ssl, list) == 1, "TLS 1.2 cipher list \"\(list)\"")
        }
        if let suites = options.tls13Ciphersuites {
            try check(SSL_set_ciphersuites(ssl, suites) == 1, "TLS 1.3 ciphersuites \"\(suites)\"")
        }
        if !options.alpnProtocols.isEmpty {
            var wire: [UInt8] = []
            for name in options.alpnProtocols {
                wire.append(UInt8(name.utf8.count))
                wire += Array(name.utf8)
            }
            // The one OpenSSL setter that returns 0 on success.
            try check(SSL_set_alpn_protos(ssl, wire, UInt32(wire.count)) == 0, "ALPN protocols")
        }
        let hostname = options.expectedHostname
        let hostIsIP = hostname.map(Self.isIPLiteral) ?? false
        if let sni = options.serverName ?? (hostIsIP ? nil : hostname) {
            try check(calgate_SSL_set_tlsext_host_name(ssl, sni) == 1, "server name \"\(sni)\"")
        }
        if let caFile = options.caFile {
            try check(SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1, "CA file \(caFile)")
            SSL_set_verify(ssl, SSL_VERIFY_PEER, nil)
            if let hostname {
                if hostIsIP {
                    try check(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), hostname) == 1, "expected IP \(hostname)")
                } else {
                    try check(SSL_set1_host(ssl, hostname) == 1, "expected hostname \(hostname)")
                }
            }
        }
        if let session = options.session {
            try check(SSL_set_session(ssl, session.pointer) == 1, "session")
        }
        ERR_clear_error()
    }

    private func handshake() throws {
        let deadline = ContinuousClock.now + options.handshakeTimeout
        var sendFailure: TLSTestClientError?
        while true {
            ERR_clear_error()
            let rc = SSL_do_handshake(ssl)
            // Our flight, or the alert we send when we give up (bad certificate, unexpected message).
            do { try flushOutput(deadline: deadline) } catch let error as TLSTestClientError { sendFailure = error }
            if rc == 1 { return }
            let error = SSL_get_error(ssl, rc)
            guard error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE else {
                throw TLSTestClientError.handshakeFailed.with(handshakeFailureReason())
            }
            if peerClosed {
                // The server closed without (or after) an alert that OpenSSL has already reported, or before replying.
                let reason = Self.drainErrors()
                throw TLSTestClientError.handshakeFailed.with(
                    "the server closed the connection during the handshake" + (reason.isEmpty ? "" : " (\(reason))")
                        + (sendFailure.map { "; \($0.message)" } ?? "")
                )
            }
            guard try fillInput(deadline: deadline) else {
                throw TLSTestClientError.timedOut.with("no complete handshake within \(options.handshakeTimeout)")
            }
        }
    }

    private func handshakeFailureReason() -> String {
        let verify = SSL_get_verify_result(ssl)
        let reasons = Self.drainErrors()
        if verify != Int(X509_V_OK) {
            let text = X509_verify_cert_error_string(verify).map { String(cString: $0) } ?? "error \(verify)"
            return "certificate verify failed: \(text)" + (reasons.isEmpty ? "" : " (\(reasons))")
        }
        return reasons.isEmpty ? "unknown reason" : reasons
    }

    // MARK: What was negotiated

    /// `TLSv1.3`, `TLSv1.2`, ….
    public var protocolVersion: String { SSL_get_version(ssl).map { String(cString: $0) } ?? "unknown" }
    /// OpenSSL's name of the cipher, e.g. `TLS_AES_256_GCM_SHA384` or `ECDHE-ECDSA-AES128-GCM-SHA256`.
    public var cipher: String {
        SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "none"
    }
    /// The ALPN protocol the server selected, or nil.
    public var negotiatedALPN: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }
    /// SHA-256 of the server's leaf certificate (DER), lower-case hex, as in `TLSCertificateInfo.sha256Fingerprint`.
    public var peerCertificateSHA256: String? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(certificate, EVP_sha256(), &digest, &length) == 1 else { return nil }
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }
    /// The key-exchange group OpenSSL reports, e.g. `x25519` or `secp256r1`; nil when none was negotiated.
    public var keyExchangeGroup: String? {
        let group = calgate_SSL_get_negotiated_group(ssl)
        guard group != 0 else { return nil }
        return SSL_group_to_name(ssl, group).map { String(cString: $0) }
    }
    /// Whether the handshake resumed `options.session`.
    public var sessionReused: Bool { SSL_session_reused(ssl) == 1 }
    /// The TLS compression method in use, or nil for none (the only acceptable answer: CRIME).
    public var compression: String? {
        SSL_get_current_compression(ssl).flatMap { SSL_COMP_get_name($0) }.map { String(cString: $0) }
    }
    /// Whether the server has sent close_notify.
    public var receivedCloseNotify: Bool { SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN != 0 }
    /// The session to resume in a later connection. TLS 1.3 tickets arrive after the handshake, so read something
    /// first; nil when the server gave nothing resumable.
    public var session: TLSTestSession? {
        guard let session = SSL_get1_session(ssl) else { return nil }
        let wrapped = TLSTestSession(session)
        return wrapped.isResumable ? wrapped : nil
    }

    // MARK: Application data

    /// Encrypts and sends `bytes` as one TLS record per 16 KiB.
    public func write(_ bytes: [UInt8], timeout: Duration? = nil) throws {
        guard !bytes.isEmpty else { return }
        ERR_clear_error()
        let rc = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        guard rc > 0 else { throw TLSTestClientError.ioFailed.with("SSL_write: \(Self.drainErrors())") }
        try flushOutput(deadline: ContinuousClock.now + (timeout ?? options.ioTimeout))
    }

    /// Sends UTF-8 text.
    public func write(_ text: String, timeout: Duration? = nil) throws {
        try write(Array(text.utf8), timeout: timeout)
    }

    /// Sends `bytes` in separate records of `chunkSize` bytes, pausing between them: slow and fragmented clients.
    public func write(_ bytes: [UInt8], inChunksOf chunkSize: Int, pause: Duration = .zero) throws {
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + max(1, chunkSize))
            try write(Array(bytes[offset..<end]))
            offset = end
            if pause > .zero, offset < bytes.count {
                Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18)
            }
        }
    }

    /// The next plaintext (up to `maxBytes`); empty once the server closed (close_notify or TCP EOF: see
    /// `receivedCloseNotify`). Throws `.timedOut` when nothing arrived in time.
    public func read(maxBytes: Int = 16_384, timeout: Duration? = nil) throws -> [UInt8] {
        if !buffered.isEmpty {
            let chunk = Array(buffered.prefix(maxBytes))
            buffered.removeFirst(chunk.count)
            return chunk
        }
        return try readRecord(maxBytes: maxBytes, deadline: ContinuousClock.now + (timeout ?? options.ioTimeout))
    }

    /// Reads until `marker` has arrived and returns the text up to and including it; what followed stays for the
    /// next read. Throws `.timedOut` or `.connectionClosed`, with what did arrive in the message.
    public func read(until marker: String, timeout: Duration? = nil) throws -> String {
        let needle = Array(marker.utf8)
        let deadline = ContinuousClock.now + (timeout ?? options.ioTimeout)
        var received = buffered
        buffered = []
        while true {
            if let end = Self.index(of: needle, in: received) {
                buffered = Array(received[end...])
                return String(decoding: received[..<end], as: UTF8.self)
            }
            let chunk: [UInt8]
            do {
                chunk = try readRecord(maxBytes: 16_384, deadline: deadline)
            } catch let error as TLSTestClientError where error == .timedOut {
                buffered = received
                throw error.with("\"\(marker)\" not received within \(timeout ?? options.ioTimeout); got \(String(decoding: received, as: UTF8.self).debugDescription)")
            }
            guard !chunk.isEmpty else {
                buffered = received
                throw TLSTestClientError.connectionClosed.with("closed before \"\(marker)\"; got \(String(decoding: received, as: UTF8.self).debugDescription)")
            }
            received += chunk
        }
    }

    /// Reads exactly `count` bytes (a body whose Content-Length is known).
    public func read(exactly count: Int, timeout: Duration? = nil) throws -> [UInt8] {
        let deadline = ContinuousClock.now + (timeout ?? options.ioTimeout)
        var received = buffered
        buffered = []
        while received.count < count {
            let chunk: [UInt8]
            do {
                chunk = try readRecord(maxBytes: 16_384, deadline: deadline)
            } catch {
                buffered = received
                throw error
            }
            guard !chunk.isEmpty else {
                buffered = received
                throw TLSTestClientError.connectionClosed.with("closed after \(received.count) of \(count) bytes")
            }
            received += chunk
        }
        buffered = Array(received[count...])
        return Array(received.prefix(count))
    }

    /// Reads until the server closes; throws `.timedOut` if it is still open at the deadline.
    public func readUntilClose(timeout: Duration? = nil) throws -> [UInt8] {
        let deadline = ContinuousClock.now + (timeout ?? options.ioTimeout)
        var received = buffered
        buffered = []
        while true {
            let chunk: [UInt8]
            do {
                chunk = try readRecord(maxBytes: 16_384, deadline: deadline)
            } catch {
                buffered = received  // kept for a later read
                throw error
            }
            if chunk.isEmpty { return received }
            received += chunk
        }
    }

    /// Sends `bytes` on the socket as they are, outside TLS: a corrupt record, garbage after the handshake.
    public func writeRaw(_ bytes: [UInt8], timeout: Duration? = nil) throws {
        try bytes.withUnsafeBytes { try socket.send($0, deadline: ContinuousClock.now + (timeout ?? options.ioTimeout)) }
    }

    /// Sends close_notify (the TCP connection stays open to read the server's reply).
    public func sendCloseNotify() throws {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
        try flushOutput(deadline: ContinuousClock.now + options.ioTimeout)
    }

    /// Waits for the server to close the TCP connection, discarding anything else it sends; false if it is still
    /// open at the deadline. (`read` reports close_notify as soon as it arrives, before the FIN that follows it.)
    public func waitForTCPClose(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !peerClosed {
            guard (try? fillInput(deadline: deadline)) == true else { return peerClosed }
        }
        return true
    }

    /// Half-closes the TCP connection (a FIN, no close_notify); reading goes on, as for a client that shuts down its
    /// sending side once its request is out and waits for the answer.
    public func shutdownWrite() {
        socket.shutdownWrite()
    }

    /// Closes the TCP connection without close_notify (an unclean close, as far as TLS is concerned).
    public func close() {
        socket.close()
    }

    // MARK: Pumping bytes

    private func readRecord(maxBytes: Int, deadline: ContinuousClock.Instant) throws -> [UInt8] {
        var plaintext = [UInt8](repeating: 0, count: max(1, maxBytes))
        while true {
            ERR_clear_error()
            let rc = plaintext.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if rc > 0 { return Array(plaintext.prefix(Int(rc))) }
            let error = SSL_get_error(ssl, rc)
            switch error {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                // Post-handshake messages (a KeyUpdate) may need an answer before more data comes.
                try? flushOutput(deadline: deadline)
                if peerClosed { return [] }
                guard try fillInput(deadline: deadline) else {
                    throw TLSTestClientError.timedOut.with("nothing received within the deadline")
                }
            case SSL_ERROR_ZERO_RETURN:
                return []
            case SSL_ERROR_SYSCALL:
                return []
            default:
                let reasons = Self.drainErrors()
                if reasons.contains("unexpected eof") { return [] }
                throw TLSTestClientError.ioFailed.with("SSL_read: \(reasons)")
            }
        }
    }

    /// Moves OpenSSL's output to the socket.
    private func flushOutput(deadline: ContinuousClock.Instant) throws {
        let pending = Int(calgate_BIO_pending(writeBIO))
        guard pending > 0 else { return }
        var bytes = [UInt8](repeating: 0, count: pending)
        let count = bytes.withUnsafeMutableBytes { BIO_read(writeBIO, $0.baseAddress, Int32(pending)) }
        guard count > 0 else { return }
        let piece = max(1, options.fragmentSize ?? Int(count))
        var offset = 0
        while offset < Int(count) {
            let end = min(Int(count), offset + piece)
            try bytes.withUnsafeBytes { try socket.send(UnsafeRawBufferPointer(rebasing: $0[offset..<end]), deadline: deadline) }
            offset = end
        }
    }

    /// Feeds the socket's next bytes to OpenSSL; false on timeout. Sets `peerClosed` on EOF.
    private func fillInput(deadline: ContinuousClock.Instant) throws -> Bool {
        switch try socket.receive(maxBytes: 16_384 + 512, deadline: deadline) {
        case .bytes(let bytes):
            let written = bytes.withUnsafeBytes { BIO_write(readBIO, $0.baseAddress, Int32($0.count)) }
            guard written == bytes.count else { throw TLSTestClientError.ioFailed.with("BIO_write failed") }
            return true
        case .closed:
            peerClosed = true
            return true
        case .timedOut:
            return false
        }
    }

    // MARK: Helpers

    static func drainErrors() -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            let reason = ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)"
            if !reasons.contains(reason) { reasons.append(reason) }
        }
        return reasons.joined(separator: "; ")
    }

    static func isIPLiteral(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    static func index(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty ? 0 : nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return start + needle.count }
        }
        return nil
    }
}
