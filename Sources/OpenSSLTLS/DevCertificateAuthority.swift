import COpenSSL
import Foundation

/// A local development CA and server certificates for localhost, made with OpenSSL's C API (no `openssl` binary).
public enum DevCertificateAuthority {
    /// Creates (in `directory`) dev-ca.pem, dev-ca.key, server.pem, server.key: a local CA (ECDSA P-256, ~1 year) and a
    /// server cert (ECDSA P-256, ~90 days, serverAuth EKU, SAN DNS:localhost, IP:127.0.0.1, IP:::1 plus any extra
    /// names), signed by the CA. Key files mode 0600.
    /// Reuses an existing CA in the directory if present and valid.
    ///
    /// "Valid" means both CA files load, the key matches, it is a CA, and it has more than 30 days left; otherwise a
    /// new CA replaces it (clients must then trust the new dev-ca.pem). The server certificate never outlives the CA.
    public static func generate(directory: String, extraDNSNames: [String] = [], now: Date = Date()) throws -> DevCertificatePaths {
        let paths = DevCertificatePaths(
            caCertificate: (directory as NSString).appendingPathComponent("dev-ca.pem"),
            caKey: (directory as NSString).appendingPathComponent("dev-ca.key"),
            serverCertificate: (directory as NSString).appendingPathComponent("server.pem"),
            serverKey: (directory as NSString).appendingPathComponent("server.key")
        )
        for name in extraDNSNames where !isDNSName(name) {
            throw TLSConfigurationError(file: paths.serverCertificate, problem: "\"\(name)\" is not a valid DNS name for the certificate")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TLSConfigurationError(file: directory, problem: "cannot create the certificate directory (\(error.localizedDescription))")
        }

        OpenSSLErrorQueue.clear()
        let ca = try loadOrCreateCA(paths, now: now)
        guard let serverKey = calgate_generate_p256_key() else {
            throw TLSConfigurationError(file: paths.serverKey, problem: "key generation failed (\(OpenSSLErrorQueue.drain()))")
        }
        let key = OwnedKey(serverKey)
        let sans = (["DNS:localhost"] + extraDNSNames.map { "DNS:\($0)" } + ["IP:127.0.0.1", "IP:::1"]).joined(separator: ",")
        // A server certificate that outlived its CA would fail verification from that day on.
        let caExpiry = TLSServerContext.certificateInfo(ca.certificate.pointer).notAfter
        let days = min(90, max(1, Int(caExpiry.timeIntervalSince(now) / 86_400)))
        let server = try makeCertificate(
            commonName: "calgate dev server", key: key.pointer, issuer: ca.certificate.pointer, issuerKey: ca.key.pointer,
            days: days, now: now,
            extensions: [
                (NID_basic_constraints, "critical,CA:FALSE"),
                (NID_key_usage, "critical,digitalSignature"),
                (NID_ext_key_usage, "serverAuth"),
                (NID_subject_alt_name, sans),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ],
            file: paths.serverCertificate
        )
        // Key first: a reader that sees the new certificate must never pair it with the old key.
        try writeFile(pemPrivateKey(key.pointer), to: paths.serverKey, mode: 0o600)
        try writeFile(pemCertificate(server.pointer) + pemCertificate(ca.certificate.pointer), to: paths.serverCertificate, mode: 0o644)
        return paths
    }

    static func isDNSName(_ name: String) -> Bool {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
        }
    }

    // MARK: The CA

    private static func loadOrCreateCA(_ paths: DevCertificatePaths, now: Date) throws -> (certificate: OwnedCertificate, key: OwnedKey) {
        if let certificate = readCertificate(paths.caCertificate), let key = readPrivateKey(paths.caKey) {
            let info = TLSServerContext.certificateInfo(certificate.pointer)
            let isCA = X509_check_ca(certificate.pointer) == 1
            if isCA, info.notAfter.timeIntervalSince(now) > 30 * 86_400, X509_check_private_key(certificate.pointer, key.pointer) == 1 {
                return (certificate, key)
            }
            OpenSSLErrorQueue.clear()
        }
        guard let rawKey = calgate_generate_p256_key() else {
            throw TLSConfigurationError(file: paths.caKey, problem: "key generation failed (\(OpenSSLErrorQueue.drain()))")
        }
        let key = OwnedKey(rawKey)
        let certificate = try makeCertificate(
            commonName: "calgate dev CA", key: key.pointer, issuer: nil, issuerKey: key.pointer, days: 365, now: now,
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ],
            file: paths.caCertificate
        )
        try writeFile(pemPrivateKey(key.pointer), to: paths.caKey, mode: 0o600)
        try writeFile(pemCertificate(certificate.pointer), to: paths.caCertificate, mode: 0o644)
        return (certificate, key)
    }

    // MARK: Certificates

    /// Builds and signs an X.509 v3 certificate; `issuer` nil makes it self-signed.
    private static func makeCertificate(
        commonName: String, key: OpaquePointer, issuer: OpaquePointer?, issuerKey: OpaquePointer, days: Int, now: Date,
        extensions: [(Int32, String)], file: String
    ) throws -> OwnedCertificate {
        guard let raw = X509_new() else {
            throw TLSConfigurationError(file: file, problem: "X509_new failed (\(OpenSSLErrorQueue.drain()))")
        }
        let certificate = OwnedCertificate(raw)
        func failure(_ step: String) -> TLSConfigurationError {
            TLSConfigurationError(file: file, problem: "\(step) failed (\(OpenSSLErrorQueue.drain()))")
        }
        guard X509_set_version(raw, 2) == 1 else { throw failure("setting the version") }

        // A random 128-bit serial: BN_rand gives a non-negative number, encoded in at most 17 of the 20 bytes allowed.
        guard let serial = BN_new() else { throw failure("allocating the serial") }
        defer { BN_free(serial) }
        guard BN_rand(serial, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1,
            BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(raw)) != nil
        else { throw failure("setting the serial number") }

        // Back-dated an hour so a client whose clock is slightly behind still accepts it.
        var start = time_t(now.timeIntervalSince1970) - 3600
        guard X509_time_adj_ex(X509_getm_notBefore(raw), 0, 0, &start) != nil,
            X509_time_adj_ex(X509_getm_notAfter(raw), Int32(days), 3600, &start) != nil
        else { throw failure("setting the validity") }
        guard X509_set_pubkey(raw, key) == 1 else { throw failure("setting the public key") }
        guard let name = X509_get_subject_name(raw),
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, "calgate development", -1, -1, 0) == 1,
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1
        else { throw failure("setting the subject") }
        let issuerName = issuer.flatMap { X509_get_subject_name($0) } ?? name
        guard X509_set_issuer_name(raw, issuerName) == 1 else { throw failure("setting the issuer") }

        var context = X509V3_CTX()
        calgate_X509V3_set_ctx_nodb(&context)
        X509V3_set_ctx(&context, issuer ?? raw, raw, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else { throw failure("building extension \(value)") }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(raw, ext, -1) == 1 else { throw failure("adding extension \(value)") }
        }
        guard X509_sign(raw, issuerKey, EVP_sha256()) > 0 else { throw failure("signing") }
        return certificate
    }

    // MARK: PEM in and out

    private static func readCertificate(_ path: String) -> OwnedCertificate? {
        readPEM(path) { PEM_read_bio_X509($0, nil, nil, nil) }.map(OwnedCertificate.init)
    }

    private static func readPrivateKey(_ path: String) -> OwnedKey? {
        readPEM(path) { PEM_read_bio_PrivateKey($0, nil, nil, nil) }.map(OwnedKey.init)
    }

    /// What `read` makes of the file's PEM, or nil when the file cannot be opened or read; OpenSSL's error queue is
    /// left empty either way.
    private static func readPEM(_ path: String, _ read: (OpaquePointer) -> OpaquePointer?) -> OpaquePointer? {
        defer { OpenSSLErrorQueue.clear() }
        guard let bio = BIO_new_file(path, "r") else { return nil }
        defer { BIO_free(bio) }
        return read(bio)
    }

    private static func pem(_ write: (OpaquePointer) -> Int32) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { return [] }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { return [] }
        return TLSServerContext.readAll(bio)
    }

    private static func pemCertificate(_ certificate: OpaquePointer) -> [UInt8] {
        pem { PEM_write_bio_X509($0, certificate) }
    }

    private static func pemPrivateKey(_ key: OpaquePointer) -> [UInt8] {
        // PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted: the server reads it without a passphrase.
        pem { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
    }

    /// Writes a temporary file created with `mode` from the start (a key is never readable by others, not even
    /// briefly), then renames it over `path` so readers see the old or the new file, never half of one.
    private static func writeFile(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        guard !bytes.isEmpty else {
            throw TLSConfigurationError(file: path, problem: "PEM encoding failed (\(OpenSSLErrorQueue.drain()))")
        }
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw TLSConfigurationError(file: path, problem: "cannot be written (\(String(cString: strerror(errno))))")
        }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { break }
            offset += written
        }
        // The umask may have narrowed `mode`; the certificate should stay world-readable, the key owner-only.
        let complete = offset == bytes.count && fchmod(fd, mode) == 0 && fsync(fd) == 0
        close(fd)
        guard complete, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw TLSConfigurationError(file: path, problem: "cannot be written completely (\(String(cString: strerror(errno))))")
        }
    }
}

/// An `X509*` freed with its owner.
private final class OwnedCertificate {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_free(pointer) }
}

/// An `EVP_PKEY*` freed with its owner.
private final class OwnedKey {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }
}
