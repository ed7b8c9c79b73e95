import Foundation
import GatewayCore
@testable import GatewayHTTP
import Synchronization
import TestSupport
import Testing

/// The event-loop webhook path (`WebhookAckHandler`) over real TLS: ordering with the router on one connection,
/// `Connection: close`, body limits, idle timeouts, and a secret cache that follows the store exactly.
@Suite("Webhook ack path", .serialized)
struct WebhookAckPathTests {
    let channelID = "0badc0de-89ab-cdef-0123-456789abcdef"
    let token = "calendar=c1&nonce=ack-path"

    func harness(_ configure: (inout GatewayConfiguration) -> Void = { _ in }) async throws -> GatewayHarness {
        let gateway = try await GatewayHarness(configure: configure)
        try await saveChannel(gateway, token: token)
        return gateway
    }

    func saveChannel(_ gateway: GatewayHarness, token: String, stopped: Bool = false) async throws {
        let sealed = try gateway.sealer.seal(Array(token.utf8), context: "google_channel:\(channelID)")
        try await gateway.store.saveGoogleChannel(
            StoredGoogleChannel(
                id: channelID, resourceID: "res-ack", sealedToken: sealed, calendarKey: "conn-ack/primary",
                expiresAt: Date().addingTimeInterval(3600), stoppedAt: stopped ? Date() : nil
            ))
    }

    func push(number: Int, token: String? = nil, extra: String = "", body: String = "") -> String {
        "POST /webhooks/google HTTP/1.1\r\nHost: localhost\r\nX-Goog-Channel-ID: \(channelID)\r\n"
            + "X-Goog-Channel-Token: \(token ?? self.token)\r\nX-Goog-Resource-ID: res-ack\r\n"
            + "X-Goog-Resource-State: exists\r\nX-Goog-Message-Number: \(number)\r\n\(extra)"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    static func statuses(_ text: String) -> [Int] {
        text.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
    }

    @Test func pipelinedWebhooksAndRouterRequestsAreAnsweredInOrder() async throws {
        let gateway = try await harness()
        let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        client.send(
            "GET /admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n" + push(number: 1) + "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n"
                + push(number: 2, token: "forged") + push(number: 3) + "GET /admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        let deadline = ContinuousClock.now + .seconds(10)
        while Self.statuses(client.text).count < 6, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(Self.statuses(client.text) == [200, 200, 404, 403, 200, 200])
        #expect(!client.isClosed)
        let stored = try await gateway.store.pending(limit: 10).map(\.entry.dedupeKey)
        #expect(stored == ["google:\(channelID):1", "google:\(channelID):3"])
        client.close()
        await gateway.shutdown()
    }

    @Test func connectionCloseIsHonouredAfterTheCommit() async throws {
        let gateway = try await harness()
        let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        client.send(push(number: 5, extra: "Connection: close\r\n"))
        #expect(await client.waitForClose())
        #expect(Self.statuses(client.text) == [200])
        #expect(client.text.lowercased().contains("connection: close"))
        #expect(try await gateway.store.pending(limit: 10).count == 1)
        await gateway.shutdown()
    }

    @Test func bodiesOverTheRouteLimitAre413AndClose() async throws {
        let gateway = try await harness()
        // Declared too large by a client waiting for 100 Continue: refused before the body is sent.
        let declared = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        declared.send(
            "POST /webhooks/microsoft HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Expect: 100-continue\r\nContent-Length: 300000\r\n\r\n")
        #expect(await declared.waitForClose())
        #expect(Self.statuses(declared.text) == [413])
        // Declared too large and sent anyway: read and dropped, then refused, so the client is not reset mid-send.
        let sent = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        sent.send(
            "POST /webhooks/microsoft HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Content-Length: 300000\r\n\r\n" + String(repeating: "x", count: 300_000))
        #expect(await sent.waitForClose())
        #expect(Self.statuses(sent.text) == [413])
        // Chunked, growing past the Google route's 1 KiB limit.
        let chunked = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        let chunk = String(repeating: "x", count: 800)
        chunked.send(
            push(number: 9).replacingOccurrences(of: "Content-Length: 0\r\n", with: "Transfer-Encoding: chunked\r\n")
                + "320\r\n\(chunk)\r\n320\r\n\(chunk)\r\n0\r\n\r\n")
        #expect(await chunked.waitForClose())
        #expect(Self.statuses(chunked.text) == [413])
        #expect(try await gateway.store.pending(limit: 10).isEmpty)
        await gateway.shutdown()
    }

    @Test func idleTimeoutStillClosesConnectionsThatOnlyCarriedWebhooks() async throws {
        // A 2 s idle timeout and a push every 400 ms: a gap would have to stretch fivefold before the connection were
        // idle (with 1 s and 350 ms, a loaded 2-core CI run once stretched one that far).
        let gateway = try await harness { $0.limits.idleTimeoutSeconds = 2 }
        let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        // Busy for about two idle periods: each push resets the idle clock.
        for number in 1...10 {
            client.send(push(number: number))
            try await Task.sleep(for: .milliseconds(400))
            #expect(!client.isClosed, "closed while pushes kept arriving (push \(number))")
        }
        #expect(Self.statuses(client.text) == Array(repeating: 200, count: 10))
        #expect(await client.waitForClose(timeout: .seconds(10)), "an idle connection is closed")
        await gateway.shutdown()
    }

    @Test func cachedSecretsFollowChannelChangesInTheStore() async throws {
        let gateway = try await harness()
        let client = try RawTLSClient(port: gateway.port, caFile: gateway.certificates.caCertificate)
        client.send(push(number: 1))
        #expect(await client.waitFor("HTTP/1.1 200"))
        // Rotated token: the old one is refused at once, the new one accepted.
        try await saveChannel(gateway, token: "calendar=c1&nonce=rotated")
        client.send(push(number: 2))
        #expect(await client.waitFor("HTTP/1.1 403"))
        client.send(push(number: 3, token: "calendar=c1&nonce=rotated"))
        try await Task.sleep(for: .milliseconds(200))
        // Stopped: refused with 404 (no retry) from the next push on.
        try await gateway.store.stopGoogleChannel(id: channelID, at: Date())
        client.send(push(number: 4, token: "calendar=c1&nonce=rotated"))
        #expect(await client.waitFor("HTTP/1.1 404"))
        #expect(Self.statuses(client.text) == [200, 403, 200, 404])
        #expect(try await gateway.store.pending(limit: 10).map(\.entry.dedupeKey) == ["google:\(channelID):1", "google:\(channelID):3"])
        client.close()
        await gateway.shutdown()
    }
}

/// `WebhookCredentialCache` step by step with a hand-driven store version.
@Suite("Webhook credential cache")
struct WebhookCredentialCacheTests {
    final class Version: Sendable {
        let value = Mutex<UInt64>(0)
    }

    let version = Version()

    func makeCache(capacity: Int = 10) -> WebhookCredentialCache {
        WebhookCredentialCache(capacity: capacity) { [version] in version.value.withLock { $0 } }
    }

    func bump() { version.value.withLock { $0 += 1 } }

    @Test func aLookupIsKeptUntilTheStoreChanges() throws {
        let cache = makeCache()
        guard case .miss(let miss) = cache.lookup("g:a") else { Issue.record("empty cache hit"); return }
        cache.insert(.none, for: "g:a", after: miss)
        guard case .hit(.none) = cache.lookup("g:a") else { Issue.record("inserted credential missing"); return }
        bump()
        guard case .miss = cache.lookup("g:a") else { Issue.record("kept across a store change"); return }
        #expect(cache.count == 0)
    }

    @Test func aLookupThatRacedAStoreWriteIsNotKept() {
        let cache = makeCache()
        guard case .miss(let miss) = cache.lookup("m:s") else { Issue.record("empty cache hit"); return }
        bump()  // the subscription changed while the lookup was reading the old row
        cache.insert(WebhookCredential(id: "s", secret: "old"), for: "m:s", after: miss)
        guard case .miss = cache.lookup("m:s") else { Issue.record("a stale lookup was kept"); return }
    }

    @Test func capacityIsBounded() {
        let cache = makeCache(capacity: 3)
        for index in 0..<10 {
            guard case .miss(let miss) = cache.lookup("g:\(index)") else { continue }
            cache.insert(.none, for: "g:\(index)", after: miss)
            #expect(cache.count <= 3)
        }
    }
}
