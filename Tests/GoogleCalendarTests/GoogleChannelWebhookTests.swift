import Foundation
import GatewayCore
import GoogleCalendar
import Testing

/// The `google_channel` verifier behind the provider boundary: what it asks to look up, and what it decides.
@Suite("Google channel webhook")
struct GoogleChannelWebhookTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let credential = WebhookCredential(
        id: "ch-1", secret: "token-1", calendarKey: "gc_1/primary", resourceID: "res-1", expiresAt: Date(timeIntervalSince1970: 1_900_000_000)
    )

    func request(_ headers: [String: String], body: [UInt8] = []) -> WebhookRequest {
        WebhookRequest(handlerKey: GoogleChannelWebhook.handlerKey, path: "/webhooks/google", query: nil, headers: headers, body: body)
    }

    func push(state: String = "exists", token: String = "token-1", number: String = "7") -> [String: String] {
        [
            "x-goog-channel-id": "ch-1", "x-goog-channel-token": token, "x-goog-resource-id": "res-1", "x-goog-resource-state": state,
            "x-goog-message-number": number,
        ]
    }

    func decide(_ request: WebhookRequest, credentials: [String: WebhookCredential]) -> WebhookVerdict {
        switch GoogleChannelWebhook().parse(request) {
        case .verdict(let verdict): return verdict
        case .lookup(let ids, let parsed):
            return GoogleChannelWebhook().verify(parsed, credentials: credentials.filter { ids.contains($0.key) }, now: now)
        }
    }

    @Test func aVerifiedPushIsStoredNamingItsCalendar() throws {
        guard case .lookup(let ids, _) = GoogleChannelWebhook().parse(request(push())) else { Issue.record("no lookup"); return }
        #expect(ids == ["ch-1"])
        guard case .store(let entries, let status, let dropped) = decide(request(push()), credentials: ["ch-1": credential]) else {
            Issue.record("not stored")
            return
        }
        #expect(status == 200 && dropped.isEmpty)
        #expect(entries.count == 1)
        #expect(entries.first?.calendarKey == "gc_1/primary")
        #expect(entries.first?.dedupeKey == "google:ch-1:7")
        #expect(entries.first?.headers["x-goog-channel-token"] == nil)
    }

    @Test func aSyncPushIsAcknowledgedWithoutStoring() {
        guard case .answer(let answer) = decide(request(push(state: "sync", number: "1")), credentials: ["ch-1": credential]) else {
            Issue.record("a sync push was not answered directly")
            return
        }
        #expect(answer.status == 200 && answer.body.isEmpty && answer.acknowledgedKind == "sync")
    }

    @Test func everyKindOfBadPushIsRefusedWithItsStatusAndReason() {
        var stopped = credential
        stopped.endedAt = now
        var expired = credential
        expired.expiresAt = now
        let cases: [(WebhookRequest, [String: WebhookCredential], WebhookRejection.Status, String)] = [
            (request(push()), [:], .notFound, "unknown_channel"),
            (request(push(token: "forged")), ["ch-1": credential], .forbidden, "token_mismatch"),
            (request(push()), ["ch-1": stopped], .notFound, "stopped_channel"),
            (request(push()), ["ch-1": expired], .notFound, "expired_channel"),
            (request(push(state: "weird")), ["ch-1": credential], .badRequest, "unknown_state"),
            (request(push(number: "0")), ["ch-1": credential], .badRequest, "bad_message_number"),
            (request(push(), body: [1]), ["ch-1": credential], .badRequest, "unexpected_body"),
            (request([:]), [:], .badRequest, "missing_header"),
        ]
        for (request, credentials, status, reason) in cases {
            guard case .rejected(let rejection) = decide(request, credentials: credentials) else {
                Issue.record("\(reason): not rejected")
                continue
            }
            #expect(rejection.status == status, "\(reason)")
            #expect(rejection.reason == reason)
        }
    }
}
