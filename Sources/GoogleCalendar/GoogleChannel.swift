import CalgateMacros
import Foundation

/// A Google push channel as calgate stored it when it called `events.watch`.
@MemberwiseInit
public struct GoogleChannel: Sendable, Hashable {
    /// The channel id calgate chose (`X-Goog-Channel-ID`, at most 64 characters).
    public var id: String
    /// `resourceId` from the watch response (`X-Goog-Resource-ID`).
    public var resourceID: String
    /// The secret token calgate set (`X-Goog-Channel-Token`).
    public var token: String
    /// The calendar the channel watches, as the sync scheduler keys it.
    public var calendarKey: String
    /// When Google said the channel expires.
    public var expiresAt: Date
}
