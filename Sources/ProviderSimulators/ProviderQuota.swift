import Foundation
import Synchronization

/// A fixed-window request quota per key (a user, a project, a mailbox): at most `limit` requests in each `window`
/// seconds of the simulator's clock. Pure: the caller passes the time, so a test drives it without a clock.
///
/// Fixed windows (aligned to multiples of `window` since the epoch) are how the providers' published per-minute
/// and per-ten-minute figures read; a request over the limit learns how long until the window turns over, which the
/// simulators send as `Retry-After`.
public struct WindowQuota: Sendable {
    /// Requests allowed per window and key.
    public let limit: Int
    /// The window, in seconds.
    public let window: TimeInterval
    private var counts: [String: (start: Double, count: Int)] = [:]

    /// A quota of `limit` requests per `window` seconds per key.
    public init(limit: Int, window: TimeInterval) {
        precondition(limit >= 1 && window > 0, "a quota needs a positive limit and window")
        self.limit = limit
        self.window = window
    }

    /// Admits one request of `key` at `now` (nil) or refuses it with the seconds until the window turns over (at
    /// least 1). A refused request does not count.
    public mutating func admit(_ key: String, now: Date) -> TimeInterval? {
        let start = (now.timeIntervalSince1970 / window).rounded(.down) * window
        var entry: (start: Double, count: Int) = counts[key].flatMap { $0.start == start ? $0 : nil } ?? (start: start, count: 0)
        guard entry.count < limit else { return max(1, (start + window - now.timeIntervalSince1970).rounded(.up)) }
        entry.count += 1
        counts[key] = entry
        return nil
    }

    /// Requests admitted in `key`'s current window (0 once the window has turned over).
    public func used(_ key: String, now: Date) -> Int {
        let start = (now.timeIntervalSince1970 / window).rounded(.down) * window
        return counts[key].flatMap { $0.start == start ? $0.count : nil } ?? 0
    }

    /// Forgets windows that ended before `now` (long runs call it now and then to bound memory).
    public mutating func prune(now: Date) {
        let start = (now.timeIntervalSince1970 / window).rounded(.down) * window
        counts = counts.filter { $0.value.start >= start }
    }
}

/// Requests in flight per key, capped (Graph: 4 concurrent requests per app and mailbox). Pure bookkeeping: `enter`
/// says whether a request may start, `leave` ends one.
public struct ConcurrencyQuota: Sendable {
    /// Most requests at once per key.
    public let limit: Int
    private var active: [String: Int] = [:]
    /// Most requests one key had at once.
    public private(set) var peak = 0

    /// A cap of `limit` concurrent requests per key.
    public init(limit: Int) {
        precondition(limit >= 1, "a concurrency quota needs at least one slot")
        self.limit = limit
    }

    /// Starts a request of `key` if under the cap; false when refused.
    public mutating func enter(_ key: String) -> Bool {
        let now = active[key, default: 0]
        guard now < limit else { return false }
        active[key] = now + 1
        peak = max(peak, now + 1)
        return true
    }

    /// Ends a request `enter` admitted.
    public mutating func leave(_ key: String) {
        let now = active[key, default: 1] - 1
        active[key] = now <= 0 ? nil : now
    }

    /// Requests of `key` in flight.
    public func inFlight(_ key: String) -> Int { active[key, default: 0] }
}

/// The providers' published limits as the simulators enforce them (PROVIDERS.md §3 and §4.5; Redtail publishes none).
public enum PublishedLimits {
    /// Google Calendar: 600 requests per minute per user per project (answered 403 `userRateLimitExceeded`)
    /// [PROVIDERS.md §3, G-QUOTA].
    public static let googlePerUserPerMinute = 600
    /// Google Calendar: 10,000 requests per minute per project (answered 429 `rateLimitExceeded`) [PROVIDERS.md §3].
    public static let googlePerProjectPerMinute = 10_000
    /// Outlook via Graph: 4 concurrent requests per app and mailbox [PROVIDERS.md §4.5, MS-THR].
    public static let graphConcurrentPerMailbox = 4
    /// Outlook via Graph: 10,000 requests per 10 minutes per app and mailbox [PROVIDERS.md §4.5, MS-THR].
    public static let graphPerMailboxPerTenMinutes = 10_000
    /// Redtail: no limit is published (PROVIDERS.md §5.4); the simulator assumes 2 concurrent requests per
    /// credential (PROVIDERS.md's own conservative advice) and 120 requests per minute per credential.
    public static let redtailConcurrentPerUser = 2
    /// See `redtailConcurrentPerUser`: an assumption, not a published figure.
    public static let redtailPerUserPerMinute = 120
}

/// Counts a simulator's throttling answers (429, and Google's 403 rate-limit reasons) per minute of the simulator's
/// clock, separately for answers the quotas gave (the gateway asked too much) and answers the chaos injected.
public final class ThrottleLedger: Sendable {
    /// Where a throttling answer came from.
    public enum Source: String, Sendable, Hashable {
        /// A published limit was exceeded.
        case quota
        /// The chaos answered 429 at random.
        case chaos
    }

    private struct State {
        var perMinute: [Source: [Int64: Int]] = [:]
        var totals: [Source: Int] = [:]
    }

    private let state = Mutex(State())

    /// An empty ledger.
    public init() {}

    /// Records one throttling answer at `now`.
    public func record(_ source: Source, at now: Date) {
        let minute = Int64((now.timeIntervalSince1970 / 60).rounded(.down))
        state.withLock { state in
            state.perMinute[source, default: [:]][minute, default: 0] += 1
            state.totals[source, default: 0] += 1
        }
    }

    /// Throttling answers so far from `source`.
    public func total(_ source: Source) -> Int { state.withLock { $0.totals[source] ?? 0 } }

    /// The most throttling answers in one minute from `source` (nil: both sources together), counting only minutes
    /// at or after `since` when given.
    public func peakPerMinute(_ source: Source? = nil, since: Date? = nil) -> Int {
        let first = since.map { Int64(($0.timeIntervalSince1970 / 60).rounded(.down)) } ?? Int64.min
        return state.withLock { state in
            var merged: [Int64: Int] = [:]
            for (kind, minutes) in state.perMinute where source == nil || source == kind {
                for (minute, count) in minutes where minute >= first { merged[minute, default: 0] += count }
            }
            return merged.values.max() ?? 0
        }
    }
}
