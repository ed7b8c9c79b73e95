import CalgateMacros
import Foundation

/// One push subscription of any provider: a Google channel, a Graph subscription, or a plugin's equivalent. The
/// secret every push must carry is sealed (see `SecretSealer`, context `sealingContext`), never stored in the clear.
///
/// `state` is derived from `endedAt` rather than stored: one column cannot disagree with itself, and the rows carried
/// over from the provider-specific tables (which had only a stop or removal time) need no translation.
@MemberwiseInit
public struct StoredPushSubscription: Sendable, Hashable {
    /// Whether pushes for a subscription are still accepted.
    public enum State: String, Sendable, Hashable {
        /// Not ended: pushes are verified against it.
        case active
        /// Stopped by calgate, or removed by the provider; pushes for it are refused.
        case ended
    }

    /// The provider that delivers its pushes.
    public var provider: Provider
    /// The id pushes name it by (calgate's channel id for Google, the provider's subscription id for Graph); unique
    /// per provider.
    public var id: String
    /// The calendar it watches.
    public var calendarKey: String
    /// The provider's id of the watched resource, for providers that have one (Google's `resourceId`).
    public var resourceID: String? = nil
    /// The secret pushes must carry (Google's channel token, Graph's `clientState`), sealed for `sealingContext`.
    public var sealedSecret: [UInt8]
    /// When the provider said it expires.
    public var expiresAt: Date
    /// When its current life began (creation, or the last renewal where the provider renews in place); nil for rows
    /// older than that column.
    public var createdAt: Date? = nil
    /// When calgate stopped it or the provider said it was removed; nil while active.
    public var endedAt: Date? = nil

    /// `.ended` once `endedAt` is set, `.active` before.
    public var state: State { endedAt == nil ? .active : .ended }

    /// The `SecretSealer` context its secret is sealed for.
    public var sealingContext: String { Self.sealingContext(provider: provider, id: id) }

    /// The `SecretSealer` context of a subscription's secret. Google and Microsoft keep the contexts their own tables
    /// used (`google_channel:<id>`, `graph_subscription:<id>`), so secrets sealed before the generic table still
    /// open; other providers get `push_subscription:<provider>:<id>`.
    public static func sealingContext(provider: Provider, id: String) -> String {
        switch provider {
        case .google: "google_channel:\(id)"
        case .microsoft: "graph_subscription:\(id)"
        default: "push_subscription:\(provider.rawValue):\(id)"
        }
    }
}
