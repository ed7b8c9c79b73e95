import Foundation
import Testing
@testable import GatewayCore

@Suite("Sync coalescing and backoff")
struct SyncCoalescerTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aBurstForOneCalendarCausesAtMostTwoFetches() {
        var coalescer = SyncCoalescer<String>(window: 1)
        var fetches = 0
        var wakeAt: Date?
        var running = false
        // 1,000 notifications spread over one second; the scheduler wakes on time and fetches take 50 ms.
        for i in 0..<1000 {
            let now = t0.addingTimeInterval(Double(i) / 1000)
            if let due = wakeAt, now >= due {
                wakeAt = nil
                if case .fetch = coalescer.wake("cal", now: now) { fetches += 1; running = true }
            }
            if running, now >= t0.addingTimeInterval(1.05) {
                running = false
                if case .wake(_, let at) = coalescer.fetchFinished("cal", succeeded: true, now: now) { wakeAt = at }
            }
            if case .wake(_, let at) = coalescer.notify("cal", now: now) { wakeAt = at }
        }
        // Drain: wake, finish, wake again if dirty.
        var now = t0.addingTimeInterval(1)
        for _ in 0..<4 {
            if let due = wakeAt {
                now = max(now, due)
                wakeAt = nil
                if case .fetch = coalescer.wake("cal", now: now) { fetches += 1 }
                now = now.addingTimeInterval(0.05)
                if case .wake(_, let at) = coalescer.fetchFinished("cal", succeeded: true, now: now) { wakeAt = at }
            }
        }
        #expect(fetches >= 1 && fetches <= 2)
        #expect(coalescer.phase(of: "cal") == .idle)
    }

    @Test func notificationsDuringAFetchYieldExactlyOneFollowUp() {
        var c = SyncCoalescer<Int>(window: 2)
        #expect(c.notify(1, now: t0) == .wake(1, at: t0.addingTimeInterval(2)))
        #expect(c.notify(1, now: t0.addingTimeInterval(1)) == .none)
        #expect(c.wake(1, now: t0.addingTimeInterval(1)) == .wake(1, at: t0.addingTimeInterval(2)), "early wake re-arms")
        #expect(c.wake(1, now: t0.addingTimeInterval(2)) == .fetch(1))
        #expect(c.notify(1, now: t0.addingTimeInterval(3)) == .none)
        #expect(c.notify(1, now: t0.addingTimeInterval(3.5)) == .none)
        #expect(c.phase(of: 1) == .running(dirty: true))
        #expect(c.fetchFinished(1, succeeded: true, now: t0.addingTimeInterval(4)) == .wake(1, at: t0.addingTimeInterval(6)))
        #expect(c.wake(1, now: t0.addingTimeInterval(6)) == .fetch(1))
        #expect(c.fetchFinished(1, succeeded: true, now: t0.addingTimeInterval(7)) == .none)
        #expect(c.phase(of: 1) == .idle)
        #expect(c.busyCount == 0)
    }

    @Test func failuresBackOffAndNothingIsLost() {
        var c = SyncCoalescer<String>(window: 1, backoff: BackoffPolicy(base: 2, cap: 60))
        _ = c.notify("a", now: t0)
        #expect(c.wake("a", now: t0.addingTimeInterval(1)) == .fetch("a"))
        // First failure: up to 2 s (full jitter, draw 1.0 → the ceiling).
        #expect(c.fetchFinished("a", succeeded: false, now: t0.addingTimeInterval(2), unit: 1) == .wake("a", at: t0.addingTimeInterval(4)))
        #expect(c.notify("a", now: t0.addingTimeInterval(3)) == .none)
        #expect(c.wake("a", now: t0.addingTimeInterval(3)) == .wake("a", at: t0.addingTimeInterval(4)))
        #expect(c.wake("a", now: t0.addingTimeInterval(4)) == .fetch("a"))
        // Second failure doubles the ceiling; Retry-After wins when longer.
        #expect(c.fetchFinished("a", succeeded: false, now: t0.addingTimeInterval(5), unit: 1) == .wake("a", at: t0.addingTimeInterval(9)))
        _ = c.wake("a", now: t0.addingTimeInterval(9))
        #expect(c.fetchFinished("a", succeeded: false, now: t0.addingTimeInterval(10), unit: 0, retryAfter: 30) == .wake("a", at: t0.addingTimeInterval(40)))
        _ = c.wake("a", now: t0.addingTimeInterval(40))
        #expect(c.fetchFinished("a", succeeded: true, now: t0.addingTimeInterval(41)) == .none)
        #expect(c.phase(of: "a") == .idle)
    }

    @Test func calendarsAreIndependentAndRemovable() {
        var c = SyncCoalescer<String>(window: 1)
        _ = c.notify("a", now: t0)
        _ = c.notify("b", now: t0)
        #expect(c.busyCount == 2)
        #expect(c.wake("a", now: t0.addingTimeInterval(1)) == .fetch("a"))
        c.remove("a")
        #expect(c.fetchFinished("a", succeeded: true, now: t0.addingTimeInterval(2)) == .none)
        #expect(c.wake("b", now: t0.addingTimeInterval(1)) == .fetch("b"))
        #expect(c.busyCount == 1)
    }

    @Test func backoffIsCappedJitteredAndNeverZero() {
        let policy = BackoffPolicy(base: 1, cap: 30)
        #expect(policy.delay(attempt: 1, unit: 1) == 1)
        #expect(policy.delay(attempt: 3, unit: 1) == 4)
        #expect(policy.delay(attempt: 50, unit: 1) == 30)
        #expect(policy.delay(attempt: 50, unit: 0.5) == 15)
        #expect(policy.delay(attempt: 2, unit: 0) == 0.1)
        #expect(policy.delay(attempt: 1, unit: 0.5, retryAfter: 120) == 120)
        #expect(policy.delay(attempt: 1000, unit: 2) == 30)
    }
}
