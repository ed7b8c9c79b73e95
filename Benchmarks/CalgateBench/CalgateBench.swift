import ArgumentParser
import Foundation
import Logging

/// `calgate-bench`: the sync-side figures of the benchmark suite (issue 7). Each subcommand prints one JSON object on
/// stdout; `Benchmarks/syncfigures.py` runs them. Loopback only.
@main
struct CalgateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calgate-bench",
        abstract: "Sync-side benchmark figures: coalescing, appointments applied per second, a 10,000-connection store.",
        subcommands: [CoalesceOne.self, CoalesceMany.self, Apply.self, Seed.self]
    )
}

/// Flags every in-process benchmark shares.
struct BenchOptions: ParsableArguments {
    @Option(name: .customLong("routes"), help: "The route table directory (the repository's routes/).")
    var routesDirectory = "routes"

    @Option(name: .customLong("log-level"), help: "Gateway log level (stderr).")
    var logLevel = "error"

    @Option(name: .customLong("concurrency"), help: "Webhook requests in flight at once.")
    var concurrency = 32

    var logger: Logger {
        var logger = Logger(label: "calgate.bench")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .error
        return logger
    }
}
