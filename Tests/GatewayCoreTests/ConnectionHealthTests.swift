import Foundation
import GatewayCore
import Testing

/// The connection health state machine, stepped event by event on a test clock, and the renewal timing policy.
@Suite("Connection health and renewal policy")
struct ConnectionHealthTests {
    let clock = ManualGatewayClock(start: Date(timeIntervalSince1970: 1_800_000_000))

    @Test func failuresDegradeSuccessRestoresAndTheFirstFailureTimeIsKept() {
        var health = ConnectionHealth()
        #expect(health.state == .active)
        let first = clock.now()
        health = health.applying(.failed(reason: "sync failing: 503", nextRetryAt: first.addingTimeInterval(30), at: first))
        #expect(health.state == .degraded)
        #expect(health.reason == "sync failing: 503")
        #expect(health.nextRetryAt == first.addingTimeInterval(30))
        #expect(health.failingSince == first)
        clock.advance(by: 30)
        health = health.applying(.failed(reason: "renewal failed: validation timed out", nextRetryAt: clock.now().addingTimeInterval(120), at: clock.now()))
        #expect(health.state == .degraded)
        #expect(health.failingSince == first, "repeated failures keep the start of the outage")
        #expect(health.nextRetryAt == clock.now().addingTimeInterval(120))
        health = health.applying(.succeeded)
        #expect(health == ConnectionHealth())
    }

    @Test func refusedCredentialsWinAndOnlyTheUserLeavesThem() {
        var health = ConnectionHealth().applying(.failed(reason: "x", nextRetryAt: clock.now(), at: clock.now()))
        health = health.applying(.credentialsRefused(reason: "invalid_grant"))
        #expect(health.state == .needsReconnect)
        #expect(health.reason == "invalid_grant")
        #expect(health.nextRetryAt == nil)
        // Sync results cannot clear it: nothing runs until the user acts.
        #expect(health.applying(.succeeded).state == .needsReconnect)
        #expect(health.applying(.failed(reason: "y", nextRetryAt: clock.now(), at: clock.now())).state == .needsReconnect)
        #expect(health.applying(.reconnected) == ConnectionHealth())
    }

    @Test func disconnectedIsTerminalUntilReconnected() {
        let health = ConnectionHealth().applying(.disconnected)
        #expect(health.state == .disconnected)
        for event in [ConnectionHealth.Event.succeeded, .credentialsRefused(reason: "r"), .failed(reason: "f", nextRetryAt: clock.now(), at: clock.now())] {
            #expect(health.applying(event).state == .disconnected)
        }
        #expect(health.applying(.reconnected).state == .active)
        #expect(ConnectionHealth(state: .needsReconnect, reason: "r").applying(.disconnected).state == .disconnected)
        #expect(Connection.State.degraded.syncs && Connection.State.active.syncs)
        #expect(!Connection.State.needsReconnect.syncs && !Connection.State.disconnected.syncs)
    }

    @Test func renewalIsDueAtAQuarterOfTheLifeOr24HoursWithStableJitter() {
        let policy = RenewalPolicy()
        let created = clock.now()
        let week = created.addingTimeInterval(7 * 86_400)
        // A week-long channel: a quarter is 42 h, more than 24 h, stretched by up to 10 %.
        let lead = policy.lead(id: "ch-1", createdAt: created, expiresAt: week)
        #expect(lead >= 42 * 3600 && lead < 42 * 3600 * 1.1)
        #expect(lead == policy.lead(id: "ch-1", createdAt: created, expiresAt: week), "jitter is stable per id")
        #expect(!policy.isDue(id: "ch-1", createdAt: created, expiresAt: week, now: created.addingTimeInterval(5 * 86_400 - 3600 * 5)))
        #expect(policy.isDue(id: "ch-1", createdAt: created, expiresAt: week, now: created.addingTimeInterval(5.5 * 86_400)))
        // A two-day subscription: a quarter is 12 h, so the 24 h floor rules.
        let short = policy.lead(id: "sub", createdAt: created, expiresAt: created.addingTimeInterval(2 * 86_400))
        #expect(short >= 86_400 && short < 86_400 * 1.1)
        // Unknown creation time (older rows): the 24 h floor.
        #expect(policy.lead(id: "old", createdAt: nil, expiresAt: week) >= 86_400)
        // Different ids spread out.
        let leads = Set((0..<50).map { policy.lead(id: "ch-\($0)", createdAt: created, expiresAt: week) })
        #expect(leads.count > 40)
        // Already expired is always due.
        #expect(policy.isDue(id: "x", createdAt: created, expiresAt: created, now: created.addingTimeInterval(1)))
    }

    @Test func maintenanceReportsKeepTheWorstOutcomePerConnection() {
        var report = MaintenanceReport()
        report.succeeded("c1")
        report.failed("c1", .failed(reason: "a", nextRetryAt: clock.now(), at: clock.now()))
        report.succeeded("c1")
        report.failed("c2", .credentialsRefused(reason: "revoked"))
        report.failed("c2", .failed(reason: "b", nextRetryAt: clock.now(), at: clock.now()))
        if case .failed? = report.outcomes["c1"] {} else { Issue.record("a success after a failure hid it") }
        #expect(report.outcomes["c2"] == .credentialsRefused(reason: "revoked"))
        #expect(report.failures == 3)
    }
}
