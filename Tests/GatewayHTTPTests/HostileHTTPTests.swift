import Foundation
import GatewayCore
import GatewayHTTP
import TestSupport
import Testing

/// Requests an attacker would send: smuggling shapes, header floods, bad bytes, hostile JSON, markup in the
/// Graph validation token, brute force against the verifiers. Each gets a clear 4xx or a close; meanwhile a
/// well-formed notification on another connection is still acknowledged and stored.
@Suite("Hostile HTTP", .serialized)
struct HostileHTTPTests {
    let channelID = "01234567-89ab-cdef-0123-456789abcdef"
    let token = "calendar=c1&nonce=8f14e45fceea167a5a36dedd4bea2543"
    let subscription = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
    let clientState = "cs-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

    func harness(configure: (inout GatewayConfiguration) -> Void = { _ in }) async throws -> GatewayHarness {
        let gateway = try await GatewayHarness(configure: configure)
        try await gateway.store.saveGoogleChannel(
            StoredGoogleChannel(
                id: channelID, resourceID: "res-42", sealedToken: try gateway.sealer.seal(Array(token.utf8), context: "google_channel:\(channelID)"),
                calendarKey: "conn-1/primary", expiresAt: Date().addingTimeInterval(3600), stoppedAt: nil
            ))
        try await gateway.store.saveGraphSubscription(
            StoredGraphSubscription(
                id: subscription, calendarKey: "ms-1/AAMkCal",
                sealedClientState: try gateway.sealer.seal(Array(clientState.utf8), context: "graph_subscription:\(subscription)"),
                expiresAt: Date().addingTimeInterval(86_400)
            ))
        return gateway
    }

    func pushHead(number: Int, token: String? = nil) -> String {
        "POST /webhooks/google HTTP/1.1\r\nHost: localhost\r\nX-Goog-Channel-ID: \(channelID)\r\nX-Goog-Channel-Token: \(token ?? self.token)\r\n"
            + "X-Goog-Resource-ID: res-42\r\nX-Goog-Resource-State: exists\r\nX-Goog-Message-Number: \(number)\r\n"
    }

    /// A well-formed push over curl (its own connection); returns the status.
    func push(_ gateway: GatewayHarness, number: Int, token: String? = nil) async throws -> (status: Int, headers: String) {
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/webhooks/google", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-X", "POST", "--data-binary", "", "-H", "X-Goog-Channel-ID: \(channelID)", "-H", "X-Goog-Channel-Token: \(token ?? self.token)",
                "-H", "X-Goog-Resource-ID: res-42", "-H", "X-Goog-Resource-State: exists", "-H", "X-Goog-Message-Number: \(number)",
            ])
        return (response.status, response.headers)
    }

    func storedPushNumbers(_ gateway: GatewayHarness) async throws -> Set<String> {
        Set(try await gateway.store.pending(limit: 1000).compactMap { $0.entry.dedupeKey?.split(separator: ":").last.map(String.init) })
    }

    @Test func smugglingShapesGet400AndACloseWhileAnHonestPushIsStored() async throws {
        let gateway = try await harness()
        // Each would let a second request hide in the body if two parsers disagreed about where it ends.
        let smuggled = "GET /admin/metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"
        let shapes: [(String, String)] = [
            ("Content-Length and Transfer-Encoding", pushHead(number: 1) + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("Transfer-Encoding and Content-Length", pushHead(number: 2) + "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n" + smuggled),
            ("two differing Content-Lengths", pushHead(number: 3) + "Content-Length: 0\r\nContent-Length: 52\r\n\r\n" + smuggled),
            ("two equal Content-Lengths with a comma", pushHead(number: 4) + "Content-Length: 0, 52\r\n\r\n" + smuggled),
            ("obsolete line folding", pushHead(number: 5) + "X-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
            ("obfuscated Transfer-Encoding", pushHead(number: 6) + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("space before the colon", pushHead(number: 7) + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("bare LF line endings", "POST /webhooks/google HTTP/1.1\nHost: x\nContent-Length: 0\n\n"),
            ("negative Content-Length", pushHead(number: 8) + "Content-Length: -1\r\n\r\n"),
        ]
        var clients: [(String, RawTLSClient)] = []
        for (name, bytes) in shapes {
            let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
            client.send(bytes)
            clients.append((name, client))
        }
        // At the same time, on its own connection: an honest push.
        #expect(try await push(gateway, number: 100).status == 200)
        for (name, client) in clients {
            #expect(await client.waitFor("HTTP/1.1 400"), "\(name): no 400: \(client.text.prefix(300).debugDescription)")
            #expect(await client.waitForClose(), "\(name): the connection stayed open")
            #expect(!client.text.contains("calgate_"), "\(name): the smuggled request was served")
            #expect(client.text.components(separatedBy: "HTTP/1.1 ").count == 2, "\(name): more than one answer")
            client.close()
        }
        #expect(try await storedPushNumbers(gateway) == ["100"], "only the honest push is stored")
        await gateway.shutdown()
    }

    @Test func headerFloodsAndBadBytesAreRefused() async throws {
        let gateway = try await harness { $0.limits.maxHeaderCount = 50 }
        let many = (0..<200).map { "X-H\($0): v\r\n" }.joined()
        let cases: [(String, [UInt8])] = [
            ("200 headers", Array((pushHead(number: 1) + many + "Content-Length: 0\r\n\r\n").utf8)),
            ("one 1 MiB header", Array((pushHead(number: 2) + "X-Big: " + String(repeating: "a", count: 1 << 20) + "\r\n\r\n").utf8)),
            ("invalid UTF-8 in the channel token", Array("POST /webhooks/google HTTP/1.1\r\nHost: x\r\nX-Goog-Channel-ID: \(channelID)\r\nX-Goog-Channel-Token: ".utf8) + [0xFF, 0xFE, 0xC0, 0xAF] + Array("\r\nX-Goog-Resource-ID: res-42\r\nX-Goog-Resource-State: exists\r\nX-Goog-Message-Number: 3\r\nContent-Length: 0\r\n\r\n".utf8)),
            ("invalid UTF-8 in the channel id", Array("POST /webhooks/google HTTP/1.1\r\nHost: x\r\nX-Goog-Channel-ID: ".utf8) + [0xFF, 0xFE] + Array("\r\nX-Goog-Channel-Token: \(token)\r\nX-Goog-Resource-ID: res-42\r\nX-Goog-Resource-State: exists\r\nX-Goog-Message-Number: 3\r\nContent-Length: 0\r\n\r\n".utf8)),
            ("a NUL in a header value", Array(pushHead(number: 4).utf8) + Array("X-Nul: a".utf8) + [0x00] + Array("b\r\nContent-Length: 0\r\n\r\n".utf8)),
            ("invalid UTF-8 in the path", Array("GET /admin/".utf8) + [0xFF, 0xFE] + Array(" HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
        ]
        for (name, bytes) in cases {
            let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
            client.send(bytes)
            // A 4xx, or, when the client is still writing megabytes the server refuses to read, a close (the reset
            // may discard the 431 before the client reads it).
            let answered = await client.waitFor("HTTP/1.1 4", timeout: .seconds(5))
            #expect(answered || client.isClosed, "\(name): neither a 4xx nor a close: \(client.text.prefix(200))")
            if !answered { #expect(await client.waitForClose(), "\(name): the connection stayed open") }
            #expect(!client.text.contains("HTTP/1.1 2"), "\(name) was accepted")
            client.close()
        }
        // Invalid UTF-8 inside a Google token header is simply a wrong token; inside a Graph body, not JSON.
        let graph = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/webhooks/microsoft", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@" + writeTemporary([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]),
            ])
        #expect(graph.status == 400)
        #expect(try await push(gateway, number: 101).status == 200, "the gateway still serves")
        #expect(try await storedPushNumbers(gateway) == ["101"])
        await gateway.shutdown()
    }

    @Test func deeplyNestedAndHugeJSONIsRefusedWithoutACrash() async throws {
        let gateway = try await harness()
        let ca = gateway.certificates.caCertificate
        let base = "https://127.0.0.1:\(gateway.port)"
        // 100,000 levels fit in Graph's 256 KiB limit; a recursive parser without a depth limit would overflow its stack.
        let deep = #"{"value":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        let nested = try await curlRequest(
            base + "/webhooks/microsoft", caFile: ca,
            arguments: [
                "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@" + writeTemporary(Array(deep.utf8)),
            ])
        #expect(nested.status == 400, "\(nested.body.prefix(200))")
        let deepObject = String(repeating: #"{"a":"#, count: 2500) + "1" + String(repeating: "}", count: 2500)
        let api = try await curlRequest(
            base + "/api/v1/connections", caFile: ca,
            arguments: [
                "-X", "POST", "-H", "Authorization: Bearer \(gateway.apiToken)", "--data-binary", "@" + writeTemporary(Array(deepObject.utf8)),
            ])
        #expect(api.status == 400, "\(api.body.prefix(200))")
        // Over the route's limit: 413 before it is read, and the connection closes.
        let huge = #"{"value":[""# + String(repeating: "x", count: 300 * 1024) + #""]}"#
        let tooBig = try await curlRequest(
            base + "/webhooks/microsoft", caFile: ca,
            arguments: [
                "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@" + writeTemporary(Array(huge.utf8)),
            ])
        #expect(tooBig.status == 413)
        // Within the limit but many items: refused by the item cap, not stored.
        let item = #"{"subscriptionId":"\#(subscription)","clientState":"\#(clientState)","changeType":"updated","resource":"r"}"#
        let wide = #"{"value":["# + Array(repeating: item, count: 2000).joined(separator: ",") + "]}"
        let many = try await curlRequest(
            base + "/webhooks/microsoft", caFile: ca,
            arguments: [
                "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@" + writeTemporary(Array(wide.utf8)),
            ])
        #expect(many.status == 400 || many.status == 413, "\(many.status) \(many.body.prefix(200))")
        #expect(try await push(gateway, number: 102).status == 200)
        #expect(try await storedPushNumbers(gateway) == ["102"])
        await gateway.shutdown()
    }

    @Test func aValidationTokenCarryingMarkupIsEchoedOnlyAsPlainText() async throws {
        let gateway = try await harness()
        let url = "https://127.0.0.1:\(gateway.port)/webhooks/microsoft?validationToken="
        let markup = try await curlRequest(url + "%3Cscript%3Ealert(1)%3C%2Fscript%3E", caFile: gateway.certificates.caCertificate, arguments: ["-X", "POST"])
        #expect(markup.status == 200)
        #expect(markup.body == "<script>alert(1)</script>")
        let headers = markup.headers.lowercased()
        #expect(headers.contains("content-type: text/plain; charset=utf-8"))
        #expect(headers.contains("x-content-type-options: nosniff"))
        #expect(!headers.contains("text/html"))
        // Header splitting through the echo: refused.
        for hostile in ["a%0d%0aSet-Cookie:%20x=1", "a%0aX-Injected:%201", "a%00b"] {
            let response = try await curlRequest(url + hostile, caFile: gateway.certificates.caCertificate, arguments: ["-X", "POST"])
            #expect(response.status == 400, "\(hostile)")
            #expect(!response.headers.lowercased().contains("set-cookie"))
            #expect(!response.headers.lowercased().contains("x-injected"))
        }
        await gateway.shutdown()
    }

    @Test func failedVerificationsAreRateLimitedPerAddressWithoutSlowingHonestPushes() async throws {
        let gateway = try await harness {
            $0.limits.verificationFailureBurst = 3
            // Long enough that a slow, loaded machine cannot refill the bucket between the requests below.
            $0.limits.verificationFailureRefillSeconds = 8
        }
        // Honest pushes never spend the budget.
        for number in 1...20 { #expect(try await push(gateway, number: number).status == 200) }
        // Three forged pushes are answered as such, the fourth is refused before verification.
        for number in 21...23 { #expect(try await push(gateway, number: number, token: "forged").status == 403) }
        let limited = try await push(gateway, number: 24, token: "forged")
        #expect(limited.status == 429)
        #expect(limited.headers.lowercased().range(of: #"retry-after: [1-8]\r?\n"#, options: .regularExpression) != nil)
        // While limited, even a correct push from this address waits (Google retries 429 with backoff).
        #expect(try await push(gateway, number: 25).status == 429)
        // Wrong bearer tokens spend the same budget.
        let api = try await curlRequest("https://127.0.0.1:\(gateway.port)/api/v1/connections", caFile: gateway.certificates.caCertificate, arguments: ["-H", "Authorization: Bearer wrong"])
        #expect(api.status == 429)
        // One failure is forgiven per refill interval.
        try await Task.sleep(for: .milliseconds(8_300))
        #expect(try await push(gateway, number: 26).status == 200)
        let metrics = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/admin/metrics", caFile: gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(gateway.adminToken)"]
        )
        #expect(metrics.body.contains(#"reason="rate_limited"}"#))
        #expect(try await storedPushNumbers(gateway) == Set((1...20).map(String.init) + ["26"]))
        await gateway.shutdown()
    }

    /// Regression from the fleet month: pushes for channels that were stopped (or never existed) test no secret, and a
    /// provider keeps sending them for a while after a stop; they must not use up the address's failure budget, or a
    /// mass stop gets the provider's own honest pushes refused.
    @Test func pushesForUnknownOrStoppedChannelsDoNotSpendTheFailureBudget() async throws {
        let gateway = try await harness {
            $0.limits.verificationFailureBurst = 3
            $0.limits.verificationFailureRefillSeconds = 600
        }
        for number in 1...10 {
            let stale = try await curlRequest(
                "https://127.0.0.1:\(gateway.port)/webhooks/google", caFile: gateway.certificates.caCertificate,
                arguments: [
                    "-X", "POST", "--data-binary", "", "-H", "X-Goog-Channel-ID: stopped-long-ago-\(number)", "-H", "X-Goog-Channel-Token: t",
                    "-H", "X-Goog-Resource-ID: res-42", "-H", "X-Goog-Resource-State: exists", "-H", "X-Goog-Message-Number: \(number)",
                ])
            #expect(stale.status == 404, "stale push \(number)")
        }
        #expect(try await push(gateway, number: 11).status == 200, "an honest push after ten stale ones")
        // Forged pushes still spend it.
        for number in 12...14 { #expect(try await push(gateway, number: number, token: "forged").status == 403) }
        #expect(try await push(gateway, number: 15, token: "forged").status == 429)
        await gateway.shutdown()
    }

    @Test func expiredAdminAndAPITokensAreRefused() async throws {
        let gateway = try await harness {
            $0.adminTokenExpiresAt = Date().addingTimeInterval(-60)
            $0.apiTokenExpiresAt = Date().addingTimeInterval(-60)
        }
        let base = "https://127.0.0.1:\(gateway.port)"
        let ca = gateway.certificates.caCertificate
        let metrics = try await curlRequest(base + "/admin/metrics", caFile: ca, arguments: ["-H", "Authorization: Bearer \(gateway.adminToken)"])
        #expect(metrics.status == 401)
        #expect(metrics.body.contains("expired"))
        #expect(!metrics.body.contains(gateway.adminToken))
        let health = try await curlRequest(base + "/admin/health", caFile: ca, arguments: ["-H", "Authorization: Bearer \(gateway.adminToken)"])
        #expect(health.body == #"{"status":"ok"}"#, "an expired token sees only the status")
        let api = try await curlRequest(base + "/api/v1/connections", caFile: ca, arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)"])
        #expect(api.status == 401)
        #expect(api.body.contains("expired"))
        let wrong = try await curlRequest(base + "/api/v1/connections", caFile: ca, arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)x"])
        #expect(wrong.status == 401)
        #expect(!wrong.body.contains("expired"), "expiry is told only to the token's holder")
        await gateway.shutdown()
    }

    func writeTemporary(_ bytes: [UInt8]) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-body-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }
}
