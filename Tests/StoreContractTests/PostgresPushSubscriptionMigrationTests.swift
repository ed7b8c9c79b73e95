import Foundation
import GatewayCore
@testable import PostgresStore
import Testing

/// PostgreSQL migration 2 carries `google_channels` and `graph_subscriptions` into `push_subscriptions`: every row
/// and every field, sealed bytes verbatim, readable through the Google and Graph views and the generic port alike.
@Suite("PostgresStore: push subscriptions migration", .enabled(if: PostgresTestServer.enabled, "CALGATE_TEST_POSTGRES_URL is not set"))
struct PostgresPushSubscriptionMigrationTests {
    static let channels = [
        StoredGoogleChannel(
            id: "ch-1", resourceID: "res-1", sealedToken: Array(0...255), calendarKey: "c1/primary", expiresAt: date(1_700_086_400.5),
            createdAt: date(1_699_999_000.25)
        ),
        StoredGoogleChannel(
            id: "ch-old", resourceID: "res-2", sealedToken: [1, 2, 3], calendarKey: "c1/primary", expiresAt: date(1_700_000_000),
            stoppedAt: date(1_700_001_000)
        ),
        StoredGoogleChannel(id: "shared-id", resourceID: "r", sealedToken: [], calendarKey: "a0/cal", expiresAt: date(1_600_000_000)),
    ]

    static let subscriptions = [
        StoredGraphSubscription(id: "s-1", calendarKey: "c2/cal", sealedClientState: [5, 5], expiresAt: date(1_700_000_000), createdAt: date(1_699_000_000)),
        StoredGraphSubscription(
            id: "s-2", calendarKey: "c2/cal", sealedClientState: [6], expiresAt: date(1_700_500_000.125), removedAt: date(1_700_200_000)
        ),
        StoredGraphSubscription(id: "shared-id", calendarKey: "a0/cal", sealedClientState: Array(repeating: 0xFF, count: 40), expiresAt: date(1_800_000_000)),
    ]

    static func bytes(_ bytes: [UInt8]) -> String { "decode('" + bytes.map { String(format: "%02x", $0) }.joined() + "', 'hex')" }
    /// An instant as SQL, from whole milliseconds (so nothing is lost to floating point on the way).
    static func instant(_ date: Date?) -> String {
        guard let date else { return "NULL" }
        return "to_timestamp(\(Int64((date.timeIntervalSince1970 * 1000).rounded())) / 1000.0)"
    }

    @Test func carriesEveryRowOverFromVersion1() async throws {
        try await withPostgresDatabase { url in
            // The database as calgate left it before the generic table, written with that schema's own columns.
            try await PostgresAdmin.migrate(url: url, to: 1, logger: testLogger)
            #expect(try await PostgresAdmin.execute(url: url, ["SELECT MAX(version)::text FROM schema_migrations"]) == "1")
            try await PostgresAdmin.execute(
                url: url,
                Self.channels.map { channel in
                    """
                    INSERT INTO google_channels (id, resource_id, sealed_token, calendar_key, expires_at, stopped_at, created_at)
                    VALUES ('\(channel.id)', '\(channel.resourceID)', \(Self.bytes(channel.sealedToken)), '\(channel.calendarKey)',
                            \(Self.instant(channel.expiresAt)), \(Self.instant(channel.stoppedAt)), \(Self.instant(channel.createdAt)))
                    """
                }
                    + Self.subscriptions.map { subscription in
                        """
                        INSERT INTO graph_subscriptions (id, calendar_key, sealed_client_state, expires_at, removed_at, created_at)
                        VALUES ('\(subscription.id)', '\(subscription.calendarKey)', \(Self.bytes(subscription.sealedClientState)),
                                \(Self.instant(subscription.expiresAt)), \(Self.instant(subscription.removedAt)), \(Self.instant(subscription.createdAt)))
                        """
                    })

            let store = try await PostgresStore.open(url: url, logger: testLogger)
            do {
                #expect(try await store.schemaVersion() == PostgresMigrations.latestVersion)

                for channel in Self.channels { #expect(try await store.googleChannel(id: channel.id) == channel) }
                for subscription in Self.subscriptions { #expect(try await store.graphSubscription(id: subscription.id) == subscription) }
                #expect(try await store.liveGoogleChannels(calendarKey: "c1/primary") == [Self.channels[0]])
                #expect(try await store.allLiveGoogleChannels().map(\.id) == ["shared-id", "ch-1"])
                #expect(try await store.allLiveGraphSubscriptions().map(\.id) == ["shared-id", "s-1"])

                #expect(
                    try await store.pushSubscription(provider: .google, id: "ch-old")
                        == StoredPushSubscription(
                            provider: .google, id: "ch-old", calendarKey: "c1/primary", resourceID: "res-2", sealedSecret: [1, 2, 3],
                            expiresAt: date(1_700_000_000), createdAt: nil, endedAt: date(1_700_001_000)
                        ))
                #expect(
                    try await store.pushSubscription(provider: .microsoft, id: "s-2")
                        == StoredPushSubscription(
                            provider: .microsoft, id: "s-2", calendarKey: "c2/cal", resourceID: nil, sealedSecret: [6],
                            expiresAt: date(1_700_500_000.125), createdAt: nil, endedAt: date(1_700_200_000)
                        ))
                for channel in Self.channels {
                    #expect(try await store.pushSubscription(provider: .google, id: channel.id) == StoredPushSubscription(channel))
                }
                for subscription in Self.subscriptions {
                    #expect(try await store.pushSubscription(provider: .microsoft, id: subscription.id) == StoredPushSubscription(subscription))
                }
            } catch {
                await store.close()
                throw error
            }
            await store.close()

            let leftovers = try await PostgresAdmin.execute(
                url: url,
                [
                    "SELECT (to_regclass('google_channels') IS NULL AND to_regclass('graph_subscriptions') IS NULL)::text"
                ])
            #expect(leftovers == "true", "the old tables are gone")
        }
    }
}
