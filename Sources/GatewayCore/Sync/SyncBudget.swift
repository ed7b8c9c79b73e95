import Foundation

/// A request budget per connection (a user, a mailbox), as a token bucket of syncs: a connection may start
/// `capacity` syncs back to back, then `perMinute` a minute. The scheduler asks it before starting a sync, so one busy
/// account (many calendars, a flood of notifications, a recovery after an outage) stays inside its provider's
/// per-user quota (Google: 600 requests a minute per user; Graph: 10,000 per 10 minutes per mailbox; PROVIDERS.md
/// §3 and §4.5) however much work piles up. Pure: the caller passes the time.
public struct SyncBudget: Sendable, Hashable {
    private struct Bucket: Sendable, Hashable {
        var tokens: Double
        var at: Date
    }

    /// Syncs a connection may start back to back.
    public let capacity: Double
    /// Syncs a connection may start per minute, sustained.
    public let perMinute: Double
    private var buckets: [String: Bucket] = [:]

    /// A budget of `capacity` syncs at once and `perMinute` a minute per connection.
    public init(capacity: Int, perMinute: Int) {
        precondition(capacity >= 1 && perMinute >= 1, "a sync budget needs at least one sync")
        self.capacity = Double(capacity)
        self.perMinute = Double(perMinute)
    }

    /// The default: 100 syncs a minute per connection (a delta sync is a token refresh at most and a page or a few, so
    /// this stays well inside Google's 600 requests a minute per user and Graph's 1,000 a minute per mailbox).
    public static let standard = SyncBudget(capacity: 100, perMinute: 100)

    private func bucket(_ key: String, now: Date) -> Bucket {
        guard let bucket = buckets[key] else { return Bucket(tokens: capacity, at: now) }
        let refilled = bucket.tokens + max(0, now.timeIntervalSince(bucket.at)) * perMinute / 60
        return Bucket(tokens: min(capacity, refilled), at: max(now, bucket.at))
    }

    /// When `key` may start its next sync: nil when it may now, otherwise the time a sync's worth has refilled.
    public func nextAvailable(_ key: String, now: Date) -> Date? {
        let bucket = bucket(key, now: now)
        guard bucket.tokens < 1 else { return nil }
        return bucket.at.addingTimeInterval((1 - bucket.tokens) * 60 / perMinute)
    }

    /// Spends one sync of `key` at `now` (call when `nextAvailable` said nil).
    public mutating func spend(_ key: String, now: Date) {
        var bucket = bucket(key, now: now)
        bucket.tokens = max(0, bucket.tokens - 1)
        buckets[key] = bucket
        if buckets.count > 10_000 { prune(now: now) }
    }

    /// Forgets connections whose bucket is full again (they start from a full bucket anyway).
    public mutating func prune(now: Date) {
        buckets = buckets.filter { self.bucket($0.key, now: now).tokens < capacity }
    }
}
