import CalgateMacros
import Foundation

/// A Google channel row: the token is sealed (see `SecretSealer`), never stored in the clear.
@MemberwiseInit
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
    public var stoppedAt: Date? = nil
    /// When calgate opened it (nil for rows older than that column).
    public var createdAt: Date? = nil
}
