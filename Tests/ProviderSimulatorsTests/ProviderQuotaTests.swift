import Foundation
import ProviderSimulators
import Testing

/// The simulators' quota types (issue 20): fixed windows per key, concurrency per key, and the per-minute ledger of
/// throttling answers, driven with explicit times.
@Suite("Provider quotas")
struct ProviderQuotaTests {
    let minuteStart = Date(timeIntervalSince1970: 1_800_000_000 - 1_800_000_000.truncatingRemainder(dividingBy: 60))

    @Test func aWindowAdmitsItsLimitThenRefusesUntilItTurnsOver() {
        var quota = WindowQuota(limit: 3, window: 60)
        for _ in 0..<3 {
            let result1 = quota.admit("user-a", now: minuteStart.addingTimeInterval(10))
            #expect(result1 == nil)
        }
        let result2 = quota.admit("user-a", now: minuteStart.addingTimeInterval(15))
        #expect(result2 == 45, "Retry-After is the rest of the window")
        #expect(quota.used("user-a", now: minuteStart.addingTimeInterval(15)) == 3, "a refused request does not count")
        let result3 = quota.admit("user-b", now: minuteStart.addingTimeInterval(15))
        #expect(result3 == nil, "keys have their own windows")
        let result4 = quota.admit("user-a", now: minuteStart.addingTimeInterval(60))
        #expect(result4 == nil, "the next window starts empty")
        #expect(quota.used("user-a", now: minuteStart.addingTimeInterval(61)) == 1)
    }

    @Test func aRefusalAtTheWindowsLastInstantStillWaitsAtLeastASecond() {
        var quota = WindowQuota(limit: 1, window: 60)
        let result5 = quota.admit("k", now: minuteStart)
        #expect(result5 == nil)
        let result6 = quota.admit("k", now: minuteStart.addingTimeInterval(59.9))
        #expect(result6 == 1)
    }

    @Test func pruningForgetsEndedWindowsOnly() {
        var quota = WindowQuota(limit: 1, window: 60)
        _ = quota.admit("old", now: minuteStart)
        _ = quota.admit("new", now: minuteStart.addingTimeInterval(70))
        quota.prune(now: minuteStart.addingTimeInterval(70))
        #expect(quota.used("new", now: minuteStart.addingTimeInterval(70)) == 1)
        let result7 = quota.admit("new", now: minuteStart.addingTimeInterval(71))
        #expect(result7 != nil)
    }

    @Test func concurrencyIsCappedPerKeyAndFreedOnLeave() {
        var quota = ConcurrencyQuota(limit: PublishedLimits.graphConcurrentPerMailbox)
        for _ in 0..<4 {
            let result8 = quota.enter("mailbox-1")
            #expect(result8)
        }
        let result9 = quota.enter("mailbox-1")
        #expect(!result9, "Graph allows 4 concurrent requests per mailbox")
        let result10 = quota.enter("mailbox-2")
        #expect(result10)
        quota.leave("mailbox-1")
        #expect(quota.inFlight("mailbox-1") == 3)
        let result11 = quota.enter("mailbox-1")
        #expect(result11)
        #expect(quota.peak == 4)
    }

    @Test func theLedgerCountsThrottlesPerProviderMinuteBySource() {
        let ledger = ThrottleLedger()
        for second in [0.0, 10, 59] { ledger.record(.quota, at: minuteStart.addingTimeInterval(second)) }
        ledger.record(.chaos, at: minuteStart.addingTimeInterval(30))
        ledger.record(.chaos, at: minuteStart.addingTimeInterval(61))
        #expect(ledger.total(.quota) == 3)
        #expect(ledger.total(.chaos) == 2)
        #expect(ledger.peakPerMinute(.quota) == 3)
        #expect(ledger.peakPerMinute(.chaos) == 1)
        #expect(ledger.peakPerMinute() == 4, "both sources in the first minute")
        #expect(ledger.peakPerMinute(since: minuteStart.addingTimeInterval(60)) == 1)
    }

    @Test func thePublishedFiguresAreProvidersMd() {
        #expect(PublishedLimits.googlePerUserPerMinute == 600)
        #expect(PublishedLimits.googlePerProjectPerMinute == 10_000)
        #expect(PublishedLimits.graphConcurrentPerMailbox == GraphSimulator.mailboxConcurrency)
        #expect(PublishedLimits.graphPerMailboxPerTenMinutes == 10_000)
    }
}
