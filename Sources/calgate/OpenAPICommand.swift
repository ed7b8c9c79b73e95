import ArgumentParser
import Foundation
import GatewayAssembly
import GatewayHTTP

/// `calgate openapi`: prints the OpenAPI 3.1 document of `/api/v1` (the one committed as `docs/openapi.json`).
struct OpenAPI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Print the OpenAPI 3.1 document of the /api/v1 surface (as served at /api/v1/openapi.json)."
    )

    func run() throws {
        FileHandle.standardOutput.write(Data(OpenAPIDocument.document(plugins: BuiltInProviders.definitions).serialized()))
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}
