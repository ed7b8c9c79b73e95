import CalgateMacros
import Foundation
import Synchronization

/// Calendars hash into a fixed number of partitions; on PostgreSQL each instance owns some of them (leases in
/// `partition_leases`) and reads, coalesces and syncs only the inbox rows, subscriptions, sweeps, polls and push jobs
/// of the calendars in its partitions. A single process (SQLite) owns them all.
public enum Partitions {
    /// How many partitions there are. Recorded in the PostgreSQL schema (`partition_leases` holds one row per
    /// partition); changing it needs a migration.
    public static let count = 256

    /// The partition of `key` (a calendar key `<connection>/<calendar>`, or a channel id for inbox rows that name no
    /// calendar): FNV-1a 64 over its UTF-8, modulo `count`. Stable across processes, builds and machines (Swift's
    /// `Hasher` is seeded per process and would not be).
    public static func partition(of key: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }

    /// The partition of a calendar's connection-level work (a connection's calendars can sit in several partitions;
    /// work about the whole connection follows the connection id).
    public static func partition(ofConnection connectionID: String) -> Int {
        partition(of: connectionID)
    }

    /// The fair share of `count` partitions among `liveInstances` instances: the most one instance keeps,
    /// ceil(count / live).
    public static func fairShare(liveInstances: Int) -> Int {
        let live = max(1, liveInstances)
        return (count + live - 1) / live
    }
}

/// What one rebalancing step decides for one instance, from what it owns and how many instances are alive: keep
/// what it owns up to its fair share, give back the rest (highest partitions first, so a joining instance gets its
/// share), and claim free or lapsed partitions up to the share.
@MemberwiseInit
public struct PartitionPlan: Sendable, Hashable {
    /// Partitions to give back now (owned beyond the fair share).
    public var release: [Int] = []
    /// How many free or lapsed partitions to claim.
    public var claim: Int = 0

    /// The plan for an instance that owns `owned` while `liveInstances` instances (itself included) heartbeat.
    public static func plan(owned: Set<Int>, liveInstances: Int) -> PartitionPlan {
        let share = Partitions.fairShare(liveInstances: liveInstances)
        if owned.count > share {
            return PartitionPlan(release: Array(owned.sorted().suffix(owned.count - share)), claim: 0)
        }
        return PartitionPlan(release: [], claim: share - owned.count)
    }
}

/// The partitions this instance owns now, shared by everything that decides whether a piece of work is this
/// instance's (the scheduler, maintenance, the sweep, the Redtail poll, the push worker). `nil` means all of them
/// (a single process). The generation changes with every change of the set, so readers notice gains and losses.
public final class PartitionOwnership: Sendable {
    private let state: Mutex<(owned: Set<Int>?, generation: UInt64)>

    /// Owns every partition (a single process), or none yet (`all: false`, an instance that has not claimed any).
    public init(all: Bool) {
        state = Mutex((all ? nil : [], 0))
    }

    /// One owner of everything (SQLite, tests).
    public static let everything = PartitionOwnership(all: true)

    /// The owned partitions (nil: all) and the set's generation.
    public var snapshot: (owned: Set<Int>?, generation: UInt64) { state.withLock { $0 } }

    /// How many partitions this instance owns.
    public var ownedCount: Int { state.withLock { $0.owned?.count ?? Partitions.count } }

    /// Whether `partition` is this instance's.
    public func owns(partition: Int) -> Bool {
        state.withLock { $0.owned?.contains(partition) ?? true }
    }

    /// Whether the calendar `calendarKey` is this instance's.
    public func owns(calendarKey: String) -> Bool {
        owns(partition: Partitions.partition(of: calendarKey))
    }

    /// Replaces the owned set (bumping the generation when it changed).
    public func update(_ owned: Set<Int>) {
        state.withLock { state in
            guard state.owned != owned else { return }
            state.owned = owned
            state.generation += 1
        }
    }
}

/// One instance's partition count, as status pages show it.
@MemberwiseInit
public struct PartitionOwnerSummary: Sendable, Hashable, Codable {
    /// The owning instance (`<host>-<pid>` unless configured).
    public var owner: String
    /// How many partitions it holds (live leases).
    public var partitions: Int
    /// Whether its instance heartbeat is current.
    public var live: Bool = true
}

/// The result of one heartbeat.
@MemberwiseInit
public struct PartitionHeartbeat: Sendable, Hashable {
    /// The partitions this instance holds after the step.
    public var owned: Set<Int>
    /// Instances heartbeating now (this one included).
    public var liveInstances: Int
}

/// Where partition leases are kept (PostgreSQL's `partition_leases` and `calgate_instances`, or `PartitionTable` in
/// memory for tests and the simulation).
public protocol PartitionLeasing: Sendable {
    /// One heartbeat of `owner`: records it alive for `duration`, renews its partition leases, gives back partitions
    /// beyond its fair share and claims free or lapsed ones up to it (`PartitionPlan`). Returns what it owns after.
    func heartbeat(owner: String, duration: TimeInterval) async throws -> PartitionHeartbeat
    /// Gives back every partition `owner` holds and removes its heartbeat (a graceful shutdown), so the others take
    /// its partitions at their next heartbeat instead of after its leases lapse.
    func leave(owner: String) async throws
    /// Who holds how many partitions now (live leases), most first.
    func owners() async throws -> [PartitionOwnerSummary]
}

/// Partition leases in memory on an injected clock: the same algorithm as PostgreSQL's (`PartitionPlan`), for
/// step-by-step tests and for simulating many instances.
public final class PartitionTable: PartitionLeasing {
    private struct Lease {
        var owner: String
        var expiresAt: Date
    }

    private let clock: any GatewayClock
    private let state = Mutex<(leases: [Int: Lease], instances: [String: Date])>(([:], [:]))

    /// An empty table (every partition free).
    public init(clock: any GatewayClock) {
        self.clock = clock
    }

    /// See `PartitionLeasing.heartbeat(owner:duration:)`.
    public func heartbeat(owner: String, duration: TimeInterval) async throws -> PartitionHeartbeat {
        let now = clock.now()
        return state.withLock { state in
            state.instances[owner] = now.addingTimeInterval(duration)
            let live = state.instances.values.filter { $0 > now }.count
            var owned: Set<Int> = []
            for (partition, lease) in state.leases where lease.owner == owner && lease.expiresAt > now {
                state.leases[partition]?.expiresAt = now.addingTimeInterval(duration)
                owned.insert(partition)
            }
            let plan = PartitionPlan.plan(owned: owned, liveInstances: live)
            for partition in plan.release {
                state.leases[partition] = nil
                owned.remove(partition)
            }
            var wanted = plan.claim
            for partition in 0..<Partitions.count where wanted > 0 {
                if let lease = state.leases[partition], lease.expiresAt > now { continue }
                state.leases[partition] = Lease(owner: owner, expiresAt: now.addingTimeInterval(duration))
                owned.insert(partition)
                wanted -= 1
            }
            return PartitionHeartbeat(owned: owned, liveInstances: live)
        }
    }

    /// See `PartitionLeasing.leave(owner:)`.
    public func leave(owner: String) async throws {
        state.withLock { state in
            state.instances[owner] = nil
            state.leases = state.leases.filter { $0.value.owner != owner }
        }
    }

    /// See `PartitionLeasing.owners()`.
    public func owners() async throws -> [PartitionOwnerSummary] {
        let now = clock.now()
        return state.withLock { state in
            var counts: [String: Int] = [:]
            for lease in state.leases.values where lease.expiresAt > now { counts[lease.owner, default: 0] += 1 }
            return counts.map { PartitionOwnerSummary(owner: $0.key, partitions: $0.value, live: (state.instances[$0.key] ?? .distantPast) > now) }
                .sorted { ($0.partitions, $1.owner) > ($1.partitions, $0.owner) }
        }
    }

    /// The owner of `partition` now (nil when free or lapsed).
    public func owner(of partition: Int) -> String? {
        let now = clock.now()
        return state.withLock { state in state.leases[partition].flatMap { $0.expiresAt > now ? $0.owner : nil } }
    }
}
