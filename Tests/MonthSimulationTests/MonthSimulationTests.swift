import Foundation
import GatewayCore
import Logging
import MonthSimulation
import Testing

/// The simulated month (issue 5's acceptance run): 30 days of provider time with 10 % failed calls, 5 % dropped
/// notifications, a day-long Graph outage, a removed subscription and invalidated Google sync tokens.
@Suite("Simulated month")
struct MonthSimulationTests {
    @Test func aMonthOfTroubleEndsConvergedWithNothingLapsed() async throws {
        var options = MonthSimulation.Options()
        options.routesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes").standardized.path
        var logger = Logger(label: "test.month")
        logger.logLevel = .critical
        let report = try await MonthSimulation.run(options, logger: logger)
        #expect(report.lapsed == 0, "\(report.summary)")
        #expect(report.duplicateChannels == 0, "\(report.summary)")
        #expect(report.converged == report.total, "\(report.summary): \(report.differences)")
        #expect(report.total == 7)
        #expect(report.redtailLateSteps == 0, "Redtail changes must appear within one poll interval")
        #expect(report.chaosFailures > 50, "the chaos must actually have struck (\(report.chaosFailures) failures)")
        #expect(report.chaosDrops > 0)
        #expect(report.renewals >= 10, "a month renews every channel and subscription several times (\(report.renewals))")
        #expect(report.changes > 400)
        print(report.summary + " in \(report.seconds) s; missed by push: \(report.missedByPush)")
    }
}
