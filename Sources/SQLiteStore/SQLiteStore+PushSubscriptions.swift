import Foundation
import GatewayCore

extension SQLiteStore: PushSubscriptionStore {
    /// Inserts the subscription or replaces every column of the row with its provider and id (`keepingCreatedAt`:
    /// but an existing row's `created_at_ms`).
    public func savePushSubscription(_ subscription: StoredPushSubscription, keepingCreatedAt: Bool) async throws {
        defer { credentialsChanged() }
        try await run { database in try Self.upsertPushSubscription(subscription, keepingCreatedAt: keepingCreatedAt, in: database) }
    }

    /// Stores a renewed expiry and when the renewal happened.
    public func renewPushSubscription(provider: Provider, id: String, expiresAt: Date, renewedAt: Date) async throws {
        let when = Self.milliseconds(expiresAt)
        let renewed = Self.milliseconds(renewedAt)
        defer { credentialsChanged() }
        try await run { database in
            try database.run("UPDATE push_subscriptions SET expires_at_ms = ?1, created_at_ms = ?2 WHERE provider = ?3 AND id = ?4", when, renewed, provider.rawValue, id)
        }
    }

    /// The subscription with this provider and id, ended or not; nil when unknown.
    public func pushSubscription(provider: Provider, id: String) async throws -> StoredPushSubscription? {
        try await run { database in
            try Self.pushSubscriptions(" WHERE provider = ?1 AND id = ?2", in: database) { statement in
                statement.bind(1, provider.rawValue)
                statement.bind(2, id)
            }.first
        }
    }

    /// Ends the subscription (the first end time wins).
    public func endPushSubscription(provider: Provider, id: String, at: Date) async throws {
        let when = Self.milliseconds(at)
        defer { credentialsChanged() }
        try await run { database in
            try database.run("UPDATE push_subscriptions SET ended_at_ms = ?1 WHERE provider = ?2 AND id = ?3 AND ended_at_ms IS NULL", when, provider.rawValue, id)
        }
    }

    /// The provider's active subscriptions for the calendar, newest expiry first.
    public func livePushSubscriptions(provider: Provider, calendarKey: String) async throws -> [StoredPushSubscription] {
        try await run { database in
            try Self.pushSubscriptions(
                " WHERE provider = ?1 AND calendar_key = ?2 AND ended_at_ms IS NULL ORDER BY expires_at_ms DESC, id", in: database
            ) { statement in
                statement.bind(1, provider.rawValue)
                statement.bind(2, calendarKey)
            }
        }
    }

    /// Every active subscription of the provider, by calendar then newest expiry first.
    public func allLivePushSubscriptions(provider: Provider) async throws -> [StoredPushSubscription] {
        try await run { database in
            try Self.pushSubscriptions(
                " WHERE provider = ?1 AND ended_at_ms IS NULL ORDER BY calendar_key, expires_at_ms DESC, id", in: database
            ) { statement in
                statement.bind(1, provider.rawValue)
            }
        }
    }

    /// Inserts or replaces a row. `keepingCreatedAt` keeps an existing row's `created_at_ms`: Graph's save has always
    /// done so, because a Graph subscription's life restarts only through a renewal.
    static func upsertPushSubscription(_ row: StoredPushSubscription, keepingCreatedAt: Bool, in database: SQLiteDatabase) throws {
        let statement = try database.prepare(
            """
            INSERT INTO push_subscriptions (provider, id, calendar_key, resource_id, sealed_secret, expires_at_ms, created_at_ms, ended_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(provider, id) DO UPDATE SET calendar_key = excluded.calendar_key, resource_id = excluded.resource_id,
                sealed_secret = excluded.sealed_secret, expires_at_ms = excluded.expires_at_ms,
                created_at_ms = \(keepingCreatedAt ? "push_subscriptions.created_at_ms" : "excluded.created_at_ms"),
                ended_at_ms = excluded.ended_at_ms
            """)
        statement.bind(1, row.provider.rawValue)
        statement.bind(2, row.id)
        statement.bind(3, row.calendarKey)
        statement.bind(4, row.resourceID)
        statement.bind(5, blob: row.sealedSecret)
        statement.bind(6, milliseconds(row.expiresAt))
        statement.bind(7, row.createdAt.map(milliseconds))
        statement.bind(8, row.endedAt.map(milliseconds))
        try statement.run()
    }

    /// The rows `filter` (a `WHERE` clause and its order, with `?n` parameters that `bind` fills) selects.
    static func pushSubscriptions(
        _ filter: String, in database: SQLiteDatabase, bind: (SQLiteStatement) -> Void
    ) throws -> [StoredPushSubscription] {
        let statement = try database.prepare(
            """
            SELECT provider, id, calendar_key, resource_id, sealed_secret, expires_at_ms, created_at_ms, ended_at_ms
            FROM push_subscriptions
            """ + filter)
        bind(statement)
        var rows: [StoredPushSubscription] = []
        while try statement.step() {
            let stored = statement.string(0) ?? ""
            let id = statement.string(1) ?? ""
            guard let provider = Provider(rawValue: stored) else {
                // Only valid ids are ever written; anything else was put there by hand.
                try? statement.run()
                throw SQLiteStoreError(
                    .query, path: database.path,
                    "push_subscriptions row \"\(id)\" has provider \"\(stored)\", which is not a provider id; fix or delete the row"
                )
            }
            rows.append(
                StoredPushSubscription(
                    provider: provider, id: id, calendarKey: statement.string(2) ?? "",
                    resourceID: statement.string(3), sealedSecret: statement.blob(4), expiresAt: date(statement.int64(5)),
                    createdAt: statement.isNull(6) ? nil : date(statement.int64(6)),
                    endedAt: statement.isNull(7) ? nil : date(statement.int64(7))
                ))
        }
        return rows
    }
}
