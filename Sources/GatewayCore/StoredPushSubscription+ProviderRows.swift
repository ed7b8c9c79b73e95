import Foundation

// The provider-specific rows are views of the generic one: the stores keep only `StoredPushSubscription`s and convert
// in `PushSubscriptionStore`'s Google and Graph views, so both stores convert the same way.

extension StoredPushSubscription {
    /// The generic row of a Google channel (provider `google`; the stop time is the end).
    public init(_ channel: StoredGoogleChannel) {
        self.init(
            provider: .google, id: channel.id, calendarKey: channel.calendarKey, resourceID: channel.resourceID,
            sealedSecret: channel.sealedToken, expiresAt: channel.expiresAt, createdAt: channel.createdAt, endedAt: channel.stoppedAt
        )
    }

    /// The generic row of a Graph subscription (provider `microsoft`; the removal time is the end).
    public init(_ subscription: StoredGraphSubscription) {
        self.init(
            provider: .microsoft, id: subscription.id, calendarKey: subscription.calendarKey, resourceID: nil,
            sealedSecret: subscription.sealedClientState, expiresAt: subscription.expiresAt, createdAt: subscription.createdAt,
            endedAt: subscription.removedAt
        )
    }
}

extension StoredGoogleChannel {
    /// The Google channel a generic row holds (a missing resource id reads as empty, which no push matches).
    public init(_ row: StoredPushSubscription) {
        self.init(
            id: row.id, resourceID: row.resourceID ?? "", sealedToken: row.sealedSecret, calendarKey: row.calendarKey,
            expiresAt: row.expiresAt, stoppedAt: row.endedAt, createdAt: row.createdAt
        )
    }
}

extension StoredGraphSubscription {
    /// The Graph subscription a generic row holds.
    public init(_ row: StoredPushSubscription) {
        self.init(
            id: row.id, calendarKey: row.calendarKey, sealedClientState: row.sealedSecret, expiresAt: row.expiresAt,
            removedAt: row.endedAt, createdAt: row.createdAt
        )
    }
}
