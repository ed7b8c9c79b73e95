import Foundation
import NIOCore
import TLSTestClient
import Testing
@testable import OpenSSLTLS

extension OpenSSLTLSTests {
    /// Loading, checking and reloading certificates.
    @Suite struct ServerContext {
        @Test func badFilesNameTheFileAndTheProblem() throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            let other = try CertificateFixture()
            defer { other.remove() }
            let dir = certs.directory
            let cert = certs.paths.serverCertificate
            let key = certs.paths.serverKey
            func file(_ name: String, _ text: String) -> String {
                let path = dir + "/" + name
                _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
                return path
            }
            let notPEM = file("notpem.txt", "this is not a certificate\n")
            let brokenPEM = file("broken.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
            let empty = file("empty.pem", "")
            let otherPEM = file("csr.pem", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
            try runOpenSSL(["pkey", "-in", key, "-aes256", "-passout", "pass:secret", "-out", dir + "/encrypted.key"])

            // (certificate, key, file the error must name, words the problem must contain)
            let cases: [(String, String, String, String)] = [
                (dir + "/missing.pem", key, dir + "/missing.pem", "certificate file does not exist"),
                (cert, dir + "/missing.key", dir + "/missing.key", "private key file does not exist"),
                (dir, key, dir, "is a directory"),
                (cert, dir, dir, "is a directory"),
                (empty, key, empty, "is empty"),
                (notPEM, key, notPEM, "is not PEM"),
                (brokenPEM, key, brokenPEM, "is not a readable PEM certificate chain"),
                (otherPEM, key, otherPEM, "holds no certificate"),
                (key, key, key, "holds a private key, not a certificate"),
                (cert, cert, cert, "holds a certificate, not a private key"),
                (cert, notPEM, notPEM, "is not PEM"),
                (cert, dir + "/encrypted.key", dir + "/encrypted.key", "encrypted"),
                (cert, other.paths.serverKey, other.paths.serverKey, "private key does not match the certificate in \(cert)"),
            ]
            for (certificate, privateKey, blamed, problem) in cases {
                let error = #expect(throws: TLSConfigurationError.self, "\(certificate) + \(privateKey)") {
                    try TLSServerContext(configuration: TLSServerConfiguration(certificateChainPath: certificate, privateKeyPath: privateKey))
                }
                guard let error else { continue }
                #expect(error.file == blamed, "\(error)")
                #expect(error.problem.contains(problem), "\(error)")
                #expect(error.description == "\(blamed): \(error.problem)")
                // Never echo what the files hold (a key's body above all).
                for path in [certificate, privateKey] {
                    let lines = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
                    for line in lines where !line.hasPrefix("-----") && line.count > 3 {
                        #expect(!error.description.contains(line), "\(error) echoes \(line)")
                    }
                }
            }
        }

        @Test func anRSAKeyBesideAnECDSACertificateIsAMismatch() throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            let rsaKey = certs.directory + "/rsa.key"
            try runOpenSSL(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsaKey])
            let error = #expect(throws: TLSConfigurationError.self) {
                try TLSServerContext(configuration: TLSServerConfiguration(certificateChainPath: certs.paths.serverCertificate, privateKeyPath: rsaKey))
            }
            #expect(error?.file == rsaKey)
            #expect(error?.problem == "private key does not match the certificate in \(certs.paths.serverCertificate)")
        }

        @Test func certificateInfoDescribesTheLeaf() throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            let info = try TLSServerContext(configuration: certs.configuration()).certificateInfo
            #expect(info.subject == "CN=calgate dev server,O=calgate development")
            #expect(info.sha256Fingerprint.count == 64)
            #expect(info.sha256Fingerprint.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            let days = info.notAfter.timeIntervalSinceNow / 86_400
            #expect(days > 89 && days < 91)
            #expect(!info.isExpired())
        }

        @Test func anExpiredCertificateLoadsAndIsReportedAsExpired() async throws {
            // Issued 200 days ago for 90 days: expired 110 days ago (its CA, valid a year, is not).
            let certs = try CertificateFixture(now: Date().addingTimeInterval(-200 * 86_400))
            defer { certs.remove() }
            let context = try TLSServerContext(configuration: certs.configuration())
            #expect(context.certificateInfo.isExpired())
            #expect(context.certificateInfo.notAfter < Date().addingTimeInterval(-100 * 86_400))
            try await TLSTestServer.with(context: context) { server throws in
                let error = #expect(throws: TLSTestClientError.handshakeFailed) {
                    try TLSTestClient.connect(port: server.port, options: certs.verifyingClient())
                }
                #expect(error?.message.contains("certificate has expired") == true, "\(String(describing: error))")
                // Clients that do not verify still get through: refusing to start would be worse than serving.
                #expect(try TLSTestClient.connect(port: server.port).echo("ok") == "echo:ok")
            }
        }

        @Test func reloadServesTheNewCertificateWhileAnOldConnectionKeepsWorking() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            let replacement = try CertificateFixture()
            defer { replacement.remove() }
            let context = try TLSServerContext(configuration: certs.configuration())
            let oldFingerprint = context.certificateInfo.sha256Fingerprint
            try await TLSTestServer.with(context: context) { server throws in
                let old = try TLSTestClient.connect(port: server.port, options: certs.verifyingClient())
                #expect(try old.echo("before") == "echo:before")

                // A certificate from another CA, copied over the configured files, as an operator's renewal would.
                for (from, to) in [(replacement.paths.serverKey, certs.paths.serverKey), (replacement.paths.serverCertificate, certs.paths.serverCertificate)] {
                    try FileManager.default.removeItem(atPath: to)
                    try FileManager.default.copyItem(atPath: from, toPath: to)
                }
                try context.reload()
                let newFingerprint = context.certificateInfo.sha256Fingerprint
                #expect(newFingerprint != oldFingerprint)

                let fresh = try TLSTestClient.connect(port: server.port, options: replacement.verifyingClient())
                #expect(fresh.peerCertificateSHA256 == newFingerprint)
                #expect(try fresh.echo("fresh") == "echo:fresh")
                #expect(throws: TLSTestClientError.handshakeFailed) {
                    try TLSTestClient.connect(port: server.port, options: certs.verifyingClient())
                }

                #expect(try old.echo("after") == "echo:after")
                #expect(old.peerCertificateSHA256 == oldFingerprint)
                try old.write("quit")
                #expect(try old.readUntilClose() == Array("bye\n".utf8))
                #expect(old.receivedCloseNotify)
            }
        }

        @Test func aFailedReloadKeepsServingTheCurrentCertificate() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            let other = try CertificateFixture()
            defer { other.remove() }
            let context = try TLSServerContext(configuration: certs.configuration())
            let before = context.certificateInfo
            try await TLSTestServer.with(context: context) { server throws in
                let validKey = try Data(contentsOf: URL(fileURLWithPath: certs.paths.serverKey))
                let validCertificate = try Data(contentsOf: URL(fileURLWithPath: certs.paths.serverCertificate))

                try Data(contentsOf: URL(fileURLWithPath: other.paths.serverKey)).write(to: URL(fileURLWithPath: certs.paths.serverKey))
                let mismatch = #expect(throws: TLSConfigurationError.self) { try context.reload() }
                #expect(mismatch?.file == certs.paths.serverKey)
                try validKey.write(to: URL(fileURLWithPath: certs.paths.serverKey))

                try Data("garbage".utf8).write(to: URL(fileURLWithPath: certs.paths.serverCertificate))
                let garbage = #expect(throws: TLSConfigurationError.self) { try context.reload() }
                #expect(garbage?.file == certs.paths.serverCertificate)

                try FileManager.default.removeItem(atPath: certs.paths.serverCertificate)
                let missing = #expect(throws: TLSConfigurationError.self) { try context.reload() }
                #expect(missing?.problem.contains("does not exist") == true)

                #expect(context.certificateInfo == before)
                let client = try TLSTestClient.connect(port: server.port, options: certs.verifyingClient())
                #expect(client.peerCertificateSHA256 == before.sha256Fingerprint)
                #expect(try client.echo("still") == "echo:still")

                try validCertificate.write(to: URL(fileURLWithPath: certs.paths.serverCertificate))
                try context.reload()
                #expect(context.certificateInfo == before)
            }
        }
    }
}
