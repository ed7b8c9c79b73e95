import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing
@testable import OpenSSLTLS

@Suite("OpenSSL TLS handler", .serialized)
struct OpenSSLTLSTests {
    func makeServer(_ dir: String) async throws -> (TLSTestServer, DevCertificatePaths) {
        let paths = try DevCertificateAuthority.generate(directory: dir + "/certs")
        let context = try TLSServerContext(configuration: TLSServerConfiguration(
            certificateChainPath: paths.serverCertificate, privateKeyPath: paths.serverKey, handshakeTimeout: .seconds(1)
        ))
        return (try await TLSTestServer(context: context), paths)
    }

    @Test func tls13HandshakeServesDataWithALPN() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, paths) = try await makeServer(dir)
        let output = try await sClient(port: server.port, arguments: [
            "-tls1_3", "-alpn", "h2,http/1.1", "-CAfile", paths.caCertificate, "-verify_return_error", "-servername", "localhost",
        ])
        #expect(output.contains("echo:hello"))
        #expect(output.contains("Verify return code: 0 (ok)"))
        #expect(output.contains("ALPN protocol: http/1.1"))
        #expect(output.contains("TLSv1.3"))
        let events = server.events.withLockedValue { $0 }
        #expect(events.first?.protocolVersion == "TLSv1.3")
        #expect(events.first?.negotiatedALPN == "http/1.1")
        #expect(server.context.handshakesCompleted == 1)
        await server.stop()
    }

    @Test func tls12WithAnECDHEAEADSuite() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, paths) = try await makeServer(dir)
        for suite in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"] {
            let output = try await sClient(port: server.port, arguments: ["-tls1_2", "-cipher", suite, "-CAfile", paths.caCertificate])
            #expect(output.contains("echo:hello"), "\(suite): \(output)")
            #expect(output.contains("Cipher is \(suite)"))
            #expect(output.contains("Compression: NONE"))
            #expect(output.contains("Secure Renegotiation IS supported") || output.contains("Secure Renegotiation IS NOT supported"))
        }
        await server.stop()
    }

    @Test(arguments: ["-tls1", "-tls1_1"])
    func oldProtocolsAreRefusedAndCounted(flag: String) async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, _) = try await makeServer(dir)
        let output = try await sClient(port: server.port, arguments: [flag, "-cipher", "ALL:@SECLEVEL=0"])
        #expect(!output.contains("echo:hello"))
        #expect(output.contains("alert") || output.contains("protocol version"))
        try await Task.sleep(for: .milliseconds(100))
        #expect(server.context.handshakeFailures >= 1)
        #expect(server.context.handshakesCompleted == 0)
        await server.stop()
    }

    @Test func nonAEADSuitesAreRefused() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, _) = try await makeServer(dir)
        let output = try await sClient(port: server.port, arguments: [
            "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:AES128-GCM-SHA256",
        ])
        #expect(!output.contains("echo:hello"))
        #expect(output.contains("handshake failure"))
        #expect(server.context.handshakesCompleted == 0)
        await server.stop()
    }

    @Test func serverSendsCloseNotifyWhenItCloses() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, paths) = try await makeServer(dir)
        let output = try await sClient(port: server.port, arguments: ["-msg", "-CAfile", paths.caCertificate, "-ign_eof"], input: "quit\n")
        #expect(output.contains("bye"))
        #expect(output.contains("close_notify"))
        await server.stop()
    }

    @Test func clientCloseNotifyIsAnswered() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, paths) = try await makeServer(dir)
        // Without -ign_eof, s_client sends close_notify at end of input; the server answers with its own.
        let output = try await sClient(port: server.port, arguments: ["-msg", "-CAfile", paths.caCertificate], input: "x\n")
        let alerts = output.components(separatedBy: "\n").filter { $0.contains("close_notify") || $0.contains("Alert") }
        #expect(output.contains("echo:x"))
        #expect(!alerts.isEmpty, "\(output)")
        await server.stop()
    }

    @Test func aClientThatNeverHandshakesIsCutAndCounted() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, _) = try await makeServer(dir)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: server.port).get()
        let start = ContinuousClock.now
        try await client.closeFuture.get()
        #expect(ContinuousClock.now - start < .seconds(4))
        #expect(server.context.handshakeFailures == 1)
        try await group.shutdownGracefully()
        await server.stop()
    }

    @Test func reloadServesTheNewCertificateWhileAnOldConnectionKeepsWorking() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, first) = try await makeServer(dir)
        let oldFingerprint = server.context.certificateInfo.sha256Fingerprint
        // An old connection opened before the reload.
        let old = try RawTLSClient(port: server.port, caFile: first.caCertificate)
        old.send("before\n")
        #expect(await old.waitFor("echo:before"))

        // New certificate from another CA, written over the same files.
        let second = try DevCertificateAuthority.generate(directory: dir + "/other")
        try FileManager.default.removeItem(atPath: first.serverCertificate)
        try FileManager.default.removeItem(atPath: first.serverKey)
        try FileManager.default.copyItem(atPath: second.serverCertificate, toPath: first.serverCertificate)
        try FileManager.default.copyItem(atPath: second.serverKey, toPath: first.serverKey)
        try server.context.reload()
        #expect(server.context.certificateInfo.sha256Fingerprint != oldFingerprint)

        let fresh = try await sClient(port: server.port, arguments: ["-CAfile", second.caCertificate, "-verify_return_error"])
        #expect(fresh.contains("echo:hello"))
        let stale = try await sClient(port: server.port, arguments: ["-CAfile", first.caCertificate, "-verify_return_error"])
        #expect(!stale.contains("echo:hello"))

        old.send("after\n")
        #expect(await old.waitFor("echo:after"))
        old.close()

        // A broken file is refused and the current certificate stays.
        _ = FileManager.default.createFile(atPath: first.serverCertificate, contents: Data("garbage".utf8))
        #expect(throws: TLSConfigurationError.self) { try server.context.reload() }
        let still = try await sClient(port: server.port, arguments: ["-CAfile", second.caCertificate, "-verify_return_error"])
        #expect(still.contains("echo:hello"))
        await server.stop()
    }

    @Test func badFilesNameTheFileAndTheProblem() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try DevCertificateAuthority.generate(directory: dir + "/a")
        let b = try DevCertificateAuthority.generate(directory: dir + "/b")
        _ = FileManager.default.createFile(atPath: dir + "/garbage.pem", contents: Data("-----BEGIN CERTIFICATE-----\nnope\n".utf8))
        let cases: [(String, String, String, String)] = [
            (dir + "/none.pem", a.serverKey, dir + "/none.pem", "does not exist"),
            (a.serverCertificate, dir + "/none.key", dir + "/none.key", "does not exist"),
            (dir, a.serverKey, dir, "is a directory"),
            (dir + "/garbage.pem", a.serverKey, dir + "/garbage.pem", "is not a PEM certificate chain"),
            (a.serverCertificate, dir + "/garbage.pem", dir + "/garbage.pem", "is not a PEM private key"),
            (a.serverCertificate, b.serverKey, b.serverKey, "does not match the certificate"),
        ]
        for (cert, key, file, problem) in cases {
            do {
                _ = try TLSServerContext(configuration: TLSServerConfiguration(certificateChainPath: cert, privateKeyPath: key))
                Issue.record("accepted \(cert) + \(key)")
            } catch let error as TLSConfigurationError {
                #expect(error.file == file)
                #expect(error.problem.contains(problem), "\(error)")
                #expect(error.description.hasPrefix(file))
            }
        }
    }

    @Test func devCertificatesVerifyForEveryLocalNameAndReuseTheCA() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let paths = try DevCertificateAuthority.generate(directory: dir, extraDNSNames: ["gateway.test"])
        for key in [paths.caKey, paths.serverKey] {
            let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
        let context = try TLSServerContext(configuration: TLSServerConfiguration(
            certificateChainPath: paths.serverCertificate, privateKeyPath: paths.serverKey
        ))
        let days = context.certificateInfo.notAfter.timeIntervalSinceNow / 86_400
        #expect(days > 89 && days < 91)
        for check in [["-verify_hostname", "localhost"], ["-verify_ip", "127.0.0.1"], ["-verify_ip", "::1"], ["-verify_hostname", "gateway.test"]] {
            let output = try await runOpenSSL(["verify", "-CAfile", paths.caCertificate] + check + [paths.serverCertificate])
            #expect(output.contains(": OK"), "\(check): \(output)")
        }
        let wrongName = try await runOpenSSL(["verify", "-CAfile", paths.caCertificate, "-verify_hostname", "example.com", paths.serverCertificate])
        #expect(!wrongName.contains(": OK"))
        let caBefore = try String(contentsOfFile: paths.caCertificate, encoding: .utf8)
        _ = try DevCertificateAuthority.generate(directory: dir)
        #expect(try String(contentsOfFile: paths.caCertificate, encoding: .utf8) == caBefore)
        #expect(throws: TLSConfigurationError.self) { try DevCertificateAuthority.generate(directory: dir, extraDNSNames: ["bad name"]) }
    }
}

func runOpenSSL(_ arguments: [String]) async throws -> String {
    try await ChildProcess.run("/usr/bin/openssl", arguments).output
}
