import Foundation
import Synchronization

/// A token bucket per source address that only failed verifications drain.
///
/// Each address starts with `burst` tokens; every failed verification (a forged Google push, a wrong clientState, a
/// wrong bearer token) takes one, and one comes back every `refillInterval` seconds. An address with less than one
/// token is refused before its request is verified, until the bucket refills. Successful requests never take a
/// token, so an honest provider is never slowed however much it sends.
///
/// Memory is bounded: at most `maxAddresses` buckets are kept. A full bucket is the same as no bucket, so those go
/// first; if that is not enough, the least recently touched half is dropped (an evicted address starts again with
/// a full bucket, which only ever errs towards letting a caller through).
///
/// A plain value with no I/O: the clock is an argument, so tests step it. `VerificationFailureGate` wraps it in a
/// lock for use from event loops and async handlers alike.
public struct VerificationFailureLimiter: Sendable {
    /// How generous the budget is.
    public struct Configuration: Sendable, Hashable {
        /// Failures an address may have in a row before it is refused.
        public var burst: Int
        /// Seconds for one failure to be forgiven.
        public var refillInterval: TimeInterval
        /// Most addresses tracked at once.
        public var maxAddresses: Int

        /// Creates a configuration (defaults: 30 failures, one forgiven every 2 s, 10,000 addresses).
        public init(burst: Int = 30, refillInterval: TimeInterval = 2, maxAddresses: Int = 10_000) {
            self.burst = max(1, burst)
            self.refillInterval = max(0.001, refillInterval)
            self.maxAddresses = max(1, maxAddresses)
        }
    }

    struct Bucket: Sendable {
        var tokens: Double
        var updatedAt: Date
        var touch: UInt64
    }

    /// The budget.
    public let configuration: Configuration
    private var buckets: [String: Bucket] = [:]
    private var touches: UInt64 = 0

    /// Creates a limiter with every address at a full budget.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Addresses currently tracked (those with at least one unforgiven failure, at most `maxAddresses`).
    public var trackedAddresses: Int { buckets.count }

    /// True when `address` may be verified now; false when it has used up its failure budget.
    public func allow(address: String, now: Date) -> Bool {
        retryAfter(address: address, now: now) == nil
    }

    /// Nil when `address` may be verified now, or the whole seconds until it may (at least 1), for `Retry-After`.
    public func retryAfter(address: String, now: Date) -> Int? {
        guard var bucket = buckets[address] else { return nil }
        refill(&bucket, now: now)
        guard bucket.tokens < 1 else { return nil }
        return max(1, Int(((1 - bucket.tokens) * configuration.refillInterval).rounded(.up)))
    }

    /// Counts one failed verification from `address`.
    public mutating func recordFailure(address: String, now: Date) {
        touches &+= 1
        var bucket = buckets[address] ?? Bucket(tokens: Double(configuration.burst), updatedAt: now, touch: touches)
        refill(&bucket, now: now)
        bucket.tokens = max(0, bucket.tokens - 1)
        bucket.touch = touches
        if buckets[address] == nil, buckets.count >= configuration.maxAddresses {
            evict(now: now)
        }
        buckets[address] = bucket
    }

    private func refill(_ bucket: inout Bucket, now: Date) {
        let elapsed = now.timeIntervalSince(bucket.updatedAt)
        // A clock that steps backwards forgives nothing and takes nothing.
        guard elapsed > 0 else { return }
        bucket.tokens = min(Double(configuration.burst), bucket.tokens + elapsed / configuration.refillInterval)
        bucket.updatedAt = now
    }

    private mutating func evict(now: Date) {
        let full = Double(configuration.burst)
        let interval = configuration.refillInterval
        buckets = buckets.filter { _, bucket in
            bucket.tokens + max(0, now.timeIntervalSince(bucket.updatedAt)) / interval < full
        }
        guard buckets.count >= configuration.maxAddresses else { return }
        let keep = configuration.maxAddresses / 2
        let newest = buckets.sorted { $0.value.touch > $1.value.touch }.prefix(keep)
        buckets = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }
}

/// `VerificationFailureLimiter` behind a lock: callable from a NIO event loop or an async handler (nothing inside
/// blocks or suspends, and the lock is held only for a dictionary lookup).
public final class VerificationFailureGate: Sendable {
    private let limiter: Mutex<VerificationFailureLimiter>

    /// Creates a gate with every address at a full budget.
    public init(configuration: VerificationFailureLimiter.Configuration = .init()) {
        limiter = Mutex(VerificationFailureLimiter(configuration: configuration))
    }

    /// Nil when `address` may be verified now, or the seconds to put in `Retry-After`.
    public func retryAfter(address: String, now: Date) -> Int? {
        limiter.withLock { $0.retryAfter(address: address, now: now) }
    }

    /// True when `address` may be verified now.
    public func allow(address: String, now: Date) -> Bool {
        retryAfter(address: address, now: now) == nil
    }

    /// Counts one failed verification from `address`.
    public func recordFailure(address: String, now: Date) {
        limiter.withLock { $0.recordFailure(address: address, now: now) }
    }

    /// Addresses currently tracked.
    public var trackedAddresses: Int { limiter.withLock { $0.trackedAddresses } }
}
