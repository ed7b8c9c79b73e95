import ArgumentParser

/// The calgate command line: `serve`, `demo`, `status`, `routes check`, `certs dev`, ….
@main
struct Calgate: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "calgate",
        abstract: "Webhook-driven calendar-sync gateway for LeadCenter.",
        version: version,
        subcommands: [Serve.self, Demo.self, Status.self, Simulate.self, SimulateMonth.self, OpenAPI.self, Routes.self, Certs.self, Secrets.self],
        defaultSubcommand: nil
    )
}

/// A command-line failure with a message that says what was wrong and what to do.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
