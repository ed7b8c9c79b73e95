import Foundation
import TLSTestClient
import Testing
@testable import OpenSSLTLS

extension OpenSSLTLSTests {
    /// The test client itself: what other test targets rely on when they reuse it.
    @Suite struct TestClient {
        @Test func readsHandOutWhatFollowsAMarkerLater() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                try client.write("hello world")
                #expect(try client.read(until: "hello") == "echo:hello")
                #expect(try client.read(exactly: 3) == Array(" wo".utf8))
                #expect(try client.read() == Array("rld".utf8))
            }
        }

        @Test func everyWaitEndsAtItsDeadline() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { server throws in
                let client = try TLSTestClient.connect(port: server.port)
                let start = ContinuousClock.now
                #expect(throws: TLSTestClientError.timedOut) { try client.read(timeout: .milliseconds(100)) }
                let error = #expect(throws: TLSTestClientError.timedOut) { try client.read(until: "never", timeout: .milliseconds(100)) }
                #expect(error?.message.contains("never") == true)
                #expect(!client.waitForTCPClose(timeout: .milliseconds(100)))
                let raw = try TLSTestClient.rawTCPConnect(port: server.port)
                #expect(throws: TLSTestClientError.timedOut) { try raw.read(timeout: .milliseconds(100)) }
                #expect(ContinuousClock.now - start < .seconds(2))
                #expect(try client.echo("still fine") == "echo:still fine")
            }
        }

        @Test func connectingToAClosedPortOrWithBadOptionsFailsClearly() async throws {
            let certs = try CertificateFixture()
            defer { certs.remove() }
            let port = try await TLSTestServer.with(context: TLSServerContext(configuration: certs.configuration())) { $0.port }
            let error = #expect(throws: TLSTestClientError.connectFailed) { try TLSTestClient.connect(port: port) }
            #expect(error?.message.contains("127.0.0.1:\(port)") == true, "\(String(describing: error))")
            #expect(throws: TLSTestClientError.invalidOptions) {
                try TLSTestClient.connect(port: port, options: .init(tls12Ciphers: "NO-SUCH-CIPHER"))
            }
        }
    }
}
