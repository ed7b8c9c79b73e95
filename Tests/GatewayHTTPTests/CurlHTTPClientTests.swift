import CurlHTTP
import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing

/// The libcurl client against the real gateway over TLS (and a socket that never answers).
@Suite("CurlHTTP client", .serialized)
struct CurlHTTPClientTests {
    func client(_ gateway: GatewayHarness, configure: (inout CurlHTTPClient.Configuration) -> Void = { _ in }) throws -> CurlHTTPClient {
        var configuration = CurlHTTPClient.Configuration()
        configuration.caBundlePath = gateway.certificates.caCertificate
        configure(&configuration)
        return try CurlHTTPClient(configuration: configuration)
    }

    @Test func getsOverVerifiedTLSAndReusesTheConnection() async throws {
        let gateway = try await GatewayHarness()
        let http = try client(gateway)
        let before = gateway.tlsContext.handshakesCompleted
        for _ in 0..<10 {
            let response = try await http.execute(
                CurlHTTPRequest(
                    url: "https://localhost:\(gateway.port)/admin/health",
                    headers: [CurlHTTPHeader("Authorization", "Bearer \(gateway.adminToken)")]
                ))
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json")
            #expect(String(decoding: response.body, as: UTF8.self).contains(#""checks""#))
            #expect(response.httpVersion == "HTTP/1.1")
        }
        #expect(gateway.tlsContext.handshakesCompleted - before == 1, "10 sequential requests should share one connection")
        await http.shutdown()
        await gateway.shutdown()
    }

    @Test func runsRequestsConcurrently() async throws {
        let gateway = try await GatewayHarness()
        let http = try client(gateway)
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<30 {
                group.addTask {
                    try await http.execute(CurlHTTPRequest(url: "https://127.0.0.1:\(gateway.port)/admin/health")).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.count == 30)
        #expect(statuses.allSatisfy { $0 == 200 })
        await http.shutdown()
        await gateway.shutdown()
    }

    @Test func sendsMethodsHeadersAndBodies() async throws {
        let gateway = try await GatewayHarness()
        let http = try client(gateway)
        // The admin routes take no body: a body gets 413 (proves the body was sent), an unknown method 404.
        let post = try await http.execute(CurlHTTPRequest(method: "GET", url: "https://127.0.0.1:\(gateway.port)/admin/health", body: Array(repeating: 0x41, count: 10)))
        #expect(post.status == 413)
        let delete = try await http.execute(CurlHTTPRequest(method: "DELETE", url: "https://127.0.0.1:\(gateway.port)/admin/health"))
        #expect(delete.status == 404 || delete.status == 405)
        let head = try await http.execute(CurlHTTPRequest(method: "HEAD", url: "https://127.0.0.1:\(gateway.port)/admin/health"))
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        await http.shutdown()
        await gateway.shutdown()
    }

    @Test func failsClearlyOnEveryKindOfBadOutcome() async throws {
        let gateway = try await GatewayHarness()
        // Without the dev CA the certificate does not verify.
        let untrusting = try CurlHTTPClient()
        await #expect { try await untrusting.execute(CurlHTTPRequest(url: "https://127.0.0.1:\(gateway.port)/admin/health")) } throws: {
            ($0 as? CurlHTTPError)?.kind == .tlsFailed
        }
        await untrusting.shutdown()

        let http = try client(gateway) { $0.maxResponseBodyBytes = 64 }
        await #expect { try await http.execute(CurlHTTPRequest(url: "https://127.0.0.1:\(gateway.port)/admin/metrics", headers: [CurlHTTPHeader("Authorization", "Bearer \(gateway.adminToken)")])) } throws: {
            ($0 as? CurlHTTPError)?.kind == .responseTooLarge
        }
        await #expect { try await http.execute(CurlHTTPRequest(url: "ftp://127.0.0.1/x")) } throws: {
            ($0 as? CurlHTTPError)?.kind == .invalidURL
        }
        // A port nobody listens on.
        let closedPort = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let refusedPort = closedPort.localAddress?.port ?? 1
        try await closedPort.close()
        await #expect { try await http.execute(CurlHTTPRequest(url: "http://127.0.0.1:\(refusedPort)/?token=secret")) } throws: {
            guard let error = $0 as? CurlHTTPError else { return false }
            return error.kind == .connectFailed && !error.message.contains("secret")
        }
        // A server that accepts and never answers: the per-request timeout fires in milliseconds, not whole seconds.
        let silent = try SilentListener(accepting: true)
        let start = ContinuousClock.now
        await #expect { try await http.execute(CurlHTTPRequest(url: "http://127.0.0.1:\(silent.port)/", timeout: .milliseconds(300))) } throws: {
            ($0 as? CurlHTTPError)?.kind == .timeout
        }
        #expect(ContinuousClock.now - start < .milliseconds(1500))

        // Cancellation stops a slow request promptly.
        let task = Task { try await http.execute(CurlHTTPRequest(url: "http://127.0.0.1:\(silent.port)/", timeout: .seconds(30))) }
        try await Task.sleep(for: .milliseconds(100))
        let cancelStart = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - cancelStart < .seconds(2))
        // The listener must outlive both requests: closing it resets the connections queued on it.
        withExtendedLifetime(silent) {}

        await http.shutdown()
        await #expect { try await http.execute(CurlHTTPRequest(url: "https://127.0.0.1:\(gateway.port)/admin/health")) } throws: {
            ($0 as? CurlHTTPError)?.kind == .shutDown
        }
        await gateway.shutdown()
    }
}
