import Foundation
import Synchronization

/// Random provider trouble for long runs (the simulated month): a share of API calls fail with 429 (no
/// `Retry-After`), 5xx or a timeout (the answer comes later than the client waits), a share of notifications is
/// dropped, and an outage makes every call fail and every notification vanish. Seeded, so a run can be repeated.
public final class SimulatorChaos: Sendable {
    /// What a call should do.
    public enum Failure: Sendable, Hashable {
        /// 429 without `Retry-After`.
        case rateLimit
        /// 503.
        case serverError
        /// Answer only after `timeoutDelay` (past the client's timeout).
        case timeout
    }

    struct State {
        var failureRate = 0.0
        var dropRate = 0.0
        var timeoutDelay: Duration = .milliseconds(600)
        var outage = false
        var generator = SplitMix64(seed: 1)
        var failures = 0
        var drops = 0
    }

    private let state = Mutex(State())

    /// Creates calm chaos (nothing fails until configured).
    public init() {}

    /// Sets the rates (0...1), the timeout delay and the seed.
    public func configure(failureRate: Double, dropRate: Double, timeoutDelay: Duration = .milliseconds(600), seed: UInt64) {
        state.withLock { state in
            state.failureRate = min(max(failureRate, 0), 1)
            state.dropRate = min(max(dropRate, 0), 1)
            state.timeoutDelay = timeoutDelay
            state.generator = SplitMix64(seed: seed)
        }
    }

    /// Starts or ends an outage.
    public func setOutage(_ outage: Bool) {
        state.withLock { $0.outage = outage }
    }

    /// Whether an outage is on.
    public var isOutage: Bool { state.withLock { $0.outage } }

    /// Calls failed and notifications dropped so far.
    public var counts: (failures: Int, drops: Int) { state.withLock { ($0.failures, $0.drops) } }

    /// The failure the next call gets, if any; `allowTimeout` is false for calls that must not hang (writes).
    public func nextFailure(allowTimeout: Bool = true) -> Failure? {
        state.withLock { state in
            if state.outage {
                state.failures += 1
                return .serverError
            }
            guard state.failureRate > 0, state.generator.unit() < state.failureRate else { return nil }
            state.failures += 1
            switch state.generator.next() % 3 {
            case 0: return .rateLimit
            case 1: return .serverError
            default: return allowTimeout ? .timeout : .serverError
            }
        }
    }

    /// How long a `.timeout` answer waits.
    public var timeoutDelay: Duration { state.withLock { $0.timeoutDelay } }

    /// Whether the next notification is lost.
    public func dropsNotification() -> Bool {
        state.withLock { state in
            guard state.outage || (state.dropRate > 0 && state.generator.unit() < state.dropRate) else { return false }
            state.drops += 1
            return true
        }
    }
}

/// A small seeded generator (SplitMix64): the same seed gives the same sequence on every machine, so a simulator's
/// faults and the simulated month's changes replay exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's whole state.
    public var state: UInt64

    /// A generator starting at `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
