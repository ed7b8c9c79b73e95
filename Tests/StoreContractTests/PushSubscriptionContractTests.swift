import Foundation
import GatewayCore
import Testing

/// The generic push subscription port, for built-in and plugin providers alike, and how the Google and Graph views
/// read the rows it writes.
@Suite("Store contract: push subscriptions")
struct PushSubscriptionContractTests {
    static let toy = Provider(rawValue: "toy")!

    @Test(arguments: Backend.available)
    func roundTripsEveryField(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let full = StoredPushSubscription(
                provider: Self.toy, id: "sub-1", calendarKey: "c9/cal", resourceID: "resource-9", sealedSecret: Array(0...255),
                expiresAt: date(1_700_086_400.5), createdAt: date(1_699_999_000.25)
            )
            let bare = StoredPushSubscription(provider: Self.toy, id: "sub-2", calendarKey: "c9/cal", sealedSecret: [], expiresAt: date(1_600_000_000))
            // The same id under another provider is another row: ids are unique per provider only.
            let google = StoredPushSubscription(
                provider: .google, id: "sub-1", calendarKey: "c1/primary", resourceID: "res", sealedSecret: [1], expiresAt: date(1_700_000_000)
            )
            var version = store.webhookCredentialsVersion
            for row in [full, bare, google] {
                try await store.savePushSubscription(row)
                #expect(store.webhookCredentialsVersion > version, "each committed write bumps the version")
                version = store.webhookCredentialsVersion
            }
            #expect(try await store.pushSubscription(provider: Self.toy, id: "sub-1") == full)
            #expect(try await store.pushSubscription(provider: Self.toy, id: "sub-2") == bare)
            #expect(try await store.pushSubscription(provider: .google, id: "sub-1") == google)
            #expect(try await store.pushSubscription(provider: .microsoft, id: "sub-1") == nil)
            #expect(try await store.pushSubscription(provider: Self.toy, id: "nope") == nil)
            #expect(full.state == .active)

            var replaced = full
            replaced.resourceID = nil
            replaced.sealedSecret = [9, 9]
            replaced.calendarKey = "c9/other"
            replaced.expiresAt = date(1_700_999_999.999)
            replaced.createdAt = nil
            replaced.endedAt = date(1_700_000_001)
            try await store.savePushSubscription(replaced)
            #expect(store.webhookCredentialsVersion > version)
            #expect(try await store.pushSubscription(provider: Self.toy, id: "sub-1") == replaced, "a save replaces every column")
            #expect(try await store.pushSubscription(provider: .google, id: "sub-1") == google, "the other provider's row is untouched")
        }
    }

    @Test(arguments: Backend.available)
    func endKeepsTheFirstTimeAndOnlyEndsThatProvidersRow(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = "c3/cal"
            let toyRow = StoredPushSubscription(provider: Self.toy, id: "same", calendarKey: key, sealedSecret: [1], expiresAt: date(1_700_000_000))
            let graphRow = StoredPushSubscription(provider: .microsoft, id: "same", calendarKey: key, sealedSecret: [2], expiresAt: date(1_700_000_000))
            try await store.savePushSubscription(toyRow)
            try await store.savePushSubscription(graphRow)

            var version = store.webhookCredentialsVersion
            try await store.endPushSubscription(provider: Self.toy, id: "same", at: date(1_700_000_100.5))
            #expect(store.webhookCredentialsVersion > version)
            version = store.webhookCredentialsVersion
            try await store.endPushSubscription(provider: Self.toy, id: "same", at: date(1_700_000_200))
            #expect(store.webhookCredentialsVersion > version, "a write that changed nothing still bumps (as before)")
            let ended = try #require(try await store.pushSubscription(provider: Self.toy, id: "same"))
            #expect(ended.endedAt == date(1_700_000_100.5), "the first end wins")
            #expect(ended.state == .ended)
            #expect(try await store.livePushSubscriptions(provider: Self.toy, calendarKey: key).isEmpty)
            #expect(try await store.pushSubscription(provider: .microsoft, id: "same")?.state == .active, "ending is per provider")
            #expect(try await store.liveGraphSubscriptions(calendarKey: key).map(\.id) == ["same"])

            try await store.endPushSubscription(provider: Self.toy, id: "unknown", at: date(1_700_000_300))
            #expect(try await store.pushSubscription(provider: Self.toy, id: "unknown") == nil, "ending an unknown one creates nothing")
        }
    }

    @Test(arguments: Backend.available)
    func liveListsNewestExpiryFirstPerProvider(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            func row(_ provider: Provider, _ id: String, _ key: String, _ expires: Double) -> StoredPushSubscription {
                StoredPushSubscription(provider: provider, id: id, calendarKey: key, sealedSecret: Array(id.utf8), expiresAt: date(expires))
            }
            let rows = [
                row(Self.toy, "b", "k1/cal", 1_700_000_000), row(Self.toy, "a", "k1/cal", 1_700_000_000),  // tie: by id
                row(Self.toy, "newest", "k1/cal", 1_800_000_000), row(Self.toy, "oldest", "k1/cal", 1_600_000_000.001),
                row(Self.toy, "ended", "k1/cal", 1_900_000_000), row(Self.toy, "z", "k0/cal", 1_500_000_000),
                row(.google, "g", "k1/cal", 1_950_000_000), row(.microsoft, "m", "k0/cal", 1_950_000_000),
            ]
            for item in rows.shuffled() { try await store.savePushSubscription(item) }
            try await store.endPushSubscription(provider: Self.toy, id: "ended", at: date(1_700_000_000))

            let live = try await store.livePushSubscriptions(provider: Self.toy, calendarKey: "k1/cal")
            #expect(live.map(\.id) == ["newest", "a", "b", "oldest"], "newest expiry first, then by id; ended and other providers' rows left out")
            #expect(live.first == rows[2])
            #expect(try await store.allLivePushSubscriptions(provider: Self.toy).map(\.id) == ["z", "newest", "a", "b", "oldest"], "by calendar first")
            #expect(try await store.allLivePushSubscriptions(provider: .google).map(\.id) == ["g"])
            #expect(try await store.livePushSubscriptions(provider: .microsoft, calendarKey: "k1/cal").isEmpty)
            #expect(try await store.allLivePushSubscriptions(provider: Provider(rawValue: "nobody")!).isEmpty)
        }
    }

    @Test(arguments: Backend.available)
    func googleAndGraphViewsReadTheGenericRows(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let channel = StoredGoogleChannel(
                id: "ch-1", resourceID: "res-1", sealedToken: [4, 2], calendarKey: "c1/primary", expiresAt: date(1_700_000_000),
                stoppedAt: date(1_700_000_500), createdAt: date(1_699_000_000)
            )
            try await store.saveGoogleChannel(channel)
            #expect(
                try await store.pushSubscription(provider: .google, id: "ch-1")
                    == StoredPushSubscription(
                        provider: .google, id: "ch-1", calendarKey: "c1/primary", resourceID: "res-1", sealedSecret: [4, 2],
                        expiresAt: date(1_700_000_000), createdAt: date(1_699_000_000), endedAt: date(1_700_000_500)
                    ))

            let generic = StoredPushSubscription(
                provider: .microsoft, id: "s-1", calendarKey: "c2/cal", sealedSecret: [7], expiresAt: date(1_700_100_000), createdAt: date(1_700_000_000)
            )
            try await store.savePushSubscription(generic)
            #expect(
                try await store.graphSubscription(id: "s-1")
                    == StoredGraphSubscription(
                        id: "s-1", calendarKey: "c2/cal", sealedClientState: [7], expiresAt: date(1_700_100_000), createdAt: date(1_700_000_000)
                    ))
            #expect(try await store.googleChannel(id: "s-1") == nil, "a Graph row is not a Google channel")
            try await store.updateGraphSubscriptionExpiry(id: "s-1", expiresAt: date(1_700_900_000), renewedAt: date(1_700_050_000))
            let renewed = try #require(try await store.pushSubscription(provider: .microsoft, id: "s-1"))
            #expect(renewed.expiresAt == date(1_700_900_000) && renewed.createdAt == date(1_700_050_000))
            try await store.markGraphSubscriptionRemoved(id: "s-1", at: date(1_700_060_000))
            #expect(try await store.pushSubscription(provider: .microsoft, id: "s-1")?.endedAt == date(1_700_060_000))
        }
    }
}
