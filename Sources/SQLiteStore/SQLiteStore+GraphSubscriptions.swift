import Foundation
import GatewayCore

extension SQLiteStore: GraphSubscriptionStore {
    /// Inserts or replaces a subscription row.
    public func saveGraphSubscription(_ subscription: StoredGraphSubscription) async throws {
        defer { credentialsChanged() }
        try await run { database in
            let statement = try database.prepare("""
                INSERT INTO graph_subscriptions (id, calendar_key, sealed_client_state, expires_at_ms, removed_at_ms, created_at_ms)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET calendar_key = excluded.calendar_key,
                    sealed_client_state = excluded.sealed_client_state, expires_at_ms = excluded.expires_at_ms,
                    removed_at_ms = excluded.removed_at_ms
                """)
            statement.bind(1, subscription.id)
            statement.bind(2, subscription.calendarKey)
            statement.bind(3, blob: subscription.sealedClientState)
            statement.bind(4, Self.milliseconds(subscription.expiresAt))
            statement.bind(5, subscription.removedAt.map(Self.milliseconds))
            statement.bind(6, subscription.createdAt.map(Self.milliseconds))
            try statement.run()
        }
    }

    /// One subscription, or nil.
    public func graphSubscription(id: String) async throws -> StoredGraphSubscription? {
        try await run { database in
            let statement = try database.prepare(Self.subscriptionColumns + " WHERE id = ?")
            statement.bind(1, id)
            guard try statement.step() else { return nil }
            let row = Self.readSubscription(statement)
            try statement.run()
            return row
        }
    }

    /// The calendar's subscriptions not yet removed, newest expiry first.
    public func liveGraphSubscriptions(calendarKey: String) async throws -> [StoredGraphSubscription] {
        try await run { database in
            let statement = try database.prepare(
                Self.subscriptionColumns + " WHERE calendar_key = ? AND removed_at_ms IS NULL ORDER BY expires_at_ms DESC, id"
            )
            statement.bind(1, calendarKey)
            var rows: [StoredGraphSubscription] = []
            while try statement.step() { rows.append(Self.readSubscription(statement)) }
            return rows
        }
    }

    /// Every live subscription.
    public func allLiveGraphSubscriptions() async throws -> [StoredGraphSubscription] {
        try await run { database in
            let statement = try database.prepare(
                Self.subscriptionColumns + " WHERE removed_at_ms IS NULL ORDER BY calendar_key, expires_at_ms DESC, id"
            )
            var rows: [StoredGraphSubscription] = []
            while try statement.step() { rows.append(Self.readSubscription(statement)) }
            return rows
        }
    }

    /// Marks the subscription removed (first removal time wins).
    public func markGraphSubscriptionRemoved(id: String, at: Date) async throws {
        let when = Self.milliseconds(at)
        defer { credentialsChanged() }
        try await run { database in
            let statement = try database.prepare("UPDATE graph_subscriptions SET removed_at_ms = ? WHERE id = ? AND removed_at_ms IS NULL")
            statement.bind(1, when)
            statement.bind(2, id)
            try statement.run()
        }
    }

    /// Stores a renewed expiry and when the renewal happened.
    public func updateGraphSubscriptionExpiry(id: String, expiresAt: Date, renewedAt: Date) async throws {
        let when = Self.milliseconds(expiresAt)
        let renewed = Self.milliseconds(renewedAt)
        defer { credentialsChanged() }
        try await run { database in
            let statement = try database.prepare("UPDATE graph_subscriptions SET expires_at_ms = ?, created_at_ms = ? WHERE id = ?")
            statement.bind(1, when)
            statement.bind(2, renewed)
            statement.bind(3, id)
            try statement.run()
        }
    }

    static let subscriptionColumns =
        "SELECT id, calendar_key, sealed_client_state, expires_at_ms, removed_at_ms, created_at_ms FROM graph_subscriptions"

    static func readSubscription(_ statement: SQLiteStatement) -> StoredGraphSubscription {
        StoredGraphSubscription(
            id: statement.string(0) ?? "", calendarKey: statement.string(1) ?? "", sealedClientState: statement.blob(2),
            expiresAt: date(statement.int64(3)), removedAt: statement.isNull(4) ? nil : date(statement.int64(4)),
            createdAt: statement.isNull(5) ? nil : date(statement.int64(5))
        )
    }
}
