import Foundation
import GatewayCore
@testable import MicrosoftGraph
import Testing

@Suite("Graph notification decoding")
struct GraphNotificationDecoderTests {
    let change = #"""
        {"value":[{"subscriptionId":"7f105c7d-2dc5-4530-97cd-4e7ae6534c07","subscriptionExpirationDateTime":"2026-12-01T11:00:00.0000000Z",
          "changeType":"updated","resource":"Users/u/Events/AAMk","clientState":"secret-state","tenantId":"t1",
          "resourceData":{"@odata.type":"#Microsoft.Graph.Event","@odata.id":"Users/u/Events/AAMk","@odata.etag":"W/\"DwAAABYA\"","id":"AAMk"}}]}
        """#

    @Test func decodesChangeNotifications() throws {
        let items = try GraphNotificationDecoder.decode(Array(change.utf8), lifecycle: false)
        #expect(items.count == 1)
        #expect(items[0].subscriptionID == "7f105c7d-2dc5-4530-97cd-4e7ae6534c07")
        #expect(items[0].clientState == "secret-state")
        #expect(items[0].changeType == "updated")
        #expect(items[0].resourceID == "AAMk")
        #expect(items[0].etag == #"W/"DwAAABYA""#)
        let entry = GraphNotificationDecoder.inboxEntry(for: items[0], receivedAt: Date(timeIntervalSince1970: 0))
        #expect(entry.provider == .microsoft)
        #expect(entry.kind == "updated")
        #expect(entry.dedupeKey == #"graph:7f105c7d-2dc5-4530-97cd-4e7ae6534c07:updated:AAMk:W/"DwAAABYA""#)
    }

    @Test func decodesLifecycleNotifications() throws {
        let body = #"{"value":[{"subscriptionId":"s1","clientState":"c","lifecycleEvent":"reauthorizationRequired","tenantId":"t"},{"subscriptionId":"s1","clientState":"c","lifecycleEvent":"missed"}]}"#
        let items = try GraphNotificationDecoder.decode(Array(body.utf8), lifecycle: true)
        #expect(items.map(\.lifecycleEvent) == ["reauthorizationRequired", "missed"])
        #expect(throws: GraphNotificationError.self) { try GraphNotificationDecoder.decode(Array(body.utf8), lifecycle: false) }
        #expect(throws: GraphNotificationError.self) { try GraphNotificationDecoder.decode(Array(change.utf8), lifecycle: true) }
    }

    /// Fuzzing regression (fuzz-graph-notifications): a change item that also carries `lifecycleEvent` was stored with
    /// the lifecycle event as its kind and without a dedupe key, so a change POST could trigger a subscription
    /// recovery and its retries were stored again.
    @Test func aChangeItemsLifecycleFieldIsIgnored() throws {
        let body = #"{"value":[{"subscriptionId":"s1","clientState":"c","changeType":"deleted","lifecycleEvent":"subscriptionRemoved","resourceData":{"id":"AAMk","@odata.etag":"W/\"1\""},"id":"n-2"}]}"#
        let items = try GraphNotificationDecoder.decode(Array(body.utf8), lifecycle: false)
        #expect(items.map(\.lifecycleEvent) == [nil])
        let entry = GraphNotificationDecoder.inboxEntry(for: items[0], receivedAt: Date(timeIntervalSince1970: 0))
        #expect(entry.kind == "deleted")
        #expect(entry.dedupeKey == "graph:s1:n-2")
        // And the other way round: a lifecycle item's changeType does not make it a change.
        let lifecycle = #"{"value":[{"subscriptionId":"s1","clientState":"c","lifecycleEvent":"missed","changeType":"updated"}]}"#
        let events = try GraphNotificationDecoder.decode(Array(lifecycle.utf8), lifecycle: true)
        #expect(events.map(\.changeType) == [nil])
        #expect(GraphNotificationDecoder.inboxEntry(for: events[0], receivedAt: Date(timeIntervalSince1970: 0)).kind == "missed")
    }

    @Test func refusesEveryMalformedShape() {
        let cases = [
            "", "{", "[]", #"{"value":{}}"#, #"{"value":[]}"#, #"{"value":[5]}"#, #"{"value":[{}]}"#,
            #"{"value":[{"subscriptionId":5,"changeType":"updated"}]}"#,
            #"{"value":[{"subscriptionId":"s","changeType":"renamed"}]}"#,
            #"{"value":[{"subscriptionId":"s","changeType":"updated","clientState":["x"]}]}"#,
            #"{"value":[{"subscriptionId":"\#(String(repeating: "s", count: 200))","changeType":"updated"}]}"#,
            #"{"value":[{"subscriptionId":"s","changeType":"updated","clientState":"\#(String(repeating: "c", count: 300))"}]}"#,
            String(repeating: "[", count: 10_000),
            #"{"value":["# + Array(repeating: #"{"subscriptionId":"s","changeType":"updated"}"#, count: 1001).joined(separator: ",") + "]}",
        ]
        for body in cases {
            #expect(throws: GraphNotificationError.self, "\(body.prefix(60))") { try GraphNotificationDecoder.decode(Array(body.utf8), lifecycle: false) }
        }
    }

    @Test func validationTokensAreFormDecoded() {
        let query = "validationToken=Validation%3a+Testing+client+application+reachability+for+subscription+Request-Id%3a+2a2b"
        #expect(GraphNotificationDecoder.validationToken(inQuery: query) == "Validation: Testing client application reachability for subscription Request-Id: 2a2b")
        #expect(GraphNotificationDecoder.validationToken(inQuery: "a=1&validationToken=%3Cscript%3E") == "<script>")
        #expect(GraphNotificationDecoder.validationToken(inQuery: "a=1") == nil)
    }
}

/// Which refusals of a Graph batch spend the sender's failed-verification budget.
@Suite("Graph webhook refusals")
struct GraphWebhookRefusalTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func batch(_ items: [(subscription: String, clientState: String)]) -> [GraphNotification] {
        items.map {
            GraphNotification(
                subscriptionID: $0.subscription, clientState: $0.clientState, changeType: "updated", lifecycleEvent: nil, resource: "r",
                resourceID: "e", etag: "W/1", tenantID: nil, notificationID: nil)
        }
    }

    @Test func onlyUnknownOrRemovedSubscriptionsAreStale() {
        let live = WebhookCredential(id: "live", secret: "state", calendarKey: "c/cal", expiresAt: nil, endedAt: nil)
        let removed = WebhookCredential(id: "removed", secret: "state", calendarKey: "c/cal", expiresAt: nil, endedAt: now)
        let credentials = ["live": live, "removed": removed]
        guard case .rejected(let stale) = GraphWebhook().verify(batch([("gone", "x"), ("removed", "state")]), credentials: credentials, now: now) else {
            Issue.record("a batch of ended subscriptions must be refused")
            return
        }
        #expect(stale.isStale && stale.reason == "unknown_subscription")
        guard case .rejected(let forged) = GraphWebhook().verify(batch([("gone", "x"), ("live", "wrong")]), credentials: credentials, now: now) else {
            Issue.record("a forged clientState must be refused")
            return
        }
        #expect(!forged.isStale && forged.reason == "client_state_mismatch")
    }
}
