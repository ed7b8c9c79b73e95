import Foundation
import GatewayCore

extension SQLiteStore: GraphSubscriptionStore {
    /// Inserts or replaces a subscription row.
    public func saveGraphSubscription(_ subscription: StoredGraphSubscription) async throws {
        try await run { database in
            let statement = try database.prepare("""
                INSERT INTO graph_subscriptions (id, calendar_key, sealed_client_state, expires_at_ms, removed_at_ms)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET calendar_key = excluded.calendar_key,
                    sealed_client_state = excluded.sealed_client_state, expires_at_ms = excluded.expires_at_ms,
                    removed_at_ms = excluded.removed_at_ms
                """)
            statement.bind(1, subscription.id)
            statement.bind(2, subscription.calendarKey)
            statement.bind(3, blob: subscription.sealedClientState)
            statement.bind(4, Self.milliseconds(subscription.expiresAt))
            statement.bind(5, subscription.removedAt.map(Self.milliseconds))
            try statement.run()
        }
    }

    /// One subscription, or nil.
    public func graphSubscription(id: String) async throws -> StoredGraphSubscription? {
        try await run { database in
            let statement = try database.prepare(
                "SELECT id, calendar_key, sealed_client_state, expires_at_ms, removed_at_ms FROM graph_subscriptions WHERE id = ?"
            )
            statement.bind(1, id)
            guard try statement.step() else { return nil }
            let row = StoredGraphSubscription(
                id: statement.string(0) ?? "", calendarKey: statement.string(1) ?? "", sealedClientState: statement.blob(2),
                expiresAt: Self.date(statement.int64(3)), removedAt: statement.isNull(4) ? nil : Self.date(statement.int64(4))
            )
            try statement.run()
            return row
        }
    }
}
