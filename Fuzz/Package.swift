// swift-tools-version: 6.2
import PackageDescription

// libFuzzer targets for calgate's parsers and decoders, kept out of the main package so CI's
// `swift build --build-tests` never sees them. The modules under test are the main package's own sources, linked
// in through the symlinks in Linked/ (no registry dependencies, so nothing extra to resolve). Build and run with
// ../scripts/fuzz; by hand:
//   swift build -c release -Xswiftc -sanitize=fuzzer,address --product fuzz-route-table
//   .build/release/fuzz-route-table Corpus/route-table -max_total_time=600

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny"), .treatAllWarnings(as: .error)]
// Each target exports LLVMFuzzerTestOneInput and a `<module>_main` (SwiftPM's name for an executable's entry point)
// that runs libFuzzer's driver; -parse-as-library because there is no top-level code.
let fuzzer: [SwiftSetting] = strict + [.unsafeFlags(["-parse-as-library"])]

let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
    ("fuzz-route-table", ["GatewayCore"]),
    ("fuzz-config", ["GatewayCore"]),
    ("fuzz-google-headers", ["GatewayCore", "GoogleCalendar"]),
    ("fuzz-graph-notifications", ["GatewayCore", "MicrosoftGraph"]),
    ("fuzz-google-responses", ["GatewayCore", "GoogleCalendar", "CurlHTTP"]),
    ("fuzz-graph-responses", ["GatewayCore", "MicrosoftGraph", "CurlHTTP"]),
    ("fuzz-redtail-responses", ["GatewayCore", "Redtail", "CurlHTTP"]),
    ("fuzz-inbox-headers", ["SQLiteStore"]),
]

let package = Package(
    name: "calgate-fuzz",
    platforms: [.macOS(.v15)],
    products: fuzzTargets.map { .executable(name: $0.name, targets: [$0.name]) },
    targets: [
        .systemLibrary(name: "CLibFuzzer", path: "CLibFuzzer"),
        .systemLibrary(name: "CCurl", path: "Linked/CCurl", pkgConfig: "libcurl"),
        .systemLibrary(name: "CSQLite", path: "Linked/CSQLite", pkgConfig: "sqlite3"),
        .target(name: "GatewayCore", path: "Linked/GatewayCore", swiftSettings: strict),
        .target(name: "CurlHTTP", dependencies: ["CCurl"], path: "Linked/CurlHTTP", swiftSettings: strict),
        .target(name: "GoogleCalendar", dependencies: ["GatewayCore", "CurlHTTP"], path: "Linked/GoogleCalendar", swiftSettings: strict),
        .target(name: "MicrosoftGraph", dependencies: ["GatewayCore", "CurlHTTP"], path: "Linked/MicrosoftGraph", swiftSettings: strict),
        .target(name: "Redtail", dependencies: ["GatewayCore", "CurlHTTP"], path: "Linked/Redtail", swiftSettings: strict),
        .target(name: "SQLiteStore", dependencies: ["CSQLite", "GatewayCore"], path: "Linked/SQLiteStore", swiftSettings: strict),
    ] + fuzzTargets.map { .executableTarget(name: $0.name, dependencies: $0.dependencies + ["CLibFuzzer"], path: "Targets/\($0.name)", swiftSettings: fuzzer) }
)
