import Foundation
import GatewayCore

/// Graph subscriptions are the `microsoft` rows of `push_subscriptions` (see `StoredPushSubscription.init(_:)` for
/// the column mapping); this view keeps the Graph callers' API.
extension SQLiteStore: GraphSubscriptionStore {
    /// Inserts or replaces a subscription row; an existing row keeps its `createdAt` (only a renewal restarts a
    /// Graph subscription's life, through `updateGraphSubscriptionExpiry`).
    public func saveGraphSubscription(_ subscription: StoredGraphSubscription) async throws {
        defer { credentialsChanged() }
        try await run { database in
            try Self.upsertPushSubscription(StoredPushSubscription(subscription), keepingCreatedAt: true, in: database)
        }
    }

    /// One subscription, or nil.
    public func graphSubscription(id: String) async throws -> StoredGraphSubscription? {
        try await pushSubscription(provider: .microsoft, id: id).map(StoredGraphSubscription.init)
    }

    /// The calendar's subscriptions not yet removed, newest expiry first.
    public func liveGraphSubscriptions(calendarKey: String) async throws -> [StoredGraphSubscription] {
        try await livePushSubscriptions(provider: .microsoft, calendarKey: calendarKey).map(StoredGraphSubscription.init)
    }

    /// Every live subscription, by calendar then newest expiry first.
    public func allLiveGraphSubscriptions() async throws -> [StoredGraphSubscription] {
        try await allLivePushSubscriptions(provider: .microsoft).map(StoredGraphSubscription.init)
    }

    /// Marks the subscription removed (first removal time wins).
    public func markGraphSubscriptionRemoved(id: String, at: Date) async throws {
        try await endPushSubscription(provider: .microsoft, id: id, at: at)
    }

    /// Stores a renewed expiry and when the renewal happened.
    public func updateGraphSubscriptionExpiry(id: String, expiresAt: Date, renewedAt: Date) async throws {
        let when = Self.milliseconds(expiresAt)
        let renewed = Self.milliseconds(renewedAt)
        defer { credentialsChanged() }
        try await run { database in
            let statement = try database.prepare(
                "UPDATE push_subscriptions SET expires_at_ms = ?1, created_at_ms = ?2 WHERE provider = ?3 AND id = ?4"
            )
            statement.bind(1, when)
            statement.bind(2, renewed)
            statement.bind(3, Provider.microsoft.rawValue)
            statement.bind(4, id)
            try statement.run()
        }
    }
}
