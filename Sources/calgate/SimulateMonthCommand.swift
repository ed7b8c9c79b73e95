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

    @Option(name: .customLong("failure-rate"), help: "Share of provider calls that fail (0-0.5; the fleet scenario: 0.3).")
    var failureRate: Double?

    @Option(name: .customLong("drop-rate"), help: "Share of notifications dropped (0-0.5).")
    var dropRate: Double?

    @Option(
        name: .customLong("calendars"),
        help: "Calendars (7: the classic month's layout; 3-5000: a fleet generated from the seed, accounts 300 Google : 200 Microsoft : 50 Redtail per 1,000 calendars; the fleet scenario's default: 1000)."
    )
    var calendars: Int?

    @Flag(
        name: .customLong("fleet"),
        help: "Issue 20's fleet scenario: 1,000 calendars (unless --calendars), 30 % failed calls, Graph down 7 days, sync tokens invalidated twice, revoked refresh tokens reconnected, recurring series."
    )
    var fleet = false

    @Option(name: .customLong("report"), help: "Write a Markdown report of the run here (e.g. Benchmarks/results/fleet-month.md).")
    var report: String?

    @Option(name: .customLong("routes"), help: "Routes directory.")
    var routes = "routes"

    /// The options the flags describe.
    var options: MonthSimulation.Options {
        var options = fleet ? MonthSimulation.Options.fleet(calendars: calendars ?? 1_000) : MonthSimulation.Options()
        if let calendars { options.calendars = calendars }
        options.days = days
        options.seed = seed
        if let failureRate { options.failureRate = failureRate }
        if let dropRate { options.dropRate = dropRate }
        options.routesDirectory = routes
        options.reportPath = report
        return options
    }

    func validate() throws {
        if let problem = options.problem { throw ValidationError(problem) }
        guard FileManager.default.fileExists(atPath: routes) else { throw ValidationError("--routes \(routes): no such directory (run from the repository root)") }
        if let report {
            let directory = URL(fileURLWithPath: report).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--report \(report): the directory \(directory) does not exist")
            }
        }
    }

    func run() async throws {
        let options = self.options
        var logger = Logger(label: "calgate.month")
        logger.logLevel = .critical
        let report = try await MonthSimulation.run(options, logger: logger) { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        var details = """
            changes \(report.changes), renewals \(report.renewals), chaos: \(report.chaosFailures) failed calls, \(report.chaosDrops) dropped notifications
            missed by push (found by the sweep): \(report.missedByPush.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: ", "))
            Redtail steps behind after a poll: \(report.redtailLateSteps); wall clock \(report.seconds) s
            """
        if report.fleet {
            let throttles = [(Provider.google, "google"), (.microsoft, "microsoft"), (.redtail, "redtail")].map { provider, name in
                let figures = report.providers[provider] ?? MonthSimulation.ProviderFigures()
                return "\(name) \(figures.quotaThrottles) quota/\(figures.chaosThrottles) chaos, peak \(figures.peakThrottlesPerMinute)/min"
            }
            details += """

                429/403: \(throttles.joined(separator: "; "))
                expired while unreachable (outage, revoked): \(report.expiredWhileUnreachable); gateway-counted lapses: \(report.gatewayLapses); peak backlog \(report.peakBacklog); peak memory \(Int(report.peakMemoryMiB)) MiB
                """
        }
        FileHandle.standardOutput.write(Data((details + "\n").utf8))
        for difference in report.differences.prefix(40) { FileHandle.standardOutput.write(Data(("differs: " + difference + "\n").utf8)) }
        if let path = options.reportPath {
            let command = (["calgate simulate-month"] + CommandLine.arguments.dropFirst(2)).joined(separator: " ")
            try report.markdown(options: options, command: command).write(toFile: path, atomically: true, encoding: .utf8)
        }
        FileHandle.standardOutput.write(Data((report.summary + "\n").utf8))
        if !report.passed { throw ExitCode(1) }
    }
}
