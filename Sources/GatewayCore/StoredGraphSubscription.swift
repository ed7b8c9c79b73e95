import CalgateMacros
import Foundation

/// A Microsoft Graph subscription row; `clientState` is sealed (context `graph_subscription:<id>`).
@MemberwiseInit
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
    public var removedAt: Date? = nil
    /// When its current life began: creation, or the last renewal (nil for rows older than that column). The renewal
    /// policy measures "a quarter of its life" from here.
    public var createdAt: Date? = nil
}
