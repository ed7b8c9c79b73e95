// swift-tools-version: 6.2
import CompilerPluginSupport
import PackageDescription

// Our own targets build with every warning as an error (CI relies on this; dependencies are not affected).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "calgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "calgate", targets: ["calgate"]),
        .executable(name: "calgate-bench", targets: ["CalgateBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", exact: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
        .package(url: "https://github.com/swiftlang/swift-syntax.git", exact: "603.0.1"),
    ],
    targets: [
        // System libraries: pkg-config plus a shim.h of static inline wrappers (see DESIGN.md).
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),

        // `@MemberwiseInit`: the public memberwise initializers of the value types, generated at compile time.
        .macro(
            name: "CalgateMacroPlugin",
            dependencies: [
                .product(name: "SwiftSyntaxMacros", package: "swift-syntax"),
                .product(name: "SwiftCompilerPlugin", package: "swift-syntax"),
            ],
            swiftSettings: strict
        ),
        .target(name: "CalgateMacros", dependencies: ["CalgateMacroPlugin"], swiftSettings: strict),

        .target(name: "GatewayCore", dependencies: ["CalgateMacros"], swiftSettings: strict),
        .target(
            name: "OpenSSLTLS",
            dependencies: [
                "COpenSSL", "CalgateMacros",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // AES-256-GCM sealing of stored secrets: GatewayCore's `SecretSealer` port on OpenSSL's libcrypto, kept out of
        // the TLS module so OpenSSLTLS does not see the domain.
        .target(name: "SecretSealing", dependencies: ["COpenSSL", "GatewayCore"], swiftSettings: strict),
        .target(name: "CurlHTTP", dependencies: ["CCurl", "CalgateMacros"], swiftSettings: strict),
        .target(name: "MicrosoftGraph", dependencies: ["GatewayCore", "CurlHTTP", "CalgateMacros"], swiftSettings: strict),
        .target(name: "GoogleCalendar", dependencies: ["GatewayCore", "CurlHTTP", "CalgateMacros"], swiftSettings: strict),
        .target(name: "Redtail", dependencies: ["GatewayCore", "CurlHTTP", "CalgateMacros"], swiftSettings: strict),
        .target(
            name: "ProviderSimulators",
            dependencies: [
                "GatewayCore", "CurlHTTP", "CalgateMacros",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SyncEngine",
            dependencies: [
                "GatewayCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(name: "SQLiteStore", dependencies: ["CSQLite", "GatewayCore"], swiftSettings: strict),
        // The same store port on PostgreSQL, for several instances sharing one database (leases, LISTEN/NOTIFY).
        .target(
            name: "PostgresStore",
            dependencies: [
                "GatewayCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "GatewayHTTP",
            dependencies: [
                "GatewayCore", "OpenSSLTLS", "CalgateMacros",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "GatewayAssembly",
            dependencies: [
                "GatewayCore", "GatewayHTTP", "OpenSSLTLS", "CurlHTTP", "SyncEngine", "GoogleCalendar", "MicrosoftGraph", "Redtail",
                "CalgateMacros",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "MonthSimulation",
            dependencies: [
                "GatewayCore", "GatewayHTTP", "OpenSSLTLS", "SecretSealing", "SQLiteStore", "CurlHTTP", "GoogleCalendar", "MicrosoftGraph",
                "Redtail", "SyncEngine", "ProviderSimulators", "GatewayAssembly",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "calgate",
            dependencies: [
                "GatewayCore", "OpenSSLTLS", "SecretSealing", "SQLiteStore", "PostgresStore", "GatewayHTTP", "CurlHTTP", "GoogleCalendar", "MicrosoftGraph",
                "Redtail", "SyncEngine", "ProviderSimulators", "MonthSimulation", "GatewayAssembly",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // The sync-side benchmark figures (issue 7): coalescing, appointments applied per second, a 10,000-connection
        // store for the memory figure. Run by Benchmarks/syncfigures.py; loopback only.
        .executableTarget(
            name: "CalgateBench",
            dependencies: [
                "GatewayCore", "GatewayHTTP", "OpenSSLTLS", "SecretSealing", "SQLiteStore", "CurlHTTP", "GoogleCalendar", "MicrosoftGraph",
                "Redtail", "SyncEngine", "ProviderSimulators", "GatewayAssembly",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/CalgateBench",
            swiftSettings: strict
        ),

        // Test support: a blocking OpenSSL client that can offer any protocol version, suite or fragmenting.
        .target(name: "TLSTestClient", dependencies: ["COpenSSL"], path: "Tests/Support/TLSTestClient", swiftSettings: strict),
        // Test support: child processes without blocking the cooperative pool, an openssl s_client raw client, curl.
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            path: "Tests/Support/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore"], swiftSettings: strict),
        .testTarget(
            name: "CalgateMacroTests",
            dependencies: [
                "CalgateMacroPlugin",
                .product(name: "SwiftSyntaxMacroExpansion", package: "swift-syntax"),
                .product(name: "SwiftSyntaxMacrosGenericTestSupport", package: "swift-syntax"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OpenSSLTLSTests",
            dependencies: [
                "OpenSSLTLS", "SecretSealing", "TestSupport", "TLSTestClient", "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "GoogleCalendarTests",
            dependencies: [
                "GoogleCalendar", "GatewayCore", "ProviderSimulators", "SQLiteStore", "CurlHTTP", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MicrosoftGraphTests",
            dependencies: [
                "MicrosoftGraph", "GatewayCore", "ProviderSimulators", "SQLiteStore", "CurlHTTP", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CurlHTTPTests",
            dependencies: [
                "CurlHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SQLiteStoreTests", dependencies: ["SQLiteStore", "GatewayCore", "CSQLite"], swiftSettings: strict),
        .testTarget(
            name: "StoreContractTests",
            dependencies: ["SQLiteStore", "PostgresStore", "GatewayCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "GatewayHTTPTests",
            dependencies: [
                "GatewayHTTP", "GatewayAssembly", "GatewayCore", "OpenSSLTLS", "SecretSealing", "SQLiteStore", "CurlHTTP", "TestSupport", "TLSTestClient",
                "GoogleCalendar", "MicrosoftGraph", "Redtail", "SyncEngine", "ProviderSimulators",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MonthSimulationTests",
            dependencies: ["MonthSimulation", "GatewayCore", "ProviderSimulators", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ToyProviderTests",
            dependencies: [
                "GatewayAssembly", "GatewayCore", "GatewayHTTP", "OpenSSLTLS", "SecretSealing", "SQLiteStore", "CurlHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ProviderSimulatorsTests", dependencies: ["ProviderSimulators"], swiftSettings: strict),
        .testTarget(name: "CalgateCLITests", dependencies: ["OpenSSLTLS", "TestSupport", "CurlHTTP", "ProviderSimulators"], swiftSettings: strict),
    ]
)
