import Foundation

/// Decides when each calendar's delta fetch runs, so bursts of notifications cause few fetches.
///
/// A plain value whose methods return what to do; the sync scheduler carries the actions out on its clock. The
/// first notification for an idle calendar schedules one fetch after `window`; everything arriving before that
/// fetch starts rides along; anything arriving while it runs marks the calendar dirty and yields exactly one
/// follow-up fetch. A failed fetch backs off and keeps the calendar dirty, so no notification is lost. So 1,000
/// notifications for one calendar within one window cause at most two fetches.
public struct SyncCoalescer<Key: Hashable & Sendable>: Sendable {
    /// Where one calendar is.
    public enum Phase: Sendable, Hashable {
        /// Nothing to do.
        case idle
        /// A fetch is due at this time.
        case pending(due: Date)
        /// A fetch is running; `dirty` when more notifications came in meanwhile.
        case running(dirty: Bool)
        /// The last fetch failed; retry at `until`.
        case backingOff(until: Date, attempt: Int)
    }

    /// What the scheduler must do.
    public enum Action: Sendable, Hashable {
        /// Nothing.
        case none
        /// Wake up for `key` at this time (replaces any earlier wake-up for it).
        case wake(Key, at: Date)
        /// Start the delta fetch for `key` now.
        case fetch(Key)
    }

    /// How long notifications are gathered before a fetch.
    public let window: TimeInterval
    /// Retry delays after failures.
    public let backoff: BackoffPolicy
    private var phases: [Key: Phase] = [:]
    private var failures: [Key: Int] = [:]

    /// Creates a coalescer.
    public init(window: TimeInterval, backoff: BackoffPolicy = BackoffPolicy()) {
        self.window = window
        self.backoff = backoff
    }

    /// The phase of `key`.
    public func phase(of key: Key) -> Phase { phases[key] ?? .idle }

    /// Calendars with work pending, running or waiting to retry.
    public var busyCount: Int { phases.count }

    /// A verified notification for `key` arrived (or a sweep asks for a sync).
    public mutating func notify(_ key: Key, now: Date) -> Action {
        switch phase(of: key) {
        case .idle:
            let due = now.addingTimeInterval(window)
            phases[key] = .pending(due: due)
            return .wake(key, at: due)
        case .pending, .backingOff, .running(dirty: true):
            return .none
        case .running(dirty: false):
            phases[key] = .running(dirty: true)
            return .none
        }
    }

    /// The wake-up for `key` fired.
    public mutating func wake(_ key: Key, now: Date) -> Action {
        switch phase(of: key) {
        case .pending(let due) where now >= due:
            phases[key] = .running(dirty: false)
            return .fetch(key)
        case .backingOff(let until, _) where now >= until:
            phases[key] = .running(dirty: false)
            return .fetch(key)
        case .pending(let due):
            return .wake(key, at: due)
        case .backingOff(let until, _):
            return .wake(key, at: until)
        case .idle, .running:
            return .none
        }
    }

    /// The fetch for `key` finished. On failure `unit` is the jitter draw and `retryAfter` the provider's hint.
    public mutating func fetchFinished(_ key: Key, succeeded: Bool, now: Date, unit: Double = 1, retryAfter: TimeInterval? = nil) -> Action {
        guard case .running(let dirty) = phase(of: key) else { return .none }
        if succeeded {
            failures[key] = nil
            guard dirty else {
                phases[key] = nil
                return .none
            }
            let due = now.addingTimeInterval(window)
            phases[key] = .pending(due: due)
            return .wake(key, at: due)
        }
        let attempt = (failures[key] ?? 0) + 1
        failures[key] = attempt
        let until = now.addingTimeInterval(backoff.delay(attempt: attempt, unit: unit, retryAfter: retryAfter))
        phases[key] = .backingOff(until: until, attempt: attempt)
        return .wake(key, at: until)
    }

    /// Forgets `key` (its connection was removed); a running fetch's result is then ignored.
    public mutating func remove(_ key: Key) {
        phases[key] = nil
        failures[key] = nil
    }
}
