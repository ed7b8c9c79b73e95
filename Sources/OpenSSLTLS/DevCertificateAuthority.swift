import COpenSSL
import Foundation

/// Where `DevCertificateAuthority.generate` wrote its files.
public struct DevCertificatePaths: Sendable, Hashable {
    /// The dev CA certificate (trust root for clients and simulators).
    public let caCertificate: String
    /// The dev CA private key (mode 0600).
    public let caKey: String
    /// The server certificate (leaf, then the CA).
    public let serverCertificate: String
    /// The server private key (mode 0600).
    public let serverKey: String
}

/// A local development CA and server certificates for localhost, made with OpenSSL's C API.
public enum DevCertificateAuthority {
    /// Creates (or reuses a still-valid) dev CA in `directory` and issues a fresh server certificate for
    /// `localhost`, `127.0.0.1`, `::1` and `extraDNSNames`: ECDSA P-256, 90 days, serverAuth.
    public static func generate(directory: String, extraDNSNames: [String] = [], now: Date = Date()) throws -> DevCertificatePaths {
        let dir = directory
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw TLSConfigurationError(file: dir, problem: "cannot create the certificate directory (\(error.localizedDescription))")
        }
        let paths = DevCertificatePaths(
            caCertificate: dir + "/dev-ca.pem", caKey: dir + "/dev-ca.key",
            serverCertificate: dir + "/server.pem", serverKey: dir + "/server.key"
        )
        for name in extraDNSNames where name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) {
            throw TLSConfigurationError(file: paths.serverCertificate, problem: "\"\(name)\" is not a valid DNS name")
        }
        ERR_clear_error()
        let (caCert, caKey) = try loadOrCreateCA(paths, now: now)
        defer {
            X509_free(caCert)
            EVP_PKEY_free(caKey)
        }
        guard let serverKey = calgate_generate_p256_key() else {
            throw TLSConfigurationError(file: paths.serverKey, problem: "key generation failed: \(drainOpenSSLErrors())")
        }
        defer { EVP_PKEY_free(serverKey) }
        let sans = (["DNS:localhost"] + extraDNSNames.map { "DNS:\($0)" } + ["IP:127.0.0.1", "IP:::1"]).joined(separator: ",")
        let serverCert = try makeCertificate(
            subjectCN: "calgate dev server", key: serverKey, issuer: caCert, issuerKey: caKey, days: 90, now: now,
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
        defer { X509_free(serverCert) }
        try write(pem: pemCertificate(serverCert) + pemCertificate(caCert), to: paths.serverCertificate, mode: 0o644)
        try write(pem: pemPrivateKey(serverKey), to: paths.serverKey, mode: 0o600)
        return paths
    }

    /// Reuses the CA when both files load and it is valid for 30 more days; otherwise makes a new one.
    private static func loadOrCreateCA(_ paths: DevCertificatePaths, now: Date) throws -> (OpaquePointer, OpaquePointer) {
        if let cert = readCertificate(paths.caCertificate), let key = readPrivateKey(paths.caKey) {
            let info = TLSServerContext.certificateInfo(cert)
            if info.notAfter.timeIntervalSince(now) > 30 * 86_400, X509_check_private_key(cert, key) == 1 {
                return (cert, key)
            }
            X509_free(cert)
            EVP_PKEY_free(key)
        }
        ERR_clear_error()
        guard let key = calgate_generate_p256_key() else {
            throw TLSConfigurationError(file: paths.caKey, problem: "key generation failed: \(drainOpenSSLErrors())")
        }
        do {
            let cert = try makeCertificate(
                subjectCN: "calgate dev CA", key: key, issuer: nil, issuerKey: key, days: 365, now: now,
                extensions: [
                    (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
                    (NID_key_usage, "critical,keyCertSign,cRLSign"),
                    (NID_subject_key_identifier, "hash"),
                ],
                file: paths.caCertificate
            )
            try write(pem: pemPrivateKey(key), to: paths.caKey, mode: 0o600)
            try write(pem: pemCertificate(cert), to: paths.caCertificate, mode: 0o644)
            return (cert, key)
        } catch {
            EVP_PKEY_free(key)
            throw error
        }
    }

    private static func makeCertificate(
        subjectCN: String, key: OpaquePointer, issuer: OpaquePointer?, issuerKey: OpaquePointer, days: Int, now: Date,
        extensions: [(Int32, String)], file: String
    ) throws -> OpaquePointer {
        guard let cert = X509_new() else { throw TLSConfigurationError(file: file, problem: "X509_new failed") }
        func fail(_ step: String) -> TLSConfigurationError {
            X509_free(cert)
            return TLSConfigurationError(file: file, problem: "\(step) failed: \(drainOpenSSLErrors())")
        }
        guard X509_set_version(cert, 2) == 1 else { throw fail("setting the version") }
        // A random positive 127-bit serial, as CAs are expected to use.
        guard let serial = BN_new() else { throw fail("serial") }
        defer { BN_free(serial) }
        guard BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1,
              BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) != nil
        else { throw fail("setting the serial number") }
        var start = time_t(now.timeIntervalSince1970) - 3600
        guard X509_time_adj_ex(X509_getm_notBefore(cert), 0, 0, &start) != nil,
              X509_time_adj_ex(X509_getm_notAfter(cert), Int32(days), 3600, &start) != nil
        else { throw fail("setting the validity") }
        guard X509_set_pubkey(cert, key) == 1 else { throw fail("setting the public key") }
        guard let name = X509_get_subject_name(cert),
              X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, "calgate development", -1, -1, 0) == 1,
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, subjectCN, -1, -1, 0) == 1
        else { throw fail("setting the subject") }
        let issuerName = issuer.flatMap { X509_get_subject_name($0) } ?? name
        guard X509_set_issuer_name(cert, issuerName) == 1 else { throw fail("setting the issuer") }
        var context = X509V3_CTX()
        calgate_X509V3_set_ctx_nodb(&context)
        X509V3_set_ctx(&context, issuer ?? cert, cert, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else { throw fail("extension \(value)") }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(cert, ext, -1) == 1 else { throw fail("adding extension \(value)") }
        }
        guard X509_sign(cert, issuerKey, EVP_sha256()) > 0 else { throw fail("signing") }
        return cert
    }

    // MARK: PEM in and out

    private static func readCertificate(_ path: String) -> OpaquePointer? {
        guard let bio = BIO_new_file(path, "r") else { ERR_clear_error(); return nil }
        defer { BIO_free(bio) }
        let cert = PEM_read_bio_X509(bio, nil, nil, nil)
        ERR_clear_error()
        return cert
    }

    private static func readPrivateKey(_ path: String) -> OpaquePointer? {
        guard let bio = BIO_new_file(path, "r") else { ERR_clear_error(); return nil }
        defer { BIO_free(bio) }
        let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        ERR_clear_error()
        return key
    }

    private static func memoryPEM(_ write: (OpaquePointer) -> Int32) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { return [] }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { return [] }
        let length = Int(calgate_BIO_pending(bio))
        var bytes = [UInt8](repeating: 0, count: length)
        _ = bytes.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(length)) }
        return bytes
    }

    private static func pemCertificate(_ cert: OpaquePointer) -> [UInt8] {
        memoryPEM { PEM_write_bio_X509($0, cert) }
    }

    private static func pemPrivateKey(_ key: OpaquePointer) -> [UInt8] {
        memoryPEM { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
    }

    /// Writes through a new file created with `mode` from the start, so a key is never readable by others.
    private static func write(pem: [UInt8], to path: String, mode: mode_t) throws {
        guard !pem.isEmpty else { throw TLSConfigurationError(file: path, problem: "PEM encoding failed: \(drainOpenSSLErrors())") }
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard fd >= 0 else {
            throw TLSConfigurationError(file: path, problem: "cannot be written (\(String(cString: strerror(errno))))")
        }
        let written = pem.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        fchmod(fd, mode)
        fsync(fd)
        close(fd)
        guard written == pem.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw TLSConfigurationError(file: path, problem: "cannot be written completely")
        }
    }
}
