import Foundation
import GatewayCore
import PostgresNIO

/// Google channels and Graph subscriptions are the `google` and `microsoft` rows of `push_subscriptions` (see
/// `StoredPushSubscription.init(_:)` for the column mapping); these views keep their callers' API. Writes NOTIFY and
/// bump the credentials version as every push subscription write does.
extension PostgresStore: GoogleChannelStore, GraphSubscriptionStore {
    // MARK: Google channels

    /// Inserts or replaces a channel row.
    public func saveGoogleChannel(_ channel: StoredGoogleChannel) async throws {
        try await savePushSubscription(StoredPushSubscription(channel))
    }

    /// The channel with `id`, or nil.
    public func googleChannel(id: String) async throws -> StoredGoogleChannel? {
        try await pushSubscription(provider: .google, id: id).map(StoredGoogleChannel.init)
    }

    /// Marks the channel stopped (the first stop time wins).
    public func stopGoogleChannel(id: String, at: Date) async throws {
        try await endPushSubscription(provider: .google, id: id, at: at)
    }

    /// The calendar's channels not yet stopped, newest expiry first.
    public func liveGoogleChannels(calendarKey: String) async throws -> [StoredGoogleChannel] {
        try await livePushSubscriptions(provider: .google, calendarKey: calendarKey).map(StoredGoogleChannel.init)
    }

    /// Every channel not yet stopped, by calendar then newest expiry first.
    public func allLiveGoogleChannels() async throws -> [StoredGoogleChannel] {
        try await allLivePushSubscriptions(provider: .google).map(StoredGoogleChannel.init)
    }

    // MARK: Graph subscriptions

    /// Inserts or replaces a subscription row (an existing row keeps its `created_at`, as in SQLiteStore).
    public func saveGraphSubscription(_ subscription: StoredGraphSubscription) async throws {
        try await upsertPushSubscription(StoredPushSubscription(subscription), keepingCreatedAt: true)
    }

    /// One subscription, removed or not.
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

    /// Marks the subscription removed (the first removal time wins).
    public func markGraphSubscriptionRemoved(id: String, at: Date) async throws {
        try await endPushSubscription(provider: .microsoft, id: id, at: at)
    }

    /// Stores a renewed expiry and when the renewal happened.
    public func updateGraphSubscriptionExpiry(id: String, expiresAt: Date, renewedAt: Date) async throws {
        try await credentialsWrite("renewing push_subscriptions row microsoft/\(id)") { connection in
            try await connection.query(
                """
                UPDATE push_subscriptions SET expires_at = \(Self.ms(expiresAt)), created_at = \(Self.ms(renewedAt))
                WHERE provider = \(Provider.microsoft.rawValue) AND id = \(id)
                """,
                logger: logger
            )
        }
    }
}
