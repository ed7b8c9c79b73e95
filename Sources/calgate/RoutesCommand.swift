import ArgumentParser
import GatewayAssembly
import GatewayHTTP

/// `calgate routes check [DIR]`: the start-up validation of the route table, on its own.
struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the route table.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a routes directory exactly as `serve` does at start.")

        @Argument(help: "Directory of *.json route files.")
        var directory: String = "routes"

        func run() throws {
            do {
                let table = try RouteTableLoader.load(directory: directory, catalog: GatewayServer.catalog(plugins: BuiltInProviders.definitions))
                print("\(directory): \(table.entries.count) routes OK")
                for entry in table.entries {
                    print("  \(entry.method.padding(toLength: 7, withPad: " ", startingAt: 0)) \(entry.path) -> \(entry.handler) [verifier: \(entry.verifier)]")
                }
            } catch {
                throw CLIError(error.description)
            }
        }
    }
}
