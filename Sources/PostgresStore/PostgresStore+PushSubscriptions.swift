import Foundation
import GatewayCore
import PostgresNIO

/// Every provider's push subscriptions: the rows pushes are verified against. Every write also NOTIFYs
/// `calgate_credentials` in its transaction, so other instances drop their cached verification secrets, and bumps
/// this instance's `webhookCredentialsVersion` after the commit (as SQLiteStore does, even when no row changed).
extension PostgresStore: PushSubscriptionStore {
    /// Inserts the subscription or replaces every column of the row with its provider and id (`keepingCreatedAt`:
    /// but an existing row's `created_at`).
    public func savePushSubscription(_ subscription: StoredPushSubscription, keepingCreatedAt: Bool) async throws {
        try await upsertPushSubscription(subscription, keepingCreatedAt: keepingCreatedAt)
    }

    /// Stores a renewed expiry and when the renewal happened.
    public func renewPushSubscription(provider: Provider, id: String, expiresAt: Date, renewedAt: Date) async throws {
        try await credentialsWrite("renewing push_subscriptions row \(provider)/\(id)") { connection in
            try await connection.query(
                """
                UPDATE push_subscriptions SET expires_at = \(Self.ms(expiresAt)), created_at = \(Self.ms(renewedAt))
                WHERE provider = \(provider.rawValue) AND id = \(id)
                """,
                logger: logger
            )
        }
    }

    /// The subscription with this provider and id, ended or not; nil when unknown.
    public func pushSubscription(provider: Provider, id: String) async throws -> StoredPushSubscription? {
        try await pushSubscriptions("WHERE provider = \(provider.rawValue) AND id = \(id)").first
    }

    /// Ends the subscription (the first end time wins).
    public func endPushSubscription(provider: Provider, id: String, at: Date) async throws {
        try await credentialsWrite("ending push_subscriptions row \(provider)/\(id)") { connection in
            try await connection.query(
                "UPDATE push_subscriptions SET ended_at = \(Self.ms(at)) WHERE provider = \(provider.rawValue) AND id = \(id) AND ended_at IS NULL",
                logger: logger
            )
        }
    }

    /// The provider's active subscriptions for the calendar, newest expiry first.
    public func livePushSubscriptions(provider: Provider, calendarKey: String) async throws -> [StoredPushSubscription] {
        try await pushSubscriptions(
            """
            WHERE provider = \(provider.rawValue) AND calendar_key = \(calendarKey) AND ended_at IS NULL
            ORDER BY expires_at DESC, id COLLATE "C"
            """)
    }

    /// Every active subscription of the provider, by calendar then newest expiry first.
    public func allLivePushSubscriptions(provider: Provider) async throws -> [StoredPushSubscription] {
        try await pushSubscriptions(
            """
            WHERE provider = \(provider.rawValue) AND ended_at IS NULL ORDER BY calendar_key COLLATE "C", expires_at DESC, id COLLATE "C"
            """)
    }

    /// Runs a push subscription write with the NOTIFY, then bumps the version.
    func credentialsWrite(_ what: String, _ body: (PostgresConnection) async throws -> Void) async throws {
        defer { credentialsChanged() }
        try await transaction(what) { connection in
            try await body(connection)
            try await connection.query("SELECT pg_notify('calgate_credentials', \(instanceID))", logger: logger)
        }
    }

    /// Inserts or replaces a row. `keepingCreatedAt` keeps an existing row's `created_at`: Graph's save has always done
    /// so, because a Graph subscription's life restarts only through a renewal.
    func upsertPushSubscription(_ row: StoredPushSubscription, keepingCreatedAt: Bool) async throws {
        try await credentialsWrite("saving push_subscriptions row \(row.provider)/\(row.id)") { connection in
            try await connection.query(
                """
                INSERT INTO push_subscriptions (provider, id, calendar_key, resource_id, sealed_secret, expires_at, created_at, ended_at)
                VALUES (\(row.provider.rawValue), \(row.id), \(row.calendarKey), \(row.resourceID), \(ByteBuffer(bytes: row.sealedSecret)),
                        \(Self.ms(row.expiresAt)), \(Self.ms(row.createdAt)), \(Self.ms(row.endedAt)))
                ON CONFLICT (provider, id) DO UPDATE SET calendar_key = excluded.calendar_key, resource_id = excluded.resource_id,
                    sealed_secret = excluded.sealed_secret, expires_at = excluded.expires_at,
                    created_at = CASE WHEN \(keepingCreatedAt) THEN push_subscriptions.created_at ELSE excluded.created_at END,
                    ended_at = excluded.ended_at
                """, logger: logger)
        }
    }

    /// The rows `filter` (a `WHERE` clause and its order) selects.
    func pushSubscriptions(_ filter: PostgresQuery) async throws -> [StoredPushSubscription] {
        var query = filter
        query.sql =
            "SELECT provider, id, calendar_key, resource_id, sealed_secret, expires_at, created_at, ended_at FROM push_subscriptions "
            + query.sql
        return try await read("reading push_subscriptions") { connection in
            var rows: [StoredPushSubscription] = []
            for try await (stored, id, calendarKey, resourceID, secret, expiresAt, createdAt, endedAt)
                in try await connection.query(query, logger: logger).decode((String, String, String, String?, ByteBuffer, Date, Date?, Date?).self)
            {
                guard let provider = Provider(rawValue: stored) else {
                    // Only valid ids are ever written; anything else was put there by hand.
                    throw PostgresStoreError(
                        .decoding, "push_subscriptions row \"\(id)\" has provider \"\(stored)\", which is not a provider id; fix or delete the row"
                    )
                }
                rows.append(
                    StoredPushSubscription(
                        provider: provider, id: id, calendarKey: calendarKey, resourceID: resourceID, sealedSecret: Self.bytes(secret),
                        expiresAt: Self.ms(expiresAt), createdAt: Self.ms(createdAt), endedAt: Self.ms(endedAt)
                    ))
            }
            return rows
        }
    }
}
