import Foundation
import TLSTestClient
import Testing
@testable import OpenSSLTLS

extension OpenSSLTLSTests {
    /// The development CA and server certificates.
    @Suite struct DevCertificates {
        @Test func writesFourFilesWithPrivateKeysReadableOnlyByTheOwner() throws {
            let root = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: root) }
            let dir = root + "/nested/certs"  // generate creates missing parents
            let paths = try DevCertificateAuthority.generate(directory: dir)
            #expect(
                paths
                    == DevCertificatePaths(
                        caCertificate: dir + "/dev-ca.pem", caKey: dir + "/dev-ca.key",
                        serverCertificate: dir + "/server.pem", serverKey: dir + "/server.key"
                    ))
            func mode(_ path: String) throws -> Int? {
                try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            }
            #expect(try mode(paths.caKey) == 0o600)
            #expect(try mode(paths.serverKey) == 0o600)
            #expect(try mode(paths.caCertificate) == 0o644)
            #expect(try mode(paths.serverCertificate) == 0o644)
            let chain = try String(contentsOfFile: paths.serverCertificate, encoding: .utf8)
            #expect(chain.components(separatedBy: "-----BEGIN CERTIFICATE-----").count == 3, "leaf, then the CA")
            #expect(try String(contentsOfFile: paths.serverKey, encoding: .utf8).hasPrefix("-----BEGIN PRIVATE KEY-----"))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
            #expect(leftovers.isEmpty)
        }

        @Test func theServerCertificateVerifiesForEveryLocalName() async throws {
            let certs = try CertificateFixture(extraDNSNames: ["gateway.test"])
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                for name in ["localhost", "127.0.0.1", "::1", "gateway.test"] {
                    let client = try TLSTestClient.connect(port: server.port, options: .init(caFile: certs.paths.caCertificate, expectedHostname: name))
                    #expect(try client.echo(name) == "echo:" + name)
                }
                for wrong in ["example.com", "10.0.0.1"] {
                    let error = #expect(throws: TLSTestClientError.handshakeFailed) {
                        try TLSTestClient.connect(port: server.port, options: .init(caFile: certs.paths.caCertificate, expectedHostname: wrong))
                    }
                    #expect(error?.message.contains("certificate verify failed") == true, "\(String(describing: error))")
                }
                let stranger = try CertificateFixture()
                defer { stranger.remove() }
                #expect(throws: TLSTestClientError.handshakeFailed) {
                    try TLSTestClient.connect(port: server.port, options: .init(caFile: stranger.paths.caCertificate, expectedHostname: "localhost"))
                }
            }
        }

        @Test func certificatesCarryTheExpectedExtensionsAndRandomSerials() throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            let ca = try runOpenSSL(["x509", "-in", certs.paths.caCertificate, "-noout", "-text"])
            for expected in ["CA:TRUE", "Certificate Sign, CRL Sign", "Subject Key Identifier", "Authority Key Identifier", "NIST CURVE: P-256", "ecdsa-with-SHA256"] {
                #expect(ca.contains(expected), "CA lacks \(expected)")
            }
            let leaf = try runOpenSSL(["x509", "-in", certs.paths.serverCertificate, "-noout", "-text"])
            for expected in [
                "CA:FALSE", "Digital Signature", "TLS Web Server Authentication", "DNS:localhost", "IP Address:127.0.0.1",
                "IP Address:0:0:0:0:0:0:0:1", "Authority Key Identifier", "NIST CURVE: P-256", "Issuer: O = calgate development, CN = calgate dev CA",
            ] {
                #expect(leaf.contains(expected), "server certificate lacks \(expected)")
            }
            let verified = try runOpenSSL(["verify", "-CAfile", certs.paths.caCertificate, "-purpose", "sslserver", certs.paths.serverCertificate])
            #expect(verified.contains(": OK"))

            func serial(_ path: String) throws -> String {
                try runOpenSSL(["x509", "-in", path, "-noout", "-serial"]).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let caSerial = try serial(certs.paths.caCertificate)
            let leafSerial = try serial(certs.paths.serverCertificate)
            #expect(caSerial != leafSerial)
            #expect(leafSerial.hasPrefix("serial=") && leafSerial.count == "serial=".count + 32, "128-bit serial: \(leafSerial)")
        }

        @Test func aValidCAIsReusedAndOneAboutToExpireIsReplaced() throws {
            let dir = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let now = Date()
            let first = try DevCertificateAuthority.generate(directory: dir, now: now)
            let ca = try String(contentsOfFile: first.caCertificate, encoding: .utf8)
            let caKey = try String(contentsOfFile: first.caKey, encoding: .utf8)
            let leaf = try TLSServerContext(configuration: TLSServerConfiguration(certificateChainPath: first.serverCertificate, privateKeyPath: first.serverKey))

            _ = try DevCertificateAuthority.generate(directory: dir, now: now)
            #expect(try String(contentsOfFile: first.caCertificate, encoding: .utf8) == ca)
            #expect(try String(contentsOfFile: first.caKey, encoding: .utf8) == caKey)
            let reissued = try TLSServerContext(configuration: TLSServerConfiguration(certificateChainPath: first.serverCertificate, privateKeyPath: first.serverKey))
            #expect(reissued.certificateInfo.sha256Fingerprint != leaf.certificateInfo.sha256Fingerprint)
            try runOpenSSL(["verify", "-CAfile", first.caCertificate, first.serverCertificate])

            // 340 days on, the CA has 25 days left: too little to issue from, so a new one replaces it.
            _ = try DevCertificateAuthority.generate(directory: dir, now: now.addingTimeInterval(340 * 86_400))
            #expect(try String(contentsOfFile: first.caCertificate, encoding: .utf8) != ca)

            // A CA key that does not match its certificate is not reused either.
            let mismatched = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: mismatched) }
            let other = try DevCertificateAuthority.generate(directory: mismatched)
            let otherCA = try String(contentsOfFile: other.caCertificate, encoding: .utf8)
            try Data(caKey.utf8).write(to: URL(fileURLWithPath: other.caKey))
            _ = try DevCertificateAuthority.generate(directory: mismatched)
            #expect(try String(contentsOfFile: other.caCertificate, encoding: .utf8) != otherCA)
        }

        @Test func theServerCertificateNeverOutlivesItsCA() throws {
            let dir = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let now = Date()
            let first = try DevCertificateAuthority.generate(directory: dir, now: now)
            // 300 days on, the CA (365 days) has 65 left and is reused; a 90-day certificate would outlive it.
            let later = now.addingTimeInterval(300 * 86_400)
            _ = try DevCertificateAuthority.generate(directory: dir, now: later)
            let leaf = try TLSServerContext(configuration: TLSServerConfiguration(certificateChainPath: first.serverCertificate, privateKeyPath: first.serverKey))
            let days = leaf.certificateInfo.notAfter.timeIntervalSince(later) / 86_400
            #expect(days > 63 && days < 66, "\(days)")
        }

        @Test(arguments: ["bad name", "", "-leading.example", "x..y", "üñí.example"])
        func invalidExtraNamesAreRefused(name: String) throws {
            let dir = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let error = #expect(throws: TLSConfigurationError.self) {
                try DevCertificateAuthority.generate(directory: dir, extraDNSNames: [name])
            }
            #expect(error?.problem.contains("is not a valid DNS name") == true)
            #expect(!FileManager.default.fileExists(atPath: dir + "/dev-ca.pem"))
        }
    }
}
