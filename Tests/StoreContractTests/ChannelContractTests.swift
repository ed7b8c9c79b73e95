import Foundation
import GatewayCore
import Testing

/// Google channels and Graph subscriptions, and the credentials version their writes bump.
@Suite("Store contract: channels and subscriptions")
struct ChannelContractTests {
    @Test(arguments: Backend.available)
    func googleChannels(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = "c1/primary"
            let bare = StoredGoogleChannel(id: "ch-old", resourceID: "res", sealedToken: [1, 2, 3], calendarKey: key, expiresAt: date(1_700_000_000))
            let full = StoredGoogleChannel(
                id: "ch-new", resourceID: "res-2", sealedToken: Array(0...255), calendarKey: key, expiresAt: date(1_700_086_400.5),
                stoppedAt: nil, createdAt: date(1_699_999_000.25)
            )
            let other = StoredGoogleChannel(id: "ch-a", resourceID: "r", sealedToken: [], calendarKey: "a0/cal", expiresAt: date(1_600_000_000))
            var version = store.webhookCredentialsVersion
            for channel in [bare, full, other] {
                try await store.saveGoogleChannel(channel)
                #expect(store.webhookCredentialsVersion > version, "each committed write bumps the version")
                version = store.webhookCredentialsVersion
            }
            #expect(try await store.googleChannel(id: "ch-old") == bare)
            #expect(try await store.googleChannel(id: "ch-new") == full)
            #expect(try await store.googleChannel(id: "nope") == nil)
            #expect(try await store.liveGoogleChannels(calendarKey: key) == [full, bare], "newest expiry first")
            #expect(try await store.allLiveGoogleChannels().map(\.id) == ["ch-a", "ch-new", "ch-old"], "by calendar, then newest expiry")

            try await store.stopGoogleChannel(id: "ch-new", at: date(1_700_001_000))
            #expect(store.webhookCredentialsVersion > version)
            try await store.stopGoogleChannel(id: "ch-new", at: date(1_700_002_000))
            #expect(try await store.googleChannel(id: "ch-new")?.stoppedAt == date(1_700_001_000), "the first stop wins")
            #expect(try await store.liveGoogleChannels(calendarKey: key) == [bare])

            var replaced = full
            replaced.stoppedAt = nil
            replaced.resourceID = "res-3"
            replaced.createdAt = nil
            try await store.saveGoogleChannel(replaced)
            #expect(try await store.googleChannel(id: "ch-new") == replaced, "a save replaces every column")
        }
    }

    @Test(arguments: Backend.available)
    func graphSubscriptions(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = "c2/cal"
            let first = StoredGraphSubscription(id: "s-1", calendarKey: key, sealedClientState: [5, 5], expiresAt: date(1_700_000_000), createdAt: date(1_699_000_000))
            let second = StoredGraphSubscription(id: "s-2", calendarKey: key, sealedClientState: [6], expiresAt: date(1_700_500_000.125))
            let elsewhere = StoredGraphSubscription(id: "s-0", calendarKey: "zz/cal", sealedClientState: [7], expiresAt: date(1_800_000_000))
            var version = store.webhookCredentialsVersion
            for subscription in [first, second, elsewhere] {
                try await store.saveGraphSubscription(subscription)
                #expect(store.webhookCredentialsVersion > version)
                version = store.webhookCredentialsVersion
            }
            #expect(try await store.graphSubscription(id: "s-1") == first)
            #expect(try await store.graphSubscription(id: "s-2") == second)
            #expect(try await store.graphSubscription(id: "nope") == nil)
            #expect(try await store.liveGraphSubscriptions(calendarKey: key) == [second, first])
            #expect(try await store.allLiveGraphSubscriptions().map(\.id) == ["s-2", "s-1", "s-0"])

            try await store.updateGraphSubscriptionExpiry(id: "s-1", expiresAt: date(1_700_900_000), renewedAt: date(1_700_100_000))
            #expect(store.webhookCredentialsVersion > version)
            version = store.webhookCredentialsVersion
            let renewed = try #require(try await store.graphSubscription(id: "s-1"))
            #expect(renewed.expiresAt == date(1_700_900_000))
            #expect(renewed.createdAt == date(1_700_100_000), "a renewal starts a new life")

            var resaved = renewed
            resaved.createdAt = date(1_111_111_111)
            resaved.sealedClientState = [8, 8, 8]
            try await store.saveGraphSubscription(resaved)
            let kept = try #require(try await store.graphSubscription(id: "s-1"))
            #expect(kept.sealedClientState == [8, 8, 8])
            #expect(kept.createdAt == date(1_700_100_000), "saving an existing subscription keeps its creation time")

            try await store.markGraphSubscriptionRemoved(id: "s-2", at: date(1_700_200_000))
            try await store.markGraphSubscriptionRemoved(id: "s-2", at: date(1_700_300_000))
            #expect(store.webhookCredentialsVersion > version)
            #expect(try await store.graphSubscription(id: "s-2")?.removedAt == date(1_700_200_000), "the first removal wins")
            #expect(try await store.liveGraphSubscriptions(calendarKey: key).map(\.id) == ["s-1"])
        }
    }
}
