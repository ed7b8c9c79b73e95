import CalgateMacros
import Foundation
import Synchronization

/// What happened recently, for the operator console and `calgate status`: notifications accepted and rejected and
/// syncs finished per minute, each calendar's last sync result, and each connection's latest notifications.
///
/// In memory only (it restarts empty with the process) and bounded: counts live in ten-second buckets kept for
/// five minutes; each connection keeps its last `recentLimit` notifications. Never holds a token or a body.
public final class GatewayActivity: Sendable {
    /// The last sync of one calendar.
    @MemberwiseInit
    public struct SyncRecord: Sendable, Hashable {
        /// When it finished.
        public var finishedAt: Date
        /// Whether it worked.
        public var succeeded: Bool
        /// Changes it applied.
        public var changes: Int
        /// Whether it replaced the calendar (full sync).
        public var fullSync: Bool
        /// Why it failed (the `SyncFailure` message, which never holds secrets).
        public var message: String?
    }

    /// A notification the scheduler matched to one of the connection's calendars.
    @MemberwiseInit
    public struct NotificationRecord: Sendable, Hashable {
        /// The calendar it is about.
        public var calendarKey: String
        /// The provider's kind of message (`exists`, `updated`, `subscriptionRemoved`, …).
        public var kind: String
        /// When the gateway received it.
        public var receivedAt: Date
    }

    /// Counts over the last minute.
    public struct Rates: Sendable, Hashable {
        /// Notifications stored, per provider.
        public var accepted: [Provider: Int] = [:]
        /// Notifications refused, per `provider/reason` (fixed labels such as `google/bad_token`).
        public var rejected: [String: Int] = [:]
        /// Syncs that worked, per provider.
        public var syncsSucceeded: [Provider: Int] = [:]
        /// Syncs that failed, per provider.
        public var syncsFailed: [Provider: Int] = [:]

        /// Creates empty rates.
        public init() {}
    }

    private struct Bucket {
        var slot: Int64
        var rates = Rates()
    }

    private struct State {
        var buckets: [Bucket] = []
        var lastSync: [String: SyncRecord] = [:]
        var recent: [String: [NotificationRecord]] = [:]
    }

    private static let bucketSeconds: Int64 = 10
    private static let keptBuckets: Int64 = 30
    private let clock: any GatewayClock
    private let recentLimit: Int
    private let state = Mutex(State())

    /// Creates an empty log reading `clock`.
    public init(clock: any GatewayClock = SystemGatewayClock(), recentLimit: Int = 20) {
        self.clock = clock
        self.recentLimit = recentLimit
    }

    /// How many recent notifications each connection keeps.
    public var recentNotificationLimit: Int { recentLimit }

    /// Counts a stored notification.
    public func notificationAccepted(provider: Provider) {
        count { $0.accepted[provider, default: 0] += 1 }
    }

    /// Counts a refused notification; `reason` is a fixed label, never request data.
    public func notificationRejected(provider: Provider, reason: String) {
        count { $0.rejected["\(provider.rawValue)/\(reason)", default: 0] += 1 }
    }

    /// Remembers a notification the scheduler matched to `calendarKey`.
    public func notificationRouted(calendarKey: String, kind: String, receivedAt: Date) {
        notificationsRouted([NotificationRecord(calendarKey: calendarKey, kind: kind, receivedAt: receivedAt)])
    }

    /// Remembers notifications the scheduler matched to their calendars (one page of the inbox, oldest first): one
    /// lock, lists changed in place, and only each connection's newest `recentLimit` kept.
    public func notificationsRouted(_ records: [NotificationRecord]) {
        guard !records.isEmpty else { return }
        let limit = recentLimit
        // Newest first, at most `limit` per connection: older ones in a large page would be dropped at once anyway.
        var newest: [String: [NotificationRecord]] = [:]
        for record in records.reversed() {
            guard let slash = record.calendarKey.utf8.firstIndex(of: UInt8(ascii: "/")) else { continue }
            let connectionID = String(record.calendarKey[..<slash])
            if newest[connectionID, default: []].count < limit { newest[connectionID, default: []].append(record) }
        }
        state.withLock { state in
            for (connectionID, records) in newest {
                state.recent[connectionID, default: []].append(contentsOf: records.reversed())
                let count = state.recent[connectionID]?.count ?? 0
                if count > limit { state.recent[connectionID]?.removeFirst(count - limit) }
            }
        }
    }

    /// Counts a finished sync and keeps it as the calendar's last result.
    public func syncFinished(calendarKey: String, provider: Provider, _ record: SyncRecord) {
        count { rates in
            if record.succeeded { rates.syncsSucceeded[provider, default: 0] += 1 } else { rates.syncsFailed[provider, default: 0] += 1 }
        }
        state.withLock { $0.lastSync[calendarKey] = record }
    }

    /// The counts of the last sixty seconds (the six newest ten-second buckets).
    public func lastMinute() -> Rates {
        let current = slot(clock.now())
        return state.withLock { state in
            var total = Rates()
            for bucket in state.buckets where bucket.slot > current - 60 / Self.bucketSeconds {
                total.accepted.merge(bucket.rates.accepted, uniquingKeysWith: +)
                total.rejected.merge(bucket.rates.rejected, uniquingKeysWith: +)
                total.syncsSucceeded.merge(bucket.rates.syncsSucceeded, uniquingKeysWith: +)
                total.syncsFailed.merge(bucket.rates.syncsFailed, uniquingKeysWith: +)
            }
            return total
        }
    }

    /// The calendar's last sync, if one finished since start.
    public func lastSync(calendarKey: String) -> SyncRecord? {
        state.withLock { $0.lastSync[calendarKey] }
    }

    /// The connection's latest notifications, newest first.
    public func recentNotifications(connectionID: String) -> [NotificationRecord] {
        state.withLock { Array(($0.recent[connectionID] ?? []).reversed()) }
    }

    private func slot(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / Double(Self.bucketSeconds)).rounded(.down))
    }

    private func count(_ change: (inout Rates) -> Void) {
        let current = slot(clock.now())
        state.withLock { state in
            if state.buckets.last?.slot != current {
                state.buckets.removeAll { $0.slot <= current - Self.keptBuckets || $0.slot > current }
                state.buckets.append(Bucket(slot: current))
            }
            change(&state.buckets[state.buckets.count - 1].rates)
        }
    }
}
