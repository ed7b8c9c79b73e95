import Foundation
import GatewayCore
import GatewayHTTP
import TestSupport
import Testing

/// The whole gateway over real TLS on loopback: admin endpoints, the token rule, HTTP limits.
@Suite("Gateway over TLS", .serialized)
struct GatewayEndToEndTests {
    @Test func healthAnswersStatusOnlyWithoutTheToken() async throws {
        let gateway = try await GatewayHarness()
        let url = "https://127.0.0.1:\(gateway.port)/admin/health"
        let ca = gateway.certificates.caCertificate

        let anonymous = try await curlRequest(url, caFile: ca)
        #expect(anonymous.status == 200)
        #expect(anonymous.body == #"{"status":"ok"}"#)

        for bad in ["Bearer wrong-token", "Bearer \(gateway.adminToken)x", "Basic \(gateway.adminToken)", "Bearer", ""] {
            let response = try await curlRequest(url, caFile: ca, arguments: ["-H", "Authorization: \(bad)"])
            #expect(response.status == 200)
            #expect(response.body == #"{"status":"ok"}"#, "token \(bad) revealed more")
        }

        let admin = try await curlRequest(url, caFile: ca, arguments: ["-H", "Authorization: Bearer \(gateway.adminToken)"])
        #expect(admin.status == 200)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(admin.body.utf8)) as? [String: Any])
        #expect(document["status"] as? String == "ok")
        #expect(document["version"] as? String == "test")
        #expect(document["uptime_s"] is Int)
        let checks = try #require(document["checks"] as? [String: [String: Any]])
        #expect(checks["database"]?["writable"] as? Bool == true)
        #expect((checks["certificate"]?["days_to_expiry"] as? Int ?? 0) > 30)
        #expect(checks["inbox"]?["backlog"] as? Int == 0)
        #expect(checks["tls"] != nil)

        let head = try await curlRequest(url, caFile: ca, arguments: ["-I"])
        #expect(head.status == 200)
        await gateway.shutdown()
    }

    @Test func healthFailsWith503WhenTheDatabaseCannotBeWritten() async throws {
        let gateway = try await GatewayHarness()
        await gateway.store.close()
        let url = "https://127.0.0.1:\(gateway.port)/admin/health"
        let anonymous = try await curlRequest(url, caFile: gateway.certificates.caCertificate)
        #expect(anonymous.status == 503)
        #expect(anonymous.body == #"{"status":"failing"}"#)
        let admin = try await curlRequest(
            url, caFile: gateway.certificates.caCertificate, arguments: ["-H", "Authorization: Bearer \(gateway.adminToken)"]
        )
        #expect(admin.status == 503)
        #expect(admin.body.contains(#""writable":false"#))
        await gateway.shutdown()
    }

    @Test func healthIsDegradedWhenTheCertificateIsAboutToExpire() async throws {
        // Dev certificates live 90 days; a 120-day warning window makes this one "about to expire".
        let gateway = try await GatewayHarness { $0.health.certificateWarningDays = 120 }
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/admin/health", caFile: gateway.certificates.caCertificate
        )
        #expect(response.status == 200)
        #expect(response.body == #"{"status":"degraded"}"#)
        await gateway.shutdown()
    }

    @Test func metricsNeedTheAdminToken() async throws {
        let gateway = try await GatewayHarness()
        let url = "https://127.0.0.1:\(gateway.port)/admin/metrics"
        let ca = gateway.certificates.caCertificate
        let anonymous = try await curlRequest(url, caFile: ca)
        #expect(anonymous.status == 401)
        #expect(anonymous.headers.lowercased().contains("www-authenticate: bearer"))
        let wrong = try await curlRequest(url, caFile: ca, arguments: ["-H", "Authorization: Bearer nope"])
        #expect(wrong.status == 401)
        _ = try await curlRequest("https://127.0.0.1:\(gateway.port)/admin/health", caFile: ca)
        let admin = try await curlRequest(url, caFile: ca, arguments: ["-H", "Authorization: Bearer \(gateway.adminToken)"])
        #expect(admin.status == 200)
        #expect(admin.headers.contains("text/plain; version=0.0.4"))
        #expect(admin.body.contains(#"calgate_http_requests_total{handler="admin.health",status="2xx"}"#))
        #expect(admin.body.contains(#"calgate_verification_rejected_total{verifier="admin_token",reason="bad_admin_token"} 2"#))
        #expect(admin.body.contains("calgate_tls_handshakes_total"))
        await gateway.shutdown()
    }

    @Test func unknownRouteIs404AsJSON() async throws {
        let gateway = try await GatewayHarness()
        let response = try await curlRequest("https://127.0.0.1:\(gateway.port)/nope", caFile: gateway.certificates.caCertificate)
        #expect(response.status == 404)
        #expect(response.body.contains(#""code":"not_found""#))
        await gateway.shutdown()
    }

    @Test func malformedRequestGets400AndClose() async throws {
        let gateway = try await GatewayHarness()
        for garbage in ["GARBAGE\r\n\r\n", "GET /admin/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "GET / HTTP/9.9\r\n\r\n"] {
            let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
            client.send(garbage)
            #expect(await client.waitFor("HTTP/1.1 400"), "no 400 for \(garbage.debugDescription): \(client.text)")
            #expect(await client.waitForClose())
            client.close()
        }
        await gateway.shutdown()
    }

    @Test func oversizedHeadersAreRefused() async throws {
        let gateway = try await GatewayHarness { $0.limits.maxHeaderBytes = 4096 }
        let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        client.send("GET /admin/health HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 8000))\r\n\r\n")
        #expect(await client.waitFor("HTTP/1.1 4"))
        #expect(await client.waitForClose())
        client.close()
        await gateway.shutdown()
    }

    @Test func oversizedBodyGets413AndClose() async throws {
        let gateway = try await GatewayHarness()
        // Declared too large: refused before reading it.
        let declared = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        declared.send("GET /admin/health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        #expect(await declared.waitFor("HTTP/1.1 413"))
        #expect(await declared.waitFor("payload_too_large"))
        #expect(await declared.waitForClose())
        declared.close()
        // Chunked, no length: refused once the body passes the limit.
        let chunked = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        chunked.send("GET /admin/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        #expect(await chunked.waitFor("HTTP/1.1 413"))
        #expect(await chunked.waitForClose())
        chunked.close()
        await gateway.shutdown()
    }

    @Test func aClientSendingHeadersOneBytePerSecondIsCut() async throws {
        let gateway = try await GatewayHarness { $0.limits.headerTimeoutSeconds = 2 }
        let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        let request = Array("GET /admin/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: \(String(repeating: "s", count: 40))\r\n\r\n".utf8)
        let start = ContinuousClock.now
        var sent = 0
        while !client.isClosed, sent < request.count, ContinuousClock.now - start < .seconds(8) {
            client.send([request[sent]])
            sent += 1
            try await Task.sleep(for: .seconds(1))
        }
        #expect(await client.waitForClose(timeout: .seconds(3)))
        #expect(ContinuousClock.now - start < .seconds(6), "slow client was not cut near the 2 s head deadline")
        #expect(sent < request.count)
        #expect(client.text.contains("408"))
        client.close()
        // Other clients are unaffected.
        let ok = try await curlRequest("https://127.0.0.1:\(gateway.port)/admin/health", caFile: gateway.certificates.caCertificate)
        #expect(ok.status == 200)
        await gateway.shutdown()
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        let gateway = try await GatewayHarness()
        let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        for _ in 0..<3 {
            client.send("GET /admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while client.text.components(separatedBy: "HTTP/1.1 200").count < 4, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(client.text.components(separatedBy: "HTTP/1.1 200").count == 4)
        #expect(!client.isClosed)
        client.close()
        await gateway.shutdown()
    }
}

/// Connection-level limits: idle keep-alive, body read deadline, connection cap.
@Suite("Gateway connection limits", .serialized)
struct GatewayConnectionLimitTests {
    @Test func idleKeepAliveConnectionsAreClosed() async throws {
        let gateway = try await GatewayHarness { $0.limits.idleTimeoutSeconds = 1 }
        let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        client.send("GET /admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(await client.waitFor("HTTP/1.1 200"))
        #expect(await client.waitForClose(timeout: .seconds(5)))
        client.close()
        await gateway.shutdown()
    }

    @Test func aBodyThatNeverArrivesIsCut() async throws {
        let gateway = try await GatewayHarness { $0.limits.bodyTimeoutSeconds = 1 }
        let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        let start = ContinuousClock.now
        // A chunked body that starts and then stalls: within the route's limit, so only the deadline stops it.
        client.send("GET /admin/health HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0")
        #expect(await client.waitForClose(timeout: .seconds(6)))
        #expect(ContinuousClock.now - start < .seconds(5))
        client.close()
        await gateway.shutdown()
    }

    @Test func connectionsBeyondTheCapWaitUntilOneCloses() async throws {
        let gateway = try await GatewayHarness { $0.limits.maxConnections = 2 }
        let ca = gateway.certificates.caCertificate
        let first = try RawTLSClient(port: gateway.port, caFile: ca)
        let second = try RawTLSClient(port: gateway.port, caFile: ca)
        for client in [first, second] {
            client.send("GET /admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(await client.waitFor("HTTP/1.1 200"))
        }
        let refused = try await curlRequest("https://127.0.0.1:\(gateway.port)/admin/health", caFile: ca, arguments: ["--max-time", "1"])
        #expect(refused.status == 0, "a third connection was served while two were open")
        first.close()
        // The slot frees once the server has seen the close; the connection that gave up may be accepted first.
        var served = 0
        for _ in 0..<5 where served != 200 {
            served = try await curlRequest("https://127.0.0.1:\(gateway.port)/admin/health", caFile: ca, arguments: ["--max-time", "3"]).status
        }
        #expect(served == 200)
        second.close()
        await gateway.shutdown()
    }
}
