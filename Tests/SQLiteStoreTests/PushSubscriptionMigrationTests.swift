import Foundation
import GatewayCore
import Synchronization
import Testing
@testable import SQLiteStore

/// Migration 13 carries `google_channels` and `graph_subscriptions` into `push_subscriptions`: every row and every
/// field, sealed bytes verbatim, readable through the Google and Graph views and the generic port alike.
@Suite("SQLite store: push subscriptions migration")
struct PushSubscriptionMigrationTests {
    static func date(_ seconds: Double) -> Date { Date(timeIntervalSince1970: (seconds * 1000).rounded() / 1000) }

    static let channels = [
        StoredGoogleChannel(
            id: "ch-1", resourceID: "res-1", sealedToken: Array(0...255), calendarKey: "c1/primary", expiresAt: date(1_700_086_400.5),
            createdAt: date(1_699_999_000.25)
        ),
        // Stopped, and from before the created_at column.
        StoredGoogleChannel(
            id: "ch-old", resourceID: "res-2", sealedToken: [1, 2, 3], calendarKey: "c1/primary", expiresAt: date(1_700_000_000),
            stoppedAt: date(1_700_001_000)
        ),
        // An id a Graph subscription has too: the old tables had separate id spaces.
        StoredGoogleChannel(id: "shared-id", resourceID: "r", sealedToken: [], calendarKey: "a0/cal", expiresAt: date(1_600_000_000)),
    ]

    static let subscriptions = [
        StoredGraphSubscription(id: "s-1", calendarKey: "c2/cal", sealedClientState: [5, 5], expiresAt: date(1_700_000_000), createdAt: date(1_699_000_000)),
        StoredGraphSubscription(
            id: "s-2", calendarKey: "c2/cal", sealedClientState: [6], expiresAt: date(1_700_500_000.125), removedAt: date(1_700_200_000)
        ),
        StoredGraphSubscription(id: "shared-id", calendarKey: "a0/cal", sealedClientState: Array(repeating: 0xFF, count: 40), expiresAt: date(1_800_000_000)),
    ]

    static func hex(_ bytes: [UInt8]) -> String { "X'" + bytes.map { String(format: "%02x", $0) }.joined() + "'" }
    static func ms(_ date: Date?) -> String { date.map { String(SQLiteStore.milliseconds($0)) } ?? "NULL" }

    @Test func carriesEveryRowOverFromVersion12() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-sqlite-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/db.sqlite"

        // The database as calgate left it before the generic table, written with that schema's own columns.
        do {
            let old = try SQLiteDatabase(path: path, busyTimeoutMilliseconds: 1000)
            try SQLiteMigrations.migrate(old, to: 12)
            #expect(try SQLiteMigrations.userVersion(old) == 12)
            for channel in Self.channels {
                try old.execute(
                    """
                    INSERT INTO google_channels (id, resource_id, sealed_token, calendar_key, expires_at_ms, stopped_at_ms, created_at_ms)
                    VALUES ('\(channel.id)', '\(channel.resourceID)', \(Self.hex(channel.sealedToken)), '\(channel.calendarKey)',
                            \(Self.ms(channel.expiresAt)), \(Self.ms(channel.stoppedAt)), \(Self.ms(channel.createdAt)))
                    """)
            }
            for subscription in Self.subscriptions {
                try old.execute(
                    """
                    INSERT INTO graph_subscriptions (id, calendar_key, sealed_client_state, expires_at_ms, removed_at_ms, created_at_ms)
                    VALUES ('\(subscription.id)', '\(subscription.calendarKey)', \(Self.hex(subscription.sealedClientState)),
                            \(Self.ms(subscription.expiresAt)), \(Self.ms(subscription.removedAt)), \(Self.ms(subscription.createdAt)))
                    """)
            }
            old.close()
        }

        let store = try SQLiteStore(path: path)
        #expect(try await store.schemaVersion() == SQLiteMigrations.latestVersion)

        // Through the views the callers use.
        for channel in Self.channels { #expect(try await store.googleChannel(id: channel.id) == channel) }
        for subscription in Self.subscriptions { #expect(try await store.graphSubscription(id: subscription.id) == subscription) }
        #expect(try await store.liveGoogleChannels(calendarKey: "c1/primary") == [Self.channels[0]])
        #expect(try await store.allLiveGoogleChannels().map(\.id) == ["shared-id", "ch-1"])
        #expect(try await store.allLiveGraphSubscriptions().map(\.id) == ["shared-id", "s-1"])

        // Through the generic port, field by field for one row of each (not only through the shared conversion).
        #expect(
            try await store.pushSubscription(provider: .google, id: "ch-old")
                == StoredPushSubscription(
                    provider: .google, id: "ch-old", calendarKey: "c1/primary", resourceID: "res-2", sealedSecret: [1, 2, 3],
                    expiresAt: Self.date(1_700_000_000), createdAt: nil, endedAt: Self.date(1_700_001_000)
                ))
        #expect(
            try await store.pushSubscription(provider: .microsoft, id: "s-2")
                == StoredPushSubscription(
                    provider: .microsoft, id: "s-2", calendarKey: "c2/cal", resourceID: nil, sealedSecret: [6],
                    expiresAt: Self.date(1_700_500_000.125), createdAt: nil, endedAt: Self.date(1_700_200_000)
                ))
        for channel in Self.channels {
            #expect(try await store.pushSubscription(provider: .google, id: channel.id) == StoredPushSubscription(channel))
        }
        for subscription in Self.subscriptions {
            #expect(try await store.pushSubscription(provider: .microsoft, id: subscription.id) == StoredPushSubscription(subscription))
        }

        // Secret rotation still finds every sealed value under the context it was sealed for.
        let seen = Mutex<[String: [UInt8]]>([:])
        let count = try await store.resealAllSecrets { sealed, context in
            seen.withLock { $0[context] = sealed }
            return sealed
        }
        #expect(count == Self.channels.count + Self.subscriptions.count)
        let expected = Dictionary(
            uniqueKeysWithValues: Self.channels.map { ("google_channel:\($0.id)", $0.sealedToken) }
                + Self.subscriptions.map { ("graph_subscription:\($0.id)", $0.sealedClientState) })
        #expect(seen.withLock { $0 } == expected)
        await store.close()

        let oldTables = try SQLiteDatabase(path: path, busyTimeoutMilliseconds: 1000)
        defer { oldTables.close() }
        let statement = try oldTables.prepare(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('google_channels', 'graph_subscriptions', 'google_channels_calendar', 'graph_subscriptions_calendar')"
        )
        #expect(try statement.step())
        #expect(statement.int64(0) == 0, "the old tables and their indexes are gone")
        try statement.run()
    }
}
