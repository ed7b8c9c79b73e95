import Foundation
import NIOCore
import TLSTestClient
import Testing
@testable import OpenSSLTLS

extension OpenSSLTLSTests {
    /// What the server agrees to, and what it refuses.
    @Suite struct Handshakes {
        @Test func tls13HandshakeExchangesDataAndReportsTheEvent() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port, options: certs.verifyingClient(.init(alpnProtocols: ["h2", "http/1.1"])))
                #expect(client.protocolVersion == "TLSv1.3")
                #expect(client.negotiatedALPN == "http/1.1")
                #expect(client.peerCertificateSHA256 == server.context.certificateInfo.sha256Fingerprint)
                #expect(try client.echo("hello") == "echo:hello")
                client.close()

                let events = server.recorder.snapshot.handshakes
                #expect(events == [TLSHandshakeCompletedEvent(protocolVersion: "TLSv1.3", cipher: client.cipher, negotiatedALPN: "http/1.1")])
                #expect(server.context.handshakesCompleted == 1)
                #expect(server.context.handshakeFailures == 0)
            }
        }

        @Test(arguments: ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"])
        func tls12WithAnECDHEAEADSuite(suite: String) async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(
                    port: server.port, options: certs.verifyingClient(.init(minimumVersion: .tls1_2, maximumVersion: .tls1_2, tls12Ciphers: suite))
                )
                #expect(client.protocolVersion == "TLSv1.2")
                #expect(client.cipher == suite)
                #expect(try client.echo("over 1.2") == "echo:over 1.2")
                #expect(server.recorder.snapshot.handshakes.first?.protocolVersion == "TLSv1.2")
            }
        }

        @Test(arguments: [TLSTestProtocolVersion.tls1_0, .tls1_1])
        func oldProtocolsAreRefusedAndCounted(version: TLSTestProtocolVersion) async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let error = #expect(throws: TLSTestClientError.self) {
                    try TLSTestClient.connect(port: server.port, options: .init(minimumVersion: version, maximumVersion: version))
                }
                #expect(error == .handshakeFailed)
                #expect(error?.message.contains("protocol version") == true, "\(String(describing: error))")
                #expect(await eventually { server.context.handshakeFailures == 1 })
                #expect(server.context.handshakesCompleted == 0)
                #expect(await eventually { server.recorder.snapshot.closedConnections == 1 })
            }
        }

        @Test(arguments: [
            "AES128-SHA", "AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256",
            "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:AES256-SHA256",
        ])
        func tls12ClientsOfferingOnlyNonAEADOrNonECDHESuitesAreRefused(ciphers: String) async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let error = #expect(throws: TLSTestClientError.self) {
                    try TLSTestClient.connect(port: server.port, options: .init(minimumVersion: .tls1_2, maximumVersion: .tls1_2, tls12Ciphers: ciphers))
                }
                #expect(error == .handshakeFailed)
                #expect(error?.message.contains("handshake failure") == true, "\(String(describing: error))")
                #expect(await eventually { server.context.handshakeFailures == 1 })
                #expect(server.context.handshakesCompleted == 0)
            }
        }

        @Test func alpnFollowsTheServerPreferenceAndIsOmittedWithoutAMatch() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration(alpn: ["http/1.1", "x-test"]))) { server throws in
                let cases: [([String], String?)] = [
                    (["http/1.1"], "http/1.1"),
                    (["x-test", "http/1.1"], "http/1.1"),
                    (["x-test"], "x-test"),
                    (["h2"], nil),
                    ([], nil),
                ]
                for (offered, expected) in cases {
                    let client = try TLSTestClient.connect(port: server.port, options: .init(alpnProtocols: offered))
                    #expect(client.negotiatedALPN == expected, "offered \(offered)")
                    #expect(try client.echo("alpn") == "echo:alpn")
                    client.close()
                }
                #expect(server.recorder.snapshot.handshakes.map(\.negotiatedALPN) == cases.map(\.1))
            }
        }

        @Test func theServerChoosesTheSuiteFromItsOwnPreferenceOrder() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let tls12 = try TLSTestClient.connect(
                    port: server.port,
                    options: .init(
                        minimumVersion: .tls1_2, maximumVersion: .tls1_2,
                        tls12Ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"
                    ))
                #expect(tls12.cipher == "ECDHE-ECDSA-AES128-GCM-SHA256")
                let tls13 = try TLSTestClient.connect(
                    port: server.port,
                    options: .init(
                        tls13Ciphersuites: "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
                    ))
                #expect(tls13.cipher == "TLS_AES_256_GCM_SHA384")
            }
        }

        @Test func compressionAndRenegotiationAreOffAndVersionsAreBounded() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            let context = try TLSServerContext(configuration: certs.configuration())
            let settings = context.appliedSettings
            #expect(settings.minimumVersion == 0x0303)
            #expect(settings.maximumVersion == 0x0304)
            #expect(settings.noCompression)
            #expect(settings.noRenegotiation)
            #expect(settings.serverCipherPreference)
            #expect(!settings.noTickets)
            #expect(!settings.sessionCacheOff)

            try await TLSTestServer.with(context: context) { server throws in
                for version in [TLSTestProtocolVersion.tls1_2, .tls1_3] {
                    let client = try TLSTestClient.connect(port: server.port, options: .init(minimumVersion: version, maximumVersion: version))
                    #expect(client.compression == nil)
                    #expect(client.keyExchangeGroup == "x25519", "ephemeral key exchange on the first group both offer")
                }
            }
        }

        @Test(arguments: [TLSTestProtocolVersion.tls1_2, .tls1_3])
        func sessionsResumeUnlessResumptionIsOff(version: TLSTestProtocolVersion) async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            for resumption in [true, false] {
                try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration(sessionResumption: resumption))) { server throws in
                    #expect(server.context.appliedSettings.noTickets == !resumption)
                    #expect(server.context.appliedSettings.sessionCacheOff == !resumption)

                    let first = try TLSTestClient.connect(port: server.port, options: .init(minimumVersion: version, maximumVersion: version))
                    _ = try first.echo("ticket")  // TLS 1.3 tickets arrive after the handshake
                    let session = first.session
                    try first.sendCloseNotify()
                    first.close()
                    if resumption { #expect(session != nil) }

                    let second = try TLSTestClient.connect(port: server.port, options: .init(minimumVersion: version, maximumVersion: version, session: session))
                    #expect(second.sessionReused == resumption, "\(version) resumption \(resumption)")
                    #expect(try second.echo("again") == "echo:again")
                }
            }
        }

        @Test func anRSACertificateServesECDHERSASuites() async throws {
            let dir = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try runOpenSSL([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/rsa.key", "-out", dir + "/rsa.pem",
                "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            ])
            let context = try TLSServerContext(configuration: TLSServerConfiguration(certificateChainPath: dir + "/rsa.pem", privateKeyPath: dir + "/rsa.key"))
            try await TLSTestServer.with(context: context) { server throws in
                let tls12 = try TLSTestClient.connect(
                    port: server.port,
                    options: .init(
                        minimumVersion: .tls1_2, maximumVersion: .tls1_2, tls12Ciphers: "ECDHE-RSA-AES256-GCM-SHA384",
                        caFile: dir + "/rsa.pem", expectedHostname: "localhost"
                    ))
                #expect(tls12.cipher == "ECDHE-RSA-AES256-GCM-SHA384")
                #expect(try tls12.echo("rsa") == "echo:rsa")
                let tls13 = try TLSTestClient.connect(port: server.port)
                #expect(tls13.protocolVersion == "TLSv1.3")
                #expect(throws: TLSTestClientError.handshakeFailed) {
                    try TLSTestClient.connect(port: server.port, options: .init(maximumVersion: .tls1_2, tls12Ciphers: "ECDHE-RSA-AES128-SHA256:AES256-SHA"))
                }
            }
        }
    }
}
