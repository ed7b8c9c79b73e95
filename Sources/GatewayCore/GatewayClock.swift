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
