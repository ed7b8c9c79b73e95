import Foundation

/// Where every provider's push subscriptions are kept, so pushes can be verified against them and renewals can find
/// what is about to lapse. Rows are keyed by (provider, id); `GoogleChannelStore` and `GraphSubscriptionStore` are
/// views of the Google and Microsoft rows.
///
/// Every committed write changes `GatewayStore.webhookCredentialsVersion`.
public protocol PushSubscriptionStore: Sendable {
    /// Inserts the subscription, or replaces every column of the row with the same provider and id.
    func savePushSubscription(_ subscription: StoredPushSubscription) async throws
    /// The subscription with this provider and id, ended or not; nil when unknown.
    func pushSubscription(provider: Provider, id: String) async throws -> StoredPushSubscription?
    /// Ends a subscription (the first end time wins); nothing happens for an unknown one.
    func endPushSubscription(provider: Provider, id: String, at: Date) async throws
    /// The provider's active subscriptions for a calendar, newest expiry first (then by id).
    func livePushSubscriptions(provider: Provider, calendarKey: String) async throws -> [StoredPushSubscription]
    /// Every active subscription of the provider, by calendar, then newest expiry first (then by id).
    func allLivePushSubscriptions(provider: Provider) async throws -> [StoredPushSubscription]
}
