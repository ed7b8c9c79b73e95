import Foundation

/// Exponential backoff with full jitter, capped, and never shorter than a provider's `Retry-After`.
///
/// Pure: the random draw is passed in, so tests and the scheduler's test clock get exact delays.
public struct BackoffPolicy: Sendable, Hashable {
    /// Delay ceiling for the first retry, in seconds.
    public var base: TimeInterval
    /// Largest delay, in seconds.
    public var cap: TimeInterval

    /// Creates a policy.
    public init(base: TimeInterval = 1, cap: TimeInterval = 300) {
        precondition(base > 0 && cap >= base, "backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
    }

    /// The delay before retry number `attempt` (1 for the first retry); `unit` is a uniform draw in [0, 1).
    public func delay(attempt: Int, unit: Double, retryAfter: TimeInterval? = nil) -> TimeInterval {
        let exponent = Double(max(0, attempt - 1))
        let ceiling = min(cap, base * pow(2, min(exponent, 62)))
        let jittered = ceiling * min(max(unit, 0), 1)
        // Never less than the provider asked for, and never less than a tenth of the base (no hot loops).
        return max(jittered, retryAfter ?? 0, base / 10)
    }
}
