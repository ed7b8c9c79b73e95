import Foundation
import GatewayCore
import Logging
@testable import MonthSimulation
import Testing

/// Issue 20: the simulated month at fleet size. CI runs the fleet scenario with 100 calendars (30 Google, 20
/// Microsoft and 5 Redtail accounts); `scripts/simulated-month --fleet` runs the 1,000.
@Suite("Fleet month")
struct FleetMonthTests {
    @Test func aHundredCalendarFleetMonthEndsConvergedInsideTheQuotas() async throws {
        var options = MonthSimulation.Options.fleet(calendars: 100)
        options.routesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes").standardized.path
        var logger = Logger(label: "test.fleet")
        logger.logLevel = .critical
        let report = try await MonthSimulation.run(options, logger: logger)
        print(report.summary + " in \(report.seconds) s, peak memory \(Int(report.peakMemoryMiB)) MiB")
        #expect(report.total == 100)
        #expect(report.accounts == [.google: 30, .microsoft: 20, .redtail: 5])
        #expect(report.lapsed == 0, "\(report.summary): \(report.differences.prefix(10))")
        #expect(report.duplicateChannels == 0, "\(report.summary)")
        #expect(report.ghostEvents == 0, "\(report.summary): \(report.differences.prefix(10))")
        #expect(report.converged == report.total, "\(report.summary): \(report.differences.prefix(10))")
        #expect(report.recoveryMinutes != nil, "Graph must recover within the month after its week-long outage")
        #expect(report.expiredWhileUnreachable > 0, "a week-long outage outlives every Graph subscription")
        for provider in [Provider.google, .microsoft] {
            #expect((report.providers[provider]?.quotaThrottles ?? -1) == 0, "calgate exceeded \(provider.rawValue)'s published limits")
        }
        // Redtail publishes no limit; the simulator's assumed 2-at-once can be met by a request the gateway already
        // timed out on (the provider still holds it) overlapping the retry: a stray one, never a storm.
        #expect((report.providers[.redtail]?.quotaThrottles ?? -1) <= 5, "Redtail's assumed limit exceeded repeatedly")
        #expect(report.chaosFailures > 1_000, "the chaos must actually have struck (\(report.chaosFailures) failures)")
        #expect(report.summary.hasPrefix("fleet: 0 lapsed, 100 of 100 calendars converged, 0 duplicate channels, 0 ghost events, recovery after outage "))
        let markdown = report.markdown(options: options, command: "test")
        #expect(markdown.contains(report.summary))
        #expect(markdown.contains("| Microsoft Graph |"))
    }

    @Test func theFleetPlanSplitsAThousandCalendarsAsTheIssueSays() {
        let plan = FleetPlan(calendars: 1_000)
        #expect(plan.google.count == 300)
        #expect(plan.graph.count == 200)
        #expect(plan.redtail.count == 50)
        #expect(plan.calendarCount == 1_000)
        #expect(plan.google.map(\.calendars.count).reduce(0, +) == 570)
        #expect(plan.graph.map(\.calendars.count).reduce(0, +) == 380)
        #expect(plan.google.allSatisfy { !$0.calendars.isEmpty } && plan.graph.allSatisfy { !$0.calendars.isEmpty })
        #expect(Set(plan.google.flatMap(\.calendars)).count == 570, "calendar ids are unique")
        #expect(plan == FleetPlan(calendars: 1_000), "the same count builds the same fleet")
    }

    @Test(arguments: [3, 4, 7, 100, 999, 5_000]) func everyFleetSizeHasAnAccountPerProviderAndAllItsCalendars(calendars: Int) {
        let plan = FleetPlan(calendars: calendars)
        #expect(plan.calendarCount == calendars)
        #expect(!plan.google.isEmpty && !plan.graph.isEmpty && !plan.redtail.isEmpty)
    }

    @Test func theDefaultMonthStaysTheClassicSevenCalendars() {
        let options = MonthSimulation.Options()
        #expect(options.calendars == 7)
        #expect(!options.usesFleetLayout)
        #expect(options.problem == nil)
        var fleetAtSeven = options
        fleetAtSeven.fleet = true
        #expect(fleetAtSeven.usesFleetLayout)
        let fleet = MonthSimulation.Options.fleet()
        #expect(fleet.calendars == 1_000 && fleet.failureRate == 0.30 && fleet.outageDays == 7 && fleet.syncTokenInvalidations == 2)
        #expect(fleet.revokedAccounts == 20)
    }

    @Test(arguments: [0, -1, 2, 5_001]) func calendarCountsOutOfRangeAreRefused(calendars: Int) {
        var options = MonthSimulation.Options()
        options.calendars = calendars
        #expect(options.problem == "--calendars must be between 3 and 5000 (got \(calendars))")
    }

    @Test func otherBadOptionsAreRefused() {
        var options = MonthSimulation.Options()
        options.days = 0
        #expect(options.problem?.contains("--days") == true)
        options = MonthSimulation.Options()
        options.failureRate = 0.9
        #expect(options.problem?.contains("--failure-rate") == true)
        options = MonthSimulation.Options()
        options.outageDays = 40
        #expect(options.problem?.contains("outage") == true)
    }
}
