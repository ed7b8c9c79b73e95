import Foundation
import GatewayCore
import Testing

@Suite("Console activity and sync progress")
struct ConsoleActivityTests {
    @Test func lastMinuteCountsExpireAndRecentNotificationsAreBounded() {
        let clock = ManualGatewayClock(start: Date(timeIntervalSince1970: 1_800_000_000))
        let activity = GatewayActivity(clock: clock, recentLimit: 3)
        activity.notificationAccepted(provider: .google)
        activity.notificationAccepted(provider: .google)
        activity.notificationRejected(provider: .microsoft, reason: "client_state_mismatch")
        activity.syncFinished(
            calendarKey: "gc_1/primary", provider: .google,
            .init(
                finishedAt: clock.now(), succeeded: false, changes: 0, fullSync: false, message: "429"
            ))
        var rates = activity.lastMinute()
        #expect(rates.accepted == [.google: 2])
        #expect(rates.rejected == ["microsoft/client_state_mismatch": 1])
        #expect(rates.syncsFailed == [.google: 1] && rates.syncsSucceeded.isEmpty)
        clock.advance(by: 30)
        activity.notificationAccepted(provider: .microsoft)
        #expect(activity.lastMinute().accepted == [.google: 2, .microsoft: 1])
        clock.advance(by: 45)
        rates = activity.lastMinute()
        #expect(rates.accepted == [.microsoft: 1], "counts older than a minute drop out")
        clock.advance(by: 3600)
        #expect(activity.lastMinute() == GatewayActivity.Rates())
        #expect(activity.lastSync(calendarKey: "gc_1/primary")?.message == "429")

        for index in 0..<5 {
            activity.notificationRouted(calendarKey: "gc_1/primary", kind: "exists-\(index)", receivedAt: clock.now())
        }
        activity.notificationRouted(calendarKey: "not-a-key", kind: "exists", receivedAt: clock.now())
        #expect(activity.recentNotifications(connectionID: "gc_1").map(\.kind) == ["exists-4", "exists-3", "exists-2"])
    }

    @Test func progressMovesPageByPageAndStopsWhenFinished() {
        let clock = ManualGatewayClock(start: Date(timeIntervalSince1970: 1_800_000_000))
        let board = SyncProgressBoard(clock: clock)
        board.started(calendarKey: "gc_1/primary")
        board.pageFetched(calendarKey: "gc_1/primary", changes: 2)
        clock.advance(by: 1)
        board.pageFetched(calendarKey: "gc_1/primary", changes: 3)
        var record = try! #require(board.progress(connectionID: "gc_1").first)
        #expect(record.phase == .fetching && record.pagesFetched == 2 && record.appointmentsFetched == 5 && record.appointmentsApplied == 0)
        #expect(board.runningCount == 1)
        board.applying(calendarKey: "gc_1/primary", changes: 5)
        board.finished(calendarKey: "gc_1/primary", applied: 5)
        board.pageFetched(calendarKey: "gc_1/primary", changes: 9)
        record = try! #require(board.progress(connectionID: "gc_1").first)
        #expect(record.phase == .done && record.appointmentsApplied == 5 && record.pagesFetched == 2, "a finished record no longer moves")
        #expect(record.updatedAt == clock.now())
        #expect(board.progress(connectionID: "gc_").isEmpty, "connection ids match whole")
        board.started(calendarKey: "gc_1/other")
        board.failed(calendarKey: "gc_1/other")
        #expect(board.progress(connectionID: "gc_1").map(\.phase) == [.failed, .done])
        #expect(board.runningCount == 0)
    }
}
