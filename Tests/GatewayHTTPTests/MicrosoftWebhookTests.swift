import Foundation
import GatewayCore
import TestSupport
import Testing

/// Graph webhooks over real TLS: the validation handshake and clientState-verified notifications.
@Suite("Microsoft webhook", .serialized)
struct MicrosoftWebhookTests {
    let subscription = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
    let clientState = "cs-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

    func harness() async throws -> GatewayHarness {
        let gateway = try await GatewayHarness()
        try await gateway.store.saveGraphSubscription(
            StoredGraphSubscription(
                id: subscription, calendarKey: "ms-1/AAMkCal",
                sealedClientState: try gateway.sealer.seal(Array(clientState.utf8), context: "graph_subscription:\(subscription)"),
                expiresAt: Date().addingTimeInterval(86_400)
            ))
        return gateway
    }

    func post(_ gateway: GatewayHarness, _ path: String, _ body: String, query: String = "") async throws -> (status: Int, body: String, headers: String) {
        try await curlRequest(
            "https://127.0.0.1:\(gateway.port)\(path)\(query)", caFile: gateway.certificates.caCertificate,
            arguments: ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body]
        )
    }

    func change(_ type: String, state: String? = nil, subscription sub: String? = nil, etag: String = "W/\\\"1\\\"") -> String {
        #"{"subscriptionId":"\#(sub ?? subscription)","changeType":"\#(type)","clientState":"\#(state ?? clientState)","resource":"Users/u/Events/E1","tenantId":"t","resourceData":{"id":"E1","@odata.etag":"\#(etag)"}}"#
    }

    @Test func validationHandshakeEchoesTheDecodedTokenAsPlainText() async throws {
        let gateway = try await harness()
        for path in ["/webhooks/microsoft", "/webhooks/microsoft/lifecycle"] {
            let response = try await post(gateway, path, "", query: "?validationToken=Validation%3a+Testing+client+application+reachability+%3Cb%3E")
            #expect(response.status == 200)
            #expect(response.body == "Validation: Testing client application reachability <b>")
            #expect(response.headers.lowercased().contains("content-type: text/plain"))
            #expect(response.headers.lowercased().contains("x-content-type-options: nosniff"))
        }
        // Control characters (a CR/LF pair, a NUL, an escape) and empty or absurdly long tokens are refused.
        for bad in ["a%0D%0AInjected:+1", "a%00b", "%1B%5B31m", "", String(repeating: "x", count: 1025)] {
            let response = try await post(gateway, "/webhooks/microsoft/lifecycle", "", query: "?validationToken=\(bad)")
            #expect(response.status == 400, "token \(bad.prefix(20)) answered \(response.status)")
        }
        #expect(try await gateway.store.pending(limit: 10).isEmpty)
        await gateway.shutdown()
    }

    @Test func verifiedNotificationsAreStoredOnceThenAnswered202() async throws {
        let gateway = try await harness()
        let batch = #"{"value":[\#(change("created")),\#(change("updated", etag: "W/\\\"2\\\""))]}"#
        #expect(try await post(gateway, "/webhooks/microsoft", batch).status == 202)
        #expect(try await post(gateway, "/webhooks/microsoft", batch).status == 202, "Graph's retry of the same batch")
        let pending = try await gateway.store.pending(limit: 10)
        #expect(pending.map(\.entry.kind) == ["created", "updated"])
        #expect(pending.allSatisfy { $0.entry.provider == .microsoft && $0.entry.channelID == subscription })
        let lifecycle = #"{"value":[{"subscriptionId":"\#(subscription)","clientState":"\#(clientState)","lifecycleEvent":"missed"}]}"#
        #expect(try await post(gateway, "/webhooks/microsoft/lifecycle", lifecycle).status == 202)
        #expect(try await gateway.store.pending(limit: 10).last?.entry.kind == "missed")
        await gateway.shutdown()
    }

    @Test func forgedUnknownAndMalformedNotificationsStoreNothing() async throws {
        let gateway = try await harness()
        #expect(try await post(gateway, "/webhooks/microsoft", #"{"value":[\#(change("updated", state: "forged"))]}"#).status == 403)
        #expect(
            try await post(gateway, "/webhooks/microsoft", #"{"value":[\#(change("updated", subscription: "gone"))]}"#).status == 403,
            "a batch naming only unknown subscriptions verifies nothing")
        #expect(
            try await post(gateway, "/webhooks/microsoft", #"{"value":[{"subscriptionId":"\#(subscription)","changeType":"updated"}]}"#).status == 403,
            "a missing clientState is a mismatch")
        #expect(try await post(gateway, "/webhooks/microsoft", "{not json").status == 400)
        #expect(try await post(gateway, "/webhooks/microsoft", #"{"value":[]}"#).status == 400)
        #expect(try await post(gateway, "/webhooks/microsoft", String(repeating: "[", count: 5000)).status == 400)
        #expect(try await gateway.store.pending(limit: 10).isEmpty)
        // A mixed batch keeps the good item.
        let mixed = #"{"value":[\#(change("updated", state: "forged")),\#(change("deleted"))]}"#
        #expect(try await post(gateway, "/webhooks/microsoft", mixed).status == 202)
        #expect(try await gateway.store.pending(limit: 10).map(\.entry.kind) == ["deleted"])
        await gateway.shutdown()
    }
}
