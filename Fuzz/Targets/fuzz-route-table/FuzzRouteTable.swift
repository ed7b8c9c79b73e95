import CLibFuzzer
import Foundation
import GatewayCore

/// The route-table parser and validator on arbitrary bytes: any input must give entries or a `RouteTableError`.
let catalog = RouteCatalog(
    handlers: [
        "admin.health": RouteHandlerSpec(kind: .admin, defaultBodyLimit: 0, methods: ["GET", "HEAD"]),
        "webhook.google": RouteHandlerSpec(kind: .webhook, defaultBodyLimit: 1024, methods: ["POST"]),
        "webhook.microsoft": RouteHandlerSpec(kind: .webhook, defaultBodyLimit: 1 << 20, methods: ["POST"]),
        "api.connections.get": RouteHandlerSpec(kind: .api, defaultBodyLimit: 65_536, methods: ["GET", "PATCH"]),
    ],
    verifiers: ["none", "admin_token", "api_token", "google_channel", "graph_client_state"]
)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRouteTable(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    guard let entries = try? RouteTableParser.parse(bytes, file: "routes/fuzz.json") else { return 0 }
    let table = RouteTable(entries: entries)
    for problem in RouteTableValidator(catalog: catalog).problems(in: table) { _ = problem.description }
    for entry in entries {
        _ = entry.locator
        _ = entry.pathShape
        _ = table.bodyLimit(for: entry, catalog: catalog)
    }
    return 0
}

/// The executable's entry point: libFuzzer's driver with this target's callback.
@_cdecl("fuzz_route_table_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzRouteTable(data, size) }
}
