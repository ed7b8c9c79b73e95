import GatewayCore
import SyncEngine
import Testing

/// Regression (issue 20's fleet month): with the scheduler's backoff capped at 300 s, a week-long Graph outage had every
/// Graph calendar retried every few minutes (110,000 failed calls a day for 380 calendars) and the whole backlog back
/// within 5 minutes of the end. The default cap is now an hour.
@Suite("Scheduler outage backoff")
struct SchedulerOutageBackoffTests {
    @Test func aWeekLongOutageIsRetriedLessThanFourTimesAnHourPerCalendar() {
        let policy = SyncScheduler.Configuration().backoff
        let units = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
        var attempts = 0
        var elapsed = 0.0
        while elapsed < 7 * 86_400 {
            attempts += 1
            elapsed += policy.delay(attempt: attempts, unit: units[attempts % units.count])
        }
        #expect(attempts < 7 * 24 * 4, "\(attempts) retries in a week")
        #expect(policy.cap >= 3_600)
    }

    @Test func aShortBlipIsStillRetriedWithinSeconds() {
        let policy = SyncScheduler.Configuration().backoff
        #expect(policy.delay(attempt: 1, unit: 0.99) < 2)
        #expect((1...5).map { policy.delay(attempt: $0, unit: 0.99) }.reduce(0, +) < 60)
    }
}
