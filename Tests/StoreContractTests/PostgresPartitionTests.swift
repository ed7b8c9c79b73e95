import Foundation
import GatewayCore
import Logging
@testable import PostgresStore
import Testing

/// Partitioned ownership on PostgreSQL: rows record their partition and are read per partition, inbox notifications
/// name their partitions, and two instances share the partitions through leases (join, leave, lapse).
@Suite("PostgresStore: partitions", .enabled(if: PostgresTestServer.enabled, "CALGATE_TEST_POSTGRES_URL is not set"))
struct PostgresPartitionTests {
    func withTwoStores(_ body: (PostgresStore, PostgresStore) async throws -> Void) async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        try await withPostgresDatabase { url in
            let a = try await PostgresStore.open(url: url, configuration: PostgresOnlyTests.configuration("part-a-\(suffix)"), logger: testLogger)
            let b: PostgresStore
            do {
                b = try await PostgresStore.open(url: url, configuration: PostgresOnlyTests.configuration("part-b-\(suffix)"), logger: testLogger)
            } catch {
                await a.close()
                throw error
            }
            do { try await body(a, b) } catch {
                await a.close()
                await b.close()
                throw error
            }
            await a.close()
            await b.close()
        }
    }

    @Test func rowsAreReadOnlyByTheirPartitionsOwner() async throws {
        try await withTwoStores { a, _ in
            let first = InboxEntry(provider: .google, channelID: "ch-1", kind: "exists", receivedAt: Date()).naming(calendar: "gc_1/primary")
            let second = InboxEntry(provider: .google, channelID: "ch-2", kind: "exists", receivedAt: Date()).naming(calendar: "gc_2/work")
            let unnamed = InboxEntry(provider: .microsoft, channelID: "sub-3", kind: "updated", receivedAt: Date())
            #expect(Set([first.partition, second.partition, unnamed.partition]).count == 3, "the test needs three partitions")
            let ids = try await a.append([first, second, unnamed]).map(\.rowID)
            #expect(try await a.pendingRoutes(after: .start, limit: 10, partitions: [first.partition]).map(\.id) == [ids[0]])
            #expect(try await a.pendingRoutes(after: .start, limit: 10, partitions: [second.partition, unnamed.partition]).map(\.id) == [ids[1], ids[2]])
            #expect(try await a.pendingRoutes(after: .start, limit: 10, partitions: []).isEmpty)
            #expect(try await a.pendingRoutes(after: .start, limit: 10, partitions: nil).map(\.id) == ids)
            let routed = try await a.pendingRoutes(after: .start, limit: 10, partitions: [first.partition])
            #expect(routed.first?.entry.calendarKey == "gc_1/primary")
        }
    }

    @Test func inboxNotificationsNameTheirPartitions() {
        let payload = PostgresStore.inboxNotification(sender: "host 1", partitions: "3,17")
        #expect(payload == "host_1 3,17")
        #expect(PostgresStore.inboxNotification(payload, concerns: [17]))
        #expect(!PostgresStore.inboxNotification(payload, concerns: [4, 200]))
        #expect(PostgresStore.inboxNotification(payload, concerns: nil))
        #expect(PostgresStore.inboxNotification("old-instance-without-partitions", concerns: []), "an older instance's payload wakes everyone")
    }

    @Test func twoInstancesShareThePartitionsAndTakeOverWhenOneLeaves() async throws {
        try await withTwoStores { a, b in
            let leasesA = try #require(a.workLeases.partitionLeasing)
            let leasesB = try #require(b.workLeases.partitionLeasing)
            #expect(try await leasesA.heartbeat(owner: a.instanceID, duration: 30).owned.count == 256)
            // B joins: nothing free at first; A gives half back at its next heartbeat, B takes it at its next.
            let joined = try await leasesB.heartbeat(owner: b.instanceID, duration: 30)
            #expect(joined.owned.isEmpty && joined.liveInstances == 2)
            let halfA = try await leasesA.heartbeat(owner: a.instanceID, duration: 30).owned
            #expect(halfA == Set(0..<128))
            let halfB = try await leasesB.heartbeat(owner: b.instanceID, duration: 30).owned
            #expect(halfB == Set(128..<256))
            let owners = try await leasesA.owners()
            #expect(Set(owners.map(\.partitions)) == [128] && owners.count == 2)
            // A leaves gracefully: B takes everything at its next heartbeat.
            try await leasesA.leave(owner: a.instanceID)
            #expect(try await leasesB.heartbeat(owner: b.instanceID, duration: 30).owned.count == 256)
            #expect(try await leasesB.owners() == [PartitionOwnerSummary(owner: b.instanceID, partitions: 256, live: true)])
        }
    }

    @Test func aLapsedInstancesPartitionsAreTakenOver() async throws {
        try await withTwoStores { a, b in
            let leasesA = try #require(a.workLeases.partitionLeasing)
            let leasesB = try #require(b.workLeases.partitionLeasing)
            // A holds everything for one second and then stops heartbeating (as if killed).
            #expect(try await leasesA.heartbeat(owner: a.instanceID, duration: 1).owned.count == 256)
            #expect(try await leasesB.heartbeat(owner: b.instanceID, duration: 30).owned.isEmpty)
            try await Task.sleep(for: .milliseconds(1_200))
            let after = try await leasesB.heartbeat(owner: b.instanceID, duration: 30)
            #expect(after.owned.count == 256 && after.liveInstances == 1)
        }
    }
}
