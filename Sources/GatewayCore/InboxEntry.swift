import CalgateMacros
import Foundation

/// A verified inbound notification, as it is written to the durable inbox before the webhook is acknowledged.
///
/// The inbox keeps exactly what the provider sent that matters for sync (selected headers and the body), so a
/// crash after the acknowledgement never loses a change: workers replay unprocessed rows on start.
@MemberwiseInit
public struct InboxEntry: Sendable, Hashable {
    /// Provider that sent the notification.
    public var provider: Provider
    /// Channel or subscription id the notification names (Google `X-Goog-Channel-ID`, Graph `subscriptionId`).
    public var channelID: String
    /// Provider message identity used to drop duplicates (Google channel id + message number, Graph notification hash).
    /// `nil` when the provider gives none; such entries are never deduplicated.
    public var dedupeKey: String? = nil
    /// Kind of message (`sync`, `exists`, `created`, `reauthorizationRequired`, …).
    public var kind: String
    /// Time the gateway received the request.
    public var receivedAt: Date
    /// Headers kept for processing (never authorization headers).
    public var headers: [String: String] = [:]
    /// Raw request body (empty for Google pushes).
    public var body: [UInt8] = []

    /// The `headers` key under which verification records the calendar the notification is about (the channel's
    /// or subscription's calendar, known from its stored credential), so mapping a row to its calendar needs no
    /// store read. Not a provider header: provider header names are lower-case `x-…` or Graph's field names.
    public static let calendarKeyHeader = "calgate.calendar_key"

    /// The calendar verification resolved the notification to; nil for rows stored before it was recorded, or when
    /// the provider's credential names none.
    public var calendarKey: String? { headers[Self.calendarKeyHeader] }

    /// The partition the row belongs to (`Partitions`): its calendar's, or, for a row that names no calendar, its
    /// channel's. The instance that owns it reads and routes the row.
    public var partition: Int { Partitions.partition(of: calendarKey.flatMap { $0.isEmpty ? nil : $0 } ?? channelID) }

    /// The entry with the calendar it is about recorded (unchanged when `calendarKey` is nil or empty).
    public func naming(calendar calendarKey: String?) -> InboxEntry {
        guard let calendarKey, !calendarKey.isEmpty else { return self }
        var entry = self
        entry.headers[Self.calendarKeyHeader] = calendarKey
        return entry
    }
}

/// An inbox row as read back from the store.
@MemberwiseInit
public struct StoredInboxEntry: Sendable, Hashable {
    /// Monotonic row id assigned at commit.
    public var id: Int64
    /// The entry as appended.
    public var entry: InboxEntry
    /// How many times a worker has tried to process it.
    public var attempts: Int
    /// Which store appended it (an instance's group commit on PostgreSQL; "" on SQLite, which has one): see
    /// `InboxCursor`.
    public var appender: String = ""
}

/// Result of appending one entry: the committed row id, or that the entry duplicated one already stored.
public enum InboxAppendResult: Sendable, Hashable {
    /// Newly committed with this row id.
    case stored(Int64)
    /// An entry with the same `dedupeKey` already exists (with this row id); nothing new was written.
    case duplicate(Int64)

    /// The row id either way.
    public var rowID: Int64 {
        switch self {
        case .stored(let id), .duplicate(let id): return id
        }
    }
}
