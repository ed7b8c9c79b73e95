import Foundation
import GatewayCore
import Testing

/// The scheduler's per-connection sync budget (issue 20): a token bucket on an explicit clock.
@Suite("Sync budget")
struct SyncBudgetTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aConnectionMaySpendItsCapacityThenWaitsForTheRefill() {
        var budget = SyncBudget(capacity: 3, perMinute: 60)
        for _ in 0..<3 {
            #expect(budget.nextAvailable("gc_1", now: start) == nil)
            budget.spend("gc_1", now: start)
        }
        #expect(budget.nextAvailable("gc_1", now: start) == start.addingTimeInterval(1), "one a second at 60 a minute")
        #expect(budget.nextAvailable("gc_2", now: start) == nil, "every connection has its own budget")
        #expect(budget.nextAvailable("gc_1", now: start.addingTimeInterval(1)) == nil)
        budget.spend("gc_1", now: start.addingTimeInterval(1))
        #expect(budget.nextAvailable("gc_1", now: start.addingTimeInterval(1.5)) == start.addingTimeInterval(2))
    }

    @Test func theRefillStopsAtTheCapacity() {
        var budget = SyncBudget(capacity: 2, perMinute: 60)
        budget.spend("k", now: start)
        budget.spend("k", now: start)
        // An hour idle refills two, not 3,600.
        let later = start.addingTimeInterval(3600)
        budget.spend("k", now: later)
        budget.spend("k", now: later)
        #expect(budget.nextAvailable("k", now: later) != nil)
    }

    @Test func aSustainedFloodGetsThePerMinuteRateAndNoMore() {
        var budget = SyncBudget(capacity: 10, perMinute: 30)
        var now = start
        var started = 0
        // Ten minutes of a calendar asking every second.
        while now < start.addingTimeInterval(600) {
            if budget.nextAvailable("gc_busy", now: now) == nil {
                budget.spend("gc_busy", now: now)
                started += 1
            }
            now = now.addingTimeInterval(1)
        }
        #expect(started >= 10 + 30 * 10 - 1 && started <= 10 + 30 * 10)
    }

    @Test func pruningKeepsOnlyConnectionsStillBelowCapacity() {
        var budget = SyncBudget(capacity: 2, perMinute: 60)
        budget.spend("old", now: start)
        budget.spend("new", now: start.addingTimeInterval(100))
        budget.prune(now: start.addingTimeInterval(100.5))
        #expect(budget.nextAvailable("new", now: start.addingTimeInterval(100.5)) == nil)
        var expected = SyncBudget(capacity: 2, perMinute: 60)
        expected.spend("new", now: start.addingTimeInterval(100))
        #expect(budget == expected)
    }

    @Test func theStandardBudgetStaysInsideGooglesPerUserQuota() {
        // A delta sync is at most a token refresh and a few pages: 100 syncs a minute stay under 600 requests.
        #expect(SyncBudget.standard.perMinute * 5 <= 600)
    }
}
