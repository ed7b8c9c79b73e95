import Foundation

/// A Microsoft Graph subscription row; `clientState` is sealed (context `graph_subscription:<id>`).
public struct StoredGraphSubscription: Sendable, Hashable {
    /// Graph's subscription id.
    public var id: String
    /// The calendar it watches.
    public var calendarKey: String
    /// The sealed `clientState` secret every notification must carry.
    public var sealedClientState: [UInt8]
    /// When Graph said it expires.
    public var expiresAt: Date
    /// When calgate deleted it, or Graph said it was removed.
    public var removedAt: Date?
    /// When its current life began: creation, or the last renewal (nil for rows older than that column). The renewal
    /// policy measures "a quarter of its life" from here.
    public var createdAt: Date?

    /// Creates a row.
    public init(id: String, calendarKey: String, sealedClientState: [UInt8], expiresAt: Date, removedAt: Date? = nil, createdAt: Date? = nil) {
        self.createdAt = createdAt
        self.id = id
        self.calendarKey = calendarKey
        self.sealedClientState = sealedClientState
        self.expiresAt = expiresAt
        self.removedAt = removedAt
    }
}

/// Where Graph subscriptions are kept so notifications can be verified against them.
public protocol GraphSubscriptionStore: Sendable {
    /// Inserts or replaces a subscription.
    func saveGraphSubscription(_ subscription: StoredGraphSubscription) async throws
    /// One subscription, removed or not.
    func graphSubscription(id: String) async throws -> StoredGraphSubscription?
    /// The calendar's subscriptions not yet removed, newest expiry first.
    func liveGraphSubscriptions(calendarKey: String) async throws -> [StoredGraphSubscription]
    /// Every subscription not yet removed, by calendar then newest expiry first.
    func allLiveGraphSubscriptions() async throws -> [StoredGraphSubscription]
    /// Marks a subscription removed (deleted by calgate, or Graph said it is gone); notifications for it are then dropped.
    func markGraphSubscriptionRemoved(id: String, at: Date) async throws
    /// Records a renewal: the new expiry Graph answered, and when the renewal happened (the start of the new life).
    func updateGraphSubscriptionExpiry(id: String, expiresAt: Date, renewedAt: Date) async throws
}
