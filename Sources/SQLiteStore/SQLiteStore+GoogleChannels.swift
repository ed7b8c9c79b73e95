import Foundation
import GatewayCore

/// Google channels are the `google` rows of `push_subscriptions` (see `StoredPushSubscription.init(_:)` for the
/// column mapping); this view keeps the Google callers' API.
extension SQLiteStore: GoogleChannelStore {
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
}
