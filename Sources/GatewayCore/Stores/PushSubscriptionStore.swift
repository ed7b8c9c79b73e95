import Foundation

/// Where every provider's push subscriptions are kept, so pushes can be verified against them and renewals can find
/// what is about to lapse. Rows are keyed by (provider, id); the Google-channel and Graph-subscription methods
/// (`saveGoogleChannel`, `liveGraphSubscriptions`, …) are views of the `google` and `microsoft` rows.
///
/// Every committed write changes `GatewayStore.webhookCredentialsVersion`.
public protocol PushSubscriptionStore: Sendable {
    /// Inserts the subscription, or replaces every column of the row with the same provider and id; with
    /// `keepingCreatedAt`, an existing row keeps its `createdAt` (a Graph save does not restart a subscription's life,
    /// only `renewPushSubscription` does).
    func savePushSubscription(_ subscription: StoredPushSubscription, keepingCreatedAt: Bool) async throws
    /// The subscription with this provider and id, ended or not; nil when unknown.
    func pushSubscription(provider: Provider, id: String) async throws -> StoredPushSubscription?
    /// Ends a subscription (the first end time wins); nothing happens for an unknown one.
    func endPushSubscription(provider: Provider, id: String, at: Date) async throws
    /// The provider's active subscriptions for a calendar, newest expiry first (then by id).
    func livePushSubscriptions(provider: Provider, calendarKey: String) async throws -> [StoredPushSubscription]
    /// Every active subscription of the provider, by calendar, then newest expiry first (then by id).
    func allLivePushSubscriptions(provider: Provider) async throws -> [StoredPushSubscription]
    /// Records a renewal: the new expiry the provider answered, and when the renewal happened (the start of the new
    /// life); nothing happens for an unknown one.
    func renewPushSubscription(provider: Provider, id: String, expiresAt: Date, renewedAt: Date) async throws
}

extension PushSubscriptionStore {
    /// Inserts the subscription, or replaces every column of the row with the same provider and id.
    public func savePushSubscription(_ subscription: StoredPushSubscription) async throws {
        try await savePushSubscription(subscription, keepingCreatedAt: false)
    }

    // MARK: Google channels: the `google` rows (see `StoredPushSubscription.init(_:)` for the column mapping)

    /// Inserts or replaces a channel.
    public func saveGoogleChannel(_ channel: StoredGoogleChannel) async throws {
        try await savePushSubscription(StoredPushSubscription(channel))
    }

    /// The channel with this id, stopped or not; nil when unknown.
    public func googleChannel(id: String) async throws -> StoredGoogleChannel? {
        try await pushSubscription(provider: .google, id: id).map(StoredGoogleChannel.init)
    }

    /// Marks a channel stopped (the first stop time wins; pushes for it are then refused without a retry status).
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

    // MARK: Graph subscriptions: the `microsoft` rows

    /// Inserts or replaces a subscription; an existing row keeps its `createdAt` (only a renewal restarts a Graph
    /// subscription's life, through `updateGraphSubscriptionExpiry`).
    public func saveGraphSubscription(_ subscription: StoredGraphSubscription) async throws {
        try await savePushSubscription(StoredPushSubscription(subscription), keepingCreatedAt: true)
    }

    /// One subscription, removed or not.
    public func graphSubscription(id: String) async throws -> StoredGraphSubscription? {
        try await pushSubscription(provider: .microsoft, id: id).map(StoredGraphSubscription.init)
    }

    /// The calendar's subscriptions not yet removed, newest expiry first.
    public func liveGraphSubscriptions(calendarKey: String) async throws -> [StoredGraphSubscription] {
        try await livePushSubscriptions(provider: .microsoft, calendarKey: calendarKey).map(StoredGraphSubscription.init)
    }

    /// Every subscription not yet removed, by calendar then newest expiry first.
    public func allLiveGraphSubscriptions() async throws -> [StoredGraphSubscription] {
        try await allLivePushSubscriptions(provider: .microsoft).map(StoredGraphSubscription.init)
    }

    /// Marks a subscription removed (deleted by calgate, or Graph said it is gone; the first removal time wins);
    /// notifications for it are then dropped.
    public func markGraphSubscriptionRemoved(id: String, at: Date) async throws {
        try await endPushSubscription(provider: .microsoft, id: id, at: at)
    }

    /// Records a renewal: the new expiry Graph answered, and when the renewal happened.
    public func updateGraphSubscriptionExpiry(id: String, expiresAt: Date, renewedAt: Date) async throws {
        try await renewPushSubscription(provider: .microsoft, id: id, expiresAt: expiresAt, renewedAt: renewedAt)
    }
}
