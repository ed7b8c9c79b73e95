import Foundation
import GatewayCore
import Logging
import Metrics
import ServiceLifecycle

/// Keeps this instance's share of the partitions (`Partitions`): heartbeats every quarter of the lease, which renews
/// its partition leases, gives back what is beyond its fair share when another instance joined and claims free or
/// lapsed partitions when one left or died (`PartitionLeasing`), and publishes the owned set to everything that
/// decides whether work is this instance's (`PartitionOwnership`). When heartbeats keep failing for longer than the
/// lease, other instances may own its partitions already: it then owns none until a heartbeat succeeds.
/// It owns nothing from its creation until the first heartbeat. On graceful shutdown it gives its partitions back
/// at once.
public final class PartitionKeeper: Service, Sendable {
    private let leasing: any PartitionLeasing
    private let ownership: PartitionOwnership
    private let owner: String
    private let leaseDuration: TimeInterval
    private let logger: Logger

    /// Creates the keeper of `owner`'s partitions; `leaseDuration` is how long a lease lasts without a heartbeat.
    public init(leasing: any PartitionLeasing, ownership: PartitionOwnership, owner: String, leaseDuration: TimeInterval, logger: Logger) {
        self.leasing = leasing
        self.ownership = ownership
        self.owner = owner
        self.leaseDuration = leaseDuration
        self.logger = logger
        // Nothing is this instance's until its first heartbeat says what is.
        ownership.update([])
    }

    /// How often it heartbeats: a quarter of the lease, so three heartbeats may fail before a lease lapses.
    public var heartbeatInterval: TimeInterval { leaseDuration / 4 }

    /// One heartbeat; publishes and returns what it owns after it (throws what the store throws).
    @discardableResult
    public func heartbeat() async throws -> PartitionHeartbeat {
        let beat = try await leasing.heartbeat(owner: owner, duration: leaseDuration)
        let before = ownership.snapshot.owned
        ownership.update(beat.owned)
        if before != beat.owned {
            logger.info(
                "partitions rebalanced",
                metadata: ["owned": "\(beat.owned.count)", "instances": "\(beat.liveInstances)", "was": "\(before.map { "\($0.count)" } ?? "all")"])
        }
        Gauge(label: "calgate_partitions_owned").record(beat.owned.count)
        Gauge(label: "calgate_instances_live").record(beat.liveInstances)
        return beat
    }

    /// Heartbeats until graceful shutdown, then gives the partitions back.
    public func run() async throws {
        let clock = ContinuousClock()
        var lastSuccess = clock.now
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await heartbeat()
                lastSuccess = clock.now
            } catch {
                logger.warning("partition heartbeat failed", metadata: ["error": "\(error)"])
                if clock.now - lastSuccess > .seconds(leaseDuration) { ownership.update([]) }
            }
            // Short naps, so graceful shutdown gives the partitions back promptly.
            let next = clock.now + .seconds(heartbeatInterval)
            while clock.now < next, !Task.isCancelled, !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        ownership.update([])
        do { try await leasing.leave(owner: owner) } catch {
            logger.warning("cannot give partitions back; they lapse on their own", metadata: ["error": "\(error)"])
        }
    }
}
