import Foundation
import GatewayCore
import Testing

@Suite("Stored push subscriptions")
struct StoredPushSubscriptionTests {
    @Test func sealingContextsOfTheProviderTablesAreKept() {
        #expect(StoredPushSubscription.sealingContext(provider: .google, id: "ch-1") == "google_channel:ch-1")
        #expect(StoredPushSubscription.sealingContext(provider: .microsoft, id: "s-1") == "graph_subscription:s-1")
        #expect(StoredPushSubscription.sealingContext(provider: Provider(rawValue: "toy")!, id: "t-1") == "push_subscription:toy:t-1")
    }

    @Test func stateFollowsTheEndTime() {
        var row = StoredPushSubscription(provider: .google, id: "ch", calendarKey: "c/k", sealedSecret: [], expiresAt: Date(timeIntervalSince1970: 0))
        #expect(row.state == .active)
        row.endedAt = Date(timeIntervalSince1970: 1)
        #expect(row.state == .ended)
    }

    @Test func googleAndGraphRowsConvertBothWays() {
        let channel = StoredGoogleChannel(
            id: "ch", resourceID: "res", sealedToken: [1, 2], calendarKey: "c/k", expiresAt: Date(timeIntervalSince1970: 10),
            stoppedAt: Date(timeIntervalSince1970: 5), createdAt: Date(timeIntervalSince1970: 1)
        )
        let generic = StoredPushSubscription(channel)
        #expect(generic.provider == .google && generic.resourceID == "res" && generic.endedAt == channel.stoppedAt)
        #expect(StoredGoogleChannel(generic) == channel)

        let subscription = StoredGraphSubscription(
            id: "s", calendarKey: "c/k", sealedClientState: [3], expiresAt: Date(timeIntervalSince1970: 10), removedAt: nil, createdAt: nil
        )
        let graph = StoredPushSubscription(subscription)
        #expect(graph.provider == .microsoft && graph.resourceID == nil && graph.sealingContext == "graph_subscription:s")
        #expect(StoredGraphSubscription(graph) == subscription)
    }
}
