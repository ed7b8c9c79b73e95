import Foundation
import GatewayCore
import TestSupport
import Testing

/// `POST /webhooks/google` over real TLS: verified pushes land in the durable inbox before the 200.
@Suite("Google webhook", .serialized)
struct GoogleWebhookTests {
    let channelID = "01234567-89ab-cdef-0123-456789abcdef"
    let token = "calendar=c1&nonce=8f14e45fceea167a5a36dedd4bea2543"

    func harnessWithChannel(expiresIn: TimeInterval = 3600, stopped: Bool = false) async throws -> GatewayHarness {
        let gateway = try await GatewayHarness()
        let sealed = try gateway.sealer.seal(Array(token.utf8), context: "google_channel:\(channelID)")
        try await gateway.store.saveGoogleChannel(
            StoredGoogleChannel(
                id: channelID, resourceID: "res-42", sealedToken: sealed, calendarKey: "conn-1/primary",
                expiresAt: Date().addingTimeInterval(expiresIn), stoppedAt: stopped ? Date() : nil
            ))
        return gateway
    }

    func push(_ gateway: GatewayHarness, state: String = "exists", number: Int = 7, changes: [String: String?] = [:], body: String? = nil) async throws -> Int {
        var headers: [String: String] = [
            "X-Goog-Channel-ID": channelID, "X-Goog-Channel-Token": token, "X-Goog-Resource-ID": "res-42",
            "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json",
            "X-Goog-Resource-State": state, "X-Goog-Message-Number": "\(number)",
            "X-Goog-Channel-Expiration": "Fri, 31 Mar 2023 14:56:37 GMT",
        ]
        for (name, value) in changes { headers[name] = value }
        var arguments = ["-X", "POST", "-H", "User-Agent: APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"]
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { arguments += ["-H", "\(name): \(value)"] }
        arguments += ["--data-binary", body ?? ""]
        return try await curlRequest("https://127.0.0.1:\(gateway.port)/webhooks/google", caFile: gateway.certificates.caCertificate, arguments: arguments).status
    }

    @Test func aValidPushIsStoredOnceThenAcknowledged() async throws {
        let gateway = try await harnessWithChannel()
        #expect(try await push(gateway, number: 7) == 200)
        #expect(try await push(gateway, number: 7) == 200, "a replayed message is acknowledged")
        #expect(try await push(gateway, number: 12) == 200)
        let pending = try await gateway.store.pending(limit: 10)
        #expect(pending.map(\.entry.dedupeKey) == ["google:\(channelID):7", "google:\(channelID):12"])
        #expect(pending[0].entry.kind == "exists")
        #expect(pending[0].entry.channelID == channelID)
        #expect(pending[0].entry.headers["x-goog-channel-token"] == nil)
        await gateway.shutdown()
    }

    @Test func theSyncMessageIsAcknowledgedWithoutWork() async throws {
        let gateway = try await harnessWithChannel()
        #expect(try await push(gateway, state: "sync", number: 1) == 200)
        #expect(try await gateway.store.pending(limit: 10).isEmpty)
        await gateway.shutdown()
    }

    @Test func forgedMismatchedAndMalformedPushesAreRefusedAndStoreNothing() async throws {
        let gateway = try await harnessWithChannel()
        let cases: [([String: String?], String?, Int)] = [
            (["X-Goog-Channel-Token": "calendar=c1&nonce=forged"], nil, 403),
            (["X-Goog-Channel-Token": nil], nil, 403),
            (["X-Goog-Resource-ID": "res-other"], nil, 403),
            (["X-Goog-Channel-ID": "not-a-channel-we-made"], nil, 404),
            (["X-Goog-Resource-State": "update"], nil, 400),
            (["X-Goog-Message-Number": "x"], nil, 400),
            (["X-Goog-Resource-State": nil], nil, 400),
            ([:], "{\"kind\":\"api#channel\"}", 400),
        ]
        for (changes, body, status) in cases {
            #expect(try await push(gateway, changes: changes, body: body) == status, "\(changes)")
        }
        #expect(try await gateway.store.pending(limit: 10).isEmpty)
        let metrics = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/admin/metrics", caFile: gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(gateway.adminToken)"]
        )
        #expect(metrics.body.contains(#"calgate_verification_rejected_total{verifier="google_channel",reason="token_mismatch"} 2"#))
        #expect(metrics.body.contains(#"reason="unknown_channel"} 1"#))
        await gateway.shutdown()
    }

    @Test func stoppedAndExpiredChannelsAreRefusedWithoutARetryStatus() async throws {
        let stopped = try await harnessWithChannel(stopped: true)
        #expect(try await push(stopped) == 404)
        #expect(try await stopped.store.pending(limit: 10).isEmpty)
        await stopped.shutdown()
        let expired = try await harnessWithChannel(expiresIn: -60)
        #expect(try await push(expired) == 404)
        await expired.shutdown()
    }

    @Test func aStoreThatCannotWriteAnswers503SoGoogleRetries() async throws {
        let gateway = try await harnessWithChannel()
        await gateway.store.close()
        #expect(try await push(gateway) == 503)
        await gateway.shutdown()
    }
}
