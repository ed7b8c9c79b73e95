import Foundation
import Testing
@testable import GatewayCore

/// Channel rotation and subscription renewal, stepped one action and one event at a time with explicit dates.
@Suite("Subscription lifecycle")
struct SubscriptionLifecycleTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let day: TimeInterval = 86_400
    /// No jitter, so "due" is exactly once 1.75 days of a 7-day life are left.
    let policy = RenewalPolicy(minimumLead: 86_400, lifeFraction: 0.25, jitter: 0)

    func record(_ id: String, createdAt: Double = 0, expiresAt: Double = 7) -> SubscriptionLifecycle.Subscription {
        SubscriptionLifecycle.Subscription(id: id, createdAt: t0.addingTimeInterval(createdAt * day), expiresAt: t0.addingTimeInterval(expiresAt * day))
    }

    func google(_ records: [SubscriptionLifecycle.Subscription], at days: Double, force: Bool = false) -> SubscriptionLifecycle {
        SubscriptionLifecycle(renewal: .replace, policy: policy, subscriptions: records, now: t0.addingTimeInterval(days * day), force: force)
    }

    func graph(_ records: [SubscriptionLifecycle.Subscription], at days: Double, force: Bool = false) -> SubscriptionLifecycle {
        SubscriptionLifecycle(renewal: .extend, policy: policy, subscriptions: records, now: t0.addingTimeInterval(days * day), force: force)
    }

    // MARK: Google: replace only

    @Test func googleWithoutAChannelOpensOneAndResyncs() {
        var lifecycle = google([], at: 0)
        #expect(lifecycle.start() == .create)
        #expect(lifecycle.handle(.created(record("c1"))) == .resync)
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(created: 1), "nothing had lapsed: there was no channel")
    }

    @Test func googleExpiredChannelIsMarkedStoppedCountedAsLapsedReplacedAndResynced() {
        var lifecycle = google([record("old")], at: 8)
        // Google dropped it already: only the row is marked, no stop call.
        #expect(lifecycle.start() == .markStopped(id: "old"))
        #expect(lifecycle.tally.lapsed == 0)
        #expect(lifecycle.handle(.done) == .create)
        #expect(lifecycle.tally.lapsed == 1)
        #expect(lifecycle.handle(.created(record("new", createdAt: 8, expiresAt: 15))) == .resync)
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(created: 1, lapsed: 1))
    }

    @Test func googleLapseCountsEvenWhenOpeningTheReplacementFails() {
        var lifecycle = google([record("old")], at: 8)
        #expect(lifecycle.start() == .markStopped(id: "old"))
        #expect(lifecycle.handle(.done) == .create)
        // The interpreter stops on the error; the report keeps what was attempted.
        #expect(lifecycle.tally == tally(lapsed: 1))
    }

    @Test func googleChannelNotYetDueIsLeftAlone() {
        var lifecycle = google([record("c1")], at: 5.2)
        #expect(lifecycle.start() == .finished)
        #expect(lifecycle.tally == tally())
    }

    @Test func googleDueChannelGetsASuccessorThenTheOlderIsStopped() {
        var lifecycle = google([record("old")], at: 5.5)
        #expect(lifecycle.start() == .create)
        #expect(lifecycle.handle(.created(record("new", createdAt: 5.5, expiresAt: 12.5))) == .stopAtProvider(id: "old"))
        #expect(lifecycle.tally == tally(renewed: 1), "the successor counts as soon as Google confirmed it")
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(renewed: 1, stopped: 1), "no resync: the old channel covered the overlap")
    }

    @Test func googleForcedRenewalReplacesAChannelThatIsNotDue() {
        var lifecycle = google([record("old")], at: 1, force: true)
        #expect(lifecycle.start() == .create)
        #expect(lifecycle.handle(.created(record("new", createdAt: 1, expiresAt: 8))) == .stopAtProvider(id: "old"))
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(renewed: 1, stopped: 1))
    }

    @Test func googleSeveralLiveChannelsKeepOnlyTheNewest() {
        // A stop that failed on earlier passes left older channels live; given in no particular order.
        var lifecycle = google([record("b", expiresAt: 6), record("c", expiresAt: 5), record("a", expiresAt: 7)], at: 1)
        #expect(lifecycle.start() == .stopAtProvider(id: "b"))
        #expect(lifecycle.handle(.done) == .stopAtProvider(id: "c"))
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(stopped: 2))
    }

    @Test func googleSuccessorAfterAnExpiredAndAnOlderLiveChannel() {
        // Expired rows are marked first; the successor then supersedes every other live channel.
        var lifecycle = google([record("dead", expiresAt: 5), record("old", expiresAt: 7), record("older", expiresAt: 6)], at: 5.5)
        #expect(lifecycle.start() == .markStopped(id: "dead"))
        #expect(lifecycle.handle(.done) == .create)
        #expect(lifecycle.handle(.created(record("new", createdAt: 5.5, expiresAt: 12.5))) == .stopAtProvider(id: "old"))
        #expect(lifecycle.handle(.done) == .stopAtProvider(id: "older"))
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(renewed: 1, stopped: 2), "a live channel remained: not a lapse")
    }

    @Test func googleTiesOnExpiryKeepTheChannelTheStoreListsFirst() {
        var lifecycle = google([record("b"), record("a")], at: 1)
        #expect(lifecycle.start() == .stopAtProvider(id: "b"))
        #expect(lifecycle.handle(.done) == .finished)
    }

    // MARK: Graph: extend, recreate when gone

    @Test func graphDueSubscriptionIsRenewed() {
        var lifecycle = graph([record("s1")], at: 5.5)
        #expect(lifecycle.start() == .renew(id: "s1"))
        #expect(lifecycle.handle(.renewed(id: "s1", expiresAt: t0.addingTimeInterval(12.5 * day))) == .finished)
        #expect(lifecycle.tally == tally(renewed: 1))
    }

    @Test func graphSubscriptionNotYetDueIsLeftAlone() {
        var lifecycle = graph([record("s1")], at: 5.2)
        #expect(lifecycle.start() == .finished)
    }

    @Test func graphRenewalAnsweredGoneRecreatesAndResyncs() {
        var lifecycle = graph([record("s1")], at: 5.5)
        #expect(lifecycle.start() == .renew(id: "s1"))
        #expect(lifecycle.handle(.gone(id: "s1")) == .markStopped(id: "s1"))
        #expect(lifecycle.handle(.done) == .create)
        #expect(lifecycle.handle(.created(record("s2", createdAt: 5.5, expiresAt: 12.5))) == .resync)
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(created: 1), "neither renewed nor lapsed: Graph dropped it before its expiry")
    }

    @Test func graphRecreationStillDeletesDuplicates() {
        var lifecycle = graph([record("extra", expiresAt: 6.5), record("s1")], at: 5.5)
        #expect(lifecycle.start() == .renew(id: "s1"))
        #expect(lifecycle.handle(.gone(id: "s1")) == .markStopped(id: "s1"))
        #expect(lifecycle.handle(.done) == .create)
        #expect(lifecycle.handle(.created(record("s2", createdAt: 5.5, expiresAt: 12.5))) == .resync)
        #expect(lifecycle.handle(.done) == .stopAtProvider(id: "extra"))
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(created: 1, stopped: 1))
    }

    @Test func graphRenewalThenDuplicatesDeleted() {
        var lifecycle = graph([record("dup", expiresAt: 6.5), record("s1")], at: 5.5)
        #expect(lifecycle.start() == .renew(id: "s1"))
        #expect(lifecycle.handle(.renewed(id: "s1", expiresAt: t0.addingTimeInterval(12.5 * day))) == .stopAtProvider(id: "dup"))
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(renewed: 1, stopped: 1))
    }

    @Test func graphRemovedSubscriptionIsCreatedAgainWithoutALapse() {
        // A subscriptionRemoved lifecycle event marked the only row removed: no live record is left.
        var lifecycle = graph([], at: 3)
        #expect(lifecycle.start() == .create)
        #expect(lifecycle.handle(.created(record("s2", createdAt: 3, expiresAt: 10))) == .resync)
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(created: 1))
    }

    @Test func graphExpiredSubscriptionIsALapse() {
        var lifecycle = graph([record("s1")], at: 8)
        #expect(lifecycle.start() == .markStopped(id: "s1"))
        #expect(lifecycle.handle(.done) == .create)
        #expect(lifecycle.handle(.created(record("s2", createdAt: 8, expiresAt: 15))) == .resync)
        #expect(lifecycle.handle(.done) == .finished)
        #expect(lifecycle.tally == tally(created: 1, lapsed: 1))
    }

    @Test func graphForcedRenewalExtendsASubscriptionThatIsNotDue() {
        var lifecycle = graph([record("s1")], at: 1, force: true)
        #expect(lifecycle.start() == .renew(id: "s1"))
        #expect(lifecycle.handle(.renewed(id: "s1", expiresAt: t0.addingTimeInterval(8 * day))) == .finished)
        #expect(lifecycle.tally == tally(renewed: 1))
    }

    @Test func graphFailedRenewalBacksOffAndIsNotRetriedBeforeTheBackoffElapses() {
        let backoff = BackoffPolicy(base: 60, cap: 3600)
        var retry = SubscriptionLifecycle.Retry()
        let failedAt = t0.addingTimeInterval(5.5 * day)
        #expect(retry.allowsAttempt(at: failedAt))
        var lifecycle = graph([record("s1")], at: 5.5)
        #expect(lifecycle.start() == .renew(id: "s1"))
        // The PATCH failed (validation timed out): the interpreter stops stepping and records the failure.
        let next = retry.failed(now: failedAt, policy: backoff, unit: 0.5)
        #expect(next == failedAt.addingTimeInterval(30))
        #expect(lifecycle.tally == tally(), "nothing renewed")
        #expect(!retry.allowsAttempt(at: failedAt.addingTimeInterval(29)))
        #expect(retry.allowsAttempt(at: next))

        // The second failure in a row waits twice as long; Retry-After wins when it is longer.
        #expect(retry.failed(now: next, policy: backoff, unit: 0.5) == next.addingTimeInterval(60))
        #expect(retry.attempt == 2)
        #expect(retry.failed(now: next, policy: backoff, unit: 0.5, retryAfter: 900) == next.addingTimeInterval(900))

        // Once allowed, a fresh pass tries the renewal again.
        var again = SubscriptionLifecycle(
            renewal: .extend, policy: policy, subscriptions: [record("s1")], now: next.addingTimeInterval(900)
        )
        #expect(again.start() == .renew(id: "s1"))
    }

    @Test func aFreshRetryStateAllowsAnAttempt() {
        #expect(SubscriptionLifecycle.Retry().allowsAttempt(at: t0))
        #expect(SubscriptionLifecycle.Retry().notBefore == nil)
    }

    func tally(renewed: Int = 0, created: Int = 0, lapsed: Int = 0, stopped: Int = 0) -> SubscriptionLifecycle.Tally {
        var tally = SubscriptionLifecycle.Tally()
        tally.renewed = renewed
        tally.created = created
        tally.lapsed = lapsed
        tally.stopped = stopped
        return tally
    }
}
