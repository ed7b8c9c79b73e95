import CurlHTTP
import Foundation
import Testing

/// The client against `openssl s_server` with a throwaway self-signed certificate.
@Suite("CurlHTTPClient over TLS", .serialized, .timeLimit(.minutes(1)))
struct CurlHTTPClientTLSTests {
    @Test func verificationFailsWithoutTheCAAndSucceedsWithIt() async throws {
        let server = try await OpenSSLTestServer.start()
        do {
            try await checkVerification(against: server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    func checkVerification(against server: OpenSSLTestServer) async throws {
        let url = "https://127.0.0.1:\(server.port)/"

        let untrusting = try CurlHTTPClient()
        let untrusted = await #expect(throws: CurlHTTPError.self) { try await untrusting.execute(CurlHTTPRequest(url: url)) }
        #expect(untrusted?.kind == .tlsFailed)
        #expect(untrusted?.message.contains("certificate") == true, "\(String(describing: untrusted))")
        await untrusting.shutdown()

        var configuration = CurlHTTPClient.Configuration()
        configuration.caBundlePath = server.certificatePath
        let trusting = try CurlHTTPClient(configuration: configuration)
        // The certificate names both; the host name is checked as well as the chain.
        for host in ["127.0.0.1", "localhost", "127.0.0.1", "localhost"] {
            let response = try await trusting.execute(CurlHTTPRequest(url: "https://\(host):\(server.port)/"))
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self).contains("s_server"))
        }
        await trusting.shutdown()

        var insecure = CurlHTTPClient.Configuration()
        insecure.verifyPeer = false
        let unverifying = try CurlHTTPClient(configuration: insecure)
        #expect(try await unverifying.execute(CurlHTTPRequest(url: url)).status == 200)
        await unverifying.shutdown()

        var missing = CurlHTTPClient.Configuration()
        missing.caBundlePath = "/nonexistent/ca.pem"
        let misconfigured = try CurlHTTPClient(configuration: missing)
        let badFile = await #expect(throws: CurlHTTPError.self) { try await misconfigured.execute(CurlHTTPRequest(url: url)) }
        #expect(badFile?.kind == .tlsFailed, "\(String(describing: badFile))")
        await misconfigured.shutdown()
    }
}
