import Foundation
import Testing
@testable import GatewayCore

@Suite("Partitions: hashing, fair shares and leases")
struct PartitionTests {
    let lease: TimeInterval = 10

    @Test func thePartitionFunctionIsFNV1aModuloTheCountAndStable() {
        #expect(Partitions.count == 256)
        // FNV-1a 64: "" hashes to the offset basis 0xcbf29ce484222325, "a" to 0xaf63dc4c8601ec8c.
        #expect(Partitions.partition(of: "") == 0x25)
        #expect(Partitions.partition(of: "a") == 0x8c)
        #expect(Partitions.partition(of: "conn-1/primary") == 176)
        #expect(Partitions.partition(of: "conn-1/primary") == Partitions.partition(of: "conn-1/primary"))
    }

    @Test func calendarsSpreadEvenlyOverThePartitions() {
        var counts = [Int](repeating: 0, count: Partitions.count)
        for connection in 0..<1000 {
            for calendar in 0..<10 { counts[Partitions.partition(of: "c\(connection)/cal\(calendar)@example.com")] += 1 }
        }
        // 10,000 keys, 39 per partition on average.
        #expect(counts.min()! >= 15)
        #expect(counts.max()! <= 70)
    }

    @Test func anInboxRowBelongsToItsCalendarsPartitionOrElseItsChannels() {
        let entry = InboxEntry(provider: .google, channelID: "ch-1", kind: "exists", receivedAt: Date())
        #expect(entry.partition == Partitions.partition(of: "ch-1"))
        #expect(entry.naming(calendar: "conn-1/primary").partition == Partitions.partition(of: "conn-1/primary"))
    }

    @Test func thePlanKeepsTheFairShareGivesBackTheHighestAndClaimsTheRest() {
        #expect(Partitions.fairShare(liveInstances: 1) == 256)
        #expect(Partitions.fairShare(liveInstances: 3) == 86)
        #expect(Partitions.fairShare(liveInstances: 20) == 13)
        #expect(Partitions.fairShare(liveInstances: 0) == 256)
        #expect(PartitionPlan.plan(owned: Set(0..<256), liveInstances: 2) == PartitionPlan(release: Array(128..<256), claim: 0))
        #expect(PartitionPlan.plan(owned: Set(0..<10), liveInstances: 2) == PartitionPlan(release: [], claim: 118))
        #expect(PartitionPlan.plan(owned: Set(0..<86), liveInstances: 3) == PartitionPlan(release: [], claim: 0))
    }

    @Test func ownershipChangesBumpTheGeneration() {
        let ownership = PartitionOwnership(all: true)
        #expect(ownership.owns(calendarKey: "anything"))
        #expect(ownership.snapshot.owned == nil)
        ownership.update([1, 2])
        let first = ownership.snapshot.generation
        ownership.update([1, 2])
        #expect(ownership.snapshot.generation == first)
        #expect(ownership.owns(partition: 1) && !ownership.owns(partition: 3))
        ownership.update([3])
        #expect(ownership.snapshot.generation == first + 1)
        #expect(PartitionOwnership(all: false).ownedCount == 0)
    }

    /// Every partition has at most one owner at any step (by construction of the table) and each owner's set is what
    /// its heartbeat said.
    func owners(_ table: PartitionTable) -> [String: Int] {
        var counts: [String: Int] = [:]
        for partition in 0..<Partitions.count { if let owner = table.owner(of: partition) { counts[owner, default: 0] += 1 } }
        return counts
    }

    @Test func instancesJoiningLeavingAndDyingRebalanceStepByStep() async throws {
        let clock = ManualGatewayClock(start: Date(timeIntervalSince1970: 1_800_000_000))
        let table = PartitionTable(clock: clock)
        // A alone takes everything.
        #expect(try await table.heartbeat(owner: "a", duration: lease).owned.count == 256)
        // B joins: nothing is free yet, so it gets nothing on its first heartbeat...
        let b1 = try await table.heartbeat(owner: "b", duration: lease)
        #expect(b1.owned.isEmpty && b1.liveInstances == 2)
        // ...A gives back the half beyond its share at its next heartbeat, and B takes it at its next.
        clock.advance(by: lease / 4)
        #expect(try await table.heartbeat(owner: "a", duration: lease).owned == Set(0..<128))
        #expect(try await table.heartbeat(owner: "b", duration: lease).owned == Set(128..<256))
        // C joins: two more rounds and the shares are 86, 86, 84.
        for _ in 0..<2 {
            clock.advance(by: lease / 4)
            for owner in ["c", "a", "b"] { _ = try await table.heartbeat(owner: owner, duration: lease) }
        }
        clock.advance(by: lease / 4)
        #expect(try await table.heartbeat(owner: "c", duration: lease).owned.count == 84)
        #expect(owners(table) == ["a": 86, "b": 86, "c": 84])
        // B dies (no more heartbeats): its partitions stay its own until its lease lapses...
        for _ in 0..<2 {
            clock.advance(by: lease / 4)
            for owner in ["a", "c"] { _ = try await table.heartbeat(owner: owner, duration: lease) }
            #expect(owners(table)["b"] == 86)
        }
        // ...and one heartbeat after it did, A and C hold everything between them.
        clock.advance(by: lease / 4 + 0.001)
        for owner in ["a", "c"] { _ = try await table.heartbeat(owner: owner, duration: lease) }
        #expect(owners(table)["b"] == nil)
        #expect(owners(table).values.reduce(0, +) == 256)
        #expect(Set(owners(table).values) == [128])
        // C leaves gracefully: its partitions are free at once and A takes them at its next heartbeat.
        try await table.leave(owner: "c")
        #expect(try await table.heartbeat(owner: "a", duration: lease).owned.count == 256)
        #expect(try await table.owners() == [PartitionOwnerSummary(owner: "a", partitions: 256, live: true)])
    }

    /// Twenty instances starting together converge to at most ceil(256 / 20) = 13 each within a few heartbeats, and
    /// after one of them dies its 12 or 13 partitions are spread over the 19 others one lease later.
    @Test func twentyInstancesConvergeAndAbsorbADeath() async throws {
        let clock = ManualGatewayClock(start: Date(timeIntervalSince1970: 1_800_000_000))
        let table = PartitionTable(clock: clock)
        let names = (0..<20).map { "i\($0)" }
        var rounds = 0
        while rounds < 20 {
            for name in names { _ = try await table.heartbeat(owner: name, duration: lease) }
            clock.advance(by: lease / 4)
            rounds += 1
            let counts = owners(table)
            if counts.count == 20, counts.values.reduce(0, +) == 256, counts.values.max()! <= 13 { break }
        }
        #expect(rounds <= 3)
        let survivors = Array(names.dropFirst())
        var afterDeath = 0
        while afterDeath < 20 {
            for name in survivors { _ = try await table.heartbeat(owner: name, duration: lease) }
            clock.advance(by: lease / 4)
            afterDeath += 1
            let counts = owners(table)
            if counts["i0"] == nil, counts.values.reduce(0, +) == 256 { break }
        }
        // The lease is four heartbeats: the fifth heartbeat after the death finds its partitions lapsed.
        #expect(afterDeath <= 5)
        #expect(owners(table).values.max()! <= 14)
    }
}
