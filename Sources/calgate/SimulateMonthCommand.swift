import ArgumentParser
import Foundation
import GatewayCore
import Logging
import MonthSimulation

/// `calgate simulate-month`: the gateway and all three simulators through a month of provider trouble.
struct SimulateMonth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate-month",
        abstract: "Run the gateway against all three simulators for a month of provider time (loopback, bounded) and report lapses, convergence and duplicate channels."
    )

    @Option(name: .customLong("days"), help: "Days of provider time (1-90).")
    var days = 30

    @Option(name: .customLong("seed"), help: "Random seed for changes and faults.")
    var seed: UInt64 = 2026

    @Option(name: .customLong("failure-rate"), help: "Share of provider calls that fail (0-0.5).")
    var failureRate = 0.10

    @Option(name: .customLong("drop-rate"), help: "Share of notifications dropped (0-0.5).")
    var dropRate = 0.05

    @Option(name: .customLong("routes"), help: "Routes directory.")
    var routes = "routes"

    func validate() throws {
        guard (1...90).contains(days) else { throw ValidationError("--days must be between 1 and 90") }
        guard (0...0.5).contains(failureRate) else { throw ValidationError("--failure-rate must be between 0 and 0.5") }
        guard (0...0.5).contains(dropRate) else { throw ValidationError("--drop-rate must be between 0 and 0.5") }
        guard FileManager.default.fileExists(atPath: routes) else { throw ValidationError("--routes \(routes): no such directory (run from the repository root)") }
    }

    func run() async throws {
        var options = MonthSimulation.Options()
        options.days = days
        options.seed = seed
        options.failureRate = failureRate
        options.dropRate = dropRate
        options.routesDirectory = routes
        var logger = Logger(label: "calgate.month")
        logger.logLevel = .critical
        let report = try await MonthSimulation.run(options, logger: logger) { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        let details = """
            changes \(report.changes), renewals \(report.renewals), chaos: \(report.chaosFailures) failed calls, \(report.chaosDrops) dropped notifications
            missed by push (found by the sweep): \(report.missedByPush.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: ", "))
            Redtail steps behind after a poll: \(report.redtailLateSteps); wall clock \(report.seconds) s
            """
        FileHandle.standardOutput.write(Data((details + "\n").utf8))
        for difference in report.differences { FileHandle.standardOutput.write(Data(("differs: " + difference + "\n").utf8)) }
        FileHandle.standardOutput.write(Data((report.summary + "\n").utf8))
        if report.lapsed > 0 || report.converged != report.total || report.duplicateChannels > 0 { throw ExitCode(1) }
    }
}
