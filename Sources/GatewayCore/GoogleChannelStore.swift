import Foundation

/// A Google channel row: the token is sealed (see `SecretSealer`), never stored in the clear.
public struct StoredGoogleChannel: Sendable, Hashable {
    /// Channel id calgate chose.
    public var id: String
    /// Google's `resourceId` for the watched collection.
    public var resourceID: String
    /// The channel token, sealed for context `google_channel:<id>`.
    public var sealedToken: [UInt8]
    /// The calendar the channel watches.
    public var calendarKey: String
    /// Expiry Google returned.
    public var expiresAt: Date
    /// When calgate stopped the channel (pushes for it are then refused without a retry status).
    public var stoppedAt: Date?
    /// When calgate opened it (nil for rows older than that column).
    public var createdAt: Date?

    /// Creates a row.
    public init(
        id: String, resourceID: String, sealedToken: [UInt8], calendarKey: String, expiresAt: Date, stoppedAt: Date? = nil, createdAt: Date? = nil
    ) {
        self.createdAt = createdAt
        self.id = id
        self.resourceID = resourceID
        self.sealedToken = sealedToken
        self.calendarKey = calendarKey
        self.expiresAt = expiresAt
        self.stoppedAt = stoppedAt
    }
}

/// Where Google channels are kept so pushes can be verified against them.
public protocol GoogleChannelStore: Sendable {
    /// Inserts or replaces a channel.
    func saveGoogleChannel(_ channel: StoredGoogleChannel) async throws
    /// The channel with this id, stopped or not; nil when unknown.
    func googleChannel(id: String) async throws -> StoredGoogleChannel?
    /// Marks a channel stopped.
    func stopGoogleChannel(id: String, at: Date) async throws
    /// The calendar's channels not yet stopped, newest expiry first.
    func liveGoogleChannels(calendarKey: String) async throws -> [StoredGoogleChannel]
    /// Every channel not yet stopped, by calendar then newest expiry first.
    func allLiveGoogleChannels() async throws -> [StoredGoogleChannel]
}
