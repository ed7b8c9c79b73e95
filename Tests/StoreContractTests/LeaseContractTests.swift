import Foundation
import GatewayCore
import Testing

/// Work leases (`WorkLeasing`) on every backend; expiry only where leases are shared (PostgreSQL).
@Suite("Store contract: work leases")
struct LeaseContractTests {
    @Test(arguments: Backend.available)
    func claimDenyExtendRelease(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let leases = store.workLeases
            #expect(leases.isShared == (backend == .postgres))
            #expect(try await leases.claimLease("sync:c1/a", owner: "A", duration: 60))
            #expect(try await leases.claimLease("sync:c1/a", owner: "B", duration: 60) == false, "another owner is refused")
            #expect(try await leases.claimLease("sync:c1/a", owner: "A", duration: 60), "the holder extends its claim")
            #expect(try await leases.claimLease("sync:c1/b", owner: "B", duration: 60), "keys are independent")
            try await leases.releaseLease("sync:c1/a", owner: "B")
            #expect(try await leases.claimLease("sync:c1/a", owner: "B", duration: 60) == false, "releasing what one does not hold does nothing")
            try await leases.releaseLease("sync:c1/a", owner: "A", record: WorkRecord(kind: "sync", startedAt: date(1_733_800_000), inboxRows: [1, 2, 3], outcome: "ok"))
            #expect(try await leases.claimLease("sync:c1/a", owner: "B", duration: 60), "free after release")
            try await leases.releaseLease("never-claimed", owner: "A")
        }
    }

    @Test(arguments: Backend.available.filter { $0 == .postgres })
    func claimsLapseAfterTheirDuration(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let leases = store.workLeases
            let claimed = ContinuousClock.now
            #expect(try await leases.claimLease("poll:acct", owner: "A", duration: 0.3))
            let denied = try await leases.claimLease("poll:acct", owner: "B", duration: 0.3)
            // Only meaningful while the claim cannot have lapsed yet (a loaded machine may take longer to get here).
            if ContinuousClock.now - claimed < .milliseconds(250) { #expect(denied == false) }
            try await Task.sleep(for: .milliseconds(800))
            #expect(try await leases.claimLease("poll:acct", owner: "B", duration: 60), "a lapsed claim is free")
            #expect(try await leases.claimLease("poll:acct", owner: "A", duration: 60) == false)
        }
    }

    @Test(arguments: Backend.available)
    func concurrentClaimsHaveOneWinner(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let leases = store.workLeases
            let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                for n in 0..<20 { group.addTask { try await leases.claimLease("renewal:c9", owner: "owner-\(n)", duration: 60) } }
                var winners = 0
                for try await won in group where won { winners += 1 }
                return winners
            }
            #expect(winners == 1)
        }
    }
}
