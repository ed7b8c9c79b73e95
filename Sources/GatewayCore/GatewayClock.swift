import Foundation

/// The time port: every timer in the gateway reads this so tests can move time by hand.
public protocol GatewayClock: Sendable {
    /// The current wall-clock time.
    func now() -> Date
}

/// The real clock.
public struct SystemGatewayClock: GatewayClock {
    /// Creates the system clock.
    public init() {}
    /// The current system time.
    public func now() -> Date { Date() }
}

/// A clock that moves only when told to (state machines stepped in tests, the simulated month).
public final class ManualGatewayClock: GatewayClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    /// Starts at `start`.
    public init(start: Date = Date()) {
        current = start
    }

    /// The clock's time.
    public func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Moves the clock forward by `seconds` (never backwards).
    public func advance(by seconds: TimeInterval) {
        lock.lock()
        current = current.addingTimeInterval(max(0, seconds))
        lock.unlock()
    }

    /// Sets the clock to `date` if it is later.
    public func set(_ date: Date) {
        lock.lock()
        if date > current { current = date }
        lock.unlock()
    }
}
