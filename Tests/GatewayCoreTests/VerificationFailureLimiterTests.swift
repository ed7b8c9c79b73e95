import Foundation
import Testing
@testable import GatewayCore

/// The failed-verification budget, stepped one event at a time on a manual clock.
@Suite("Verification failure limiter")
struct VerificationFailureLimiterTests {
    let clock = ManualGatewayClock(start: Date(timeIntervalSince1970: 1_800_000_000))

    @Test func anAddressIsRefusedOnlyAfterItsBurstOfFailures() {
        var limiter = VerificationFailureLimiter(configuration: .init(burst: 3, refillInterval: 10))
        for _ in 0..<3 {
            #expect(limiter.allow(address: "203.0.113.7", now: clock.now()))
            limiter.recordFailure(address: "203.0.113.7", now: clock.now())
        }
        #expect(!limiter.allow(address: "203.0.113.7", now: clock.now()))
        #expect(limiter.retryAfter(address: "203.0.113.7", now: clock.now()) == 10)
        // Another address is untouched.
        #expect(limiter.allow(address: "203.0.113.8", now: clock.now()))
    }

    @Test func oneFailureIsForgivenPerRefillInterval() {
        var limiter = VerificationFailureLimiter(configuration: .init(burst: 2, refillInterval: 5))
        limiter.recordFailure(address: "a", now: clock.now())
        limiter.recordFailure(address: "a", now: clock.now())
        #expect(!limiter.allow(address: "a", now: clock.now()))
        clock.advance(by: 3)
        #expect(limiter.retryAfter(address: "a", now: clock.now()) == 2)
        clock.advance(by: 2)
        #expect(limiter.allow(address: "a", now: clock.now()))
        limiter.recordFailure(address: "a", now: clock.now())
        #expect(!limiter.allow(address: "a", now: clock.now()), "the forgiven failure was spent again")
        clock.advance(by: 10)
        #expect(limiter.allow(address: "a", now: clock.now()))
    }

    @Test func successesNeverSpendTheBudget() {
        // An honest provider only ever asks; only failures are recorded.
        let limiter = VerificationFailureLimiter(configuration: .init(burst: 1, refillInterval: 60))
        for _ in 0..<10_000 { #expect(limiter.allow(address: "google", now: clock.now())) }
        #expect(limiter.trackedAddresses == 0)
    }

    @Test func aClockThatStepsBackDoesNotRefill() {
        var limiter = VerificationFailureLimiter(configuration: .init(burst: 1, refillInterval: 5))
        limiter.recordFailure(address: "a", now: clock.now())
        #expect(!limiter.allow(address: "a", now: clock.now().addingTimeInterval(-100)))
        #expect(!limiter.allow(address: "a", now: clock.now()))
    }

    @Test func memoryStaysBoundedAndRecentOffendersAreKept() {
        var limiter = VerificationFailureLimiter(configuration: .init(burst: 2, refillInterval: 1_000, maxAddresses: 100))
        limiter.recordFailure(address: "offender", now: clock.now())
        limiter.recordFailure(address: "offender", now: clock.now())
        for i in 0..<1_000 {
            limiter.recordFailure(address: "scan-\(i)", now: clock.now())
            if i % 50 == 0 {
                // The offender keeps failing, so it stays among the most recently touched.
                #expect(!limiter.allow(address: "offender", now: clock.now()))
                limiter.recordFailure(address: "offender", now: clock.now())
            }
            #expect(limiter.trackedAddresses <= 100)
        }
        #expect(!limiter.allow(address: "offender", now: clock.now()))
    }

    @Test func fullBucketsAreEvictedBeforeRecentOnes() {
        var limiter = VerificationFailureLimiter(configuration: .init(burst: 2, refillInterval: 1, maxAddresses: 3))
        limiter.recordFailure(address: "old-1", now: clock.now())
        limiter.recordFailure(address: "old-2", now: clock.now())
        clock.advance(by: 5)
        limiter.recordFailure(address: "new", now: clock.now())
        limiter.recordFailure(address: "new", now: clock.now())
        limiter.recordFailure(address: "newer", now: clock.now())
        #expect(limiter.trackedAddresses == 2)
        #expect(!limiter.allow(address: "new", now: clock.now()))
    }

    @Test func theGateSharesOneBudgetAcrossThreads() async {
        let gate = VerificationFailureGate(configuration: .init(burst: 100, refillInterval: 1_000))
        let now = clock.now()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { for _ in 0..<25 { gate.recordFailure(address: "x", now: now) } }
            }
        }
        #expect(!gate.allow(address: "x", now: now))
        #expect(gate.retryAfter(address: "x", now: now) == 1_000)
        #expect(gate.allow(address: "y", now: now))
    }
}
