import Foundation
import GatewayCore
import Logging
@testable import PostgresStore
import SQLiteStore
import Testing

/// The two store backends every contract test runs against.
enum Backend: String, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// SQLite always; PostgreSQL when `CALGATE_TEST_POSTGRES_URL` is set, or when `CALGATE_REQUIRE_POSTGRES=1` (then
    /// the PostgreSQL cases fail with a message saying the URL is missing, instead of silently not running).
    static var available: [Backend] {
        PostgresTestServer.url != nil || PostgresTestServer.required ? [.sqlite, .postgres] : [.sqlite]
    }
}

/// Where the PostgreSQL cases connect.
enum PostgresTestServer {
    /// An admin URL on a server the tests may create databases on, e.g. `postgres://calgate@127.0.0.1:54331/calgate`.
    static var url: String? {
        guard let url = ProcessInfo.processInfo.environment["CALGATE_TEST_POSTGRES_URL"], !url.isEmpty else { return nil }
        return url
    }

    /// Whether a missing server is a failure (scripts/test sets it) rather than a reason to skip.
    static var required: Bool { ProcessInfo.processInfo.environment["CALGATE_REQUIRE_POSTGRES"] == "1" }

    /// Whether PostgreSQL-only tests run: with a server, or when one is required (and they then fail).
    static var enabled: Bool { url != nil || required }

    static func requireURL() throws -> String {
        guard let url else {
            Issue.record("CALGATE_REQUIRE_POSTGRES=1 but CALGATE_TEST_POSTGRES_URL is not set: start a cluster with scripts/pg-cluster")
            throw PostgresTestError.noServer
        }
        return url
    }

    /// `url` with its database replaced.
    static func url(_ admin: String, database: String) -> String {
        var base = admin
        var query = ""
        if let mark = base.firstIndex(of: "?") {
            query = String(base[mark...])
            base = String(base[..<mark])
        }
        guard let slash = base.lastIndex(of: "/") else { return admin }
        return base[...slash] + database + query
    }

    /// A fresh database for one test (tests run in parallel, so each gets its own); dropped by `drop`.
    static func createDatabase() async throws -> (name: String, url: String) {
        let admin = try requireURL()
        let name = "calgate_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await PostgresAdmin.execute(url: admin, ["CREATE DATABASE \(name)"])
        return (name, url(admin, database: name))
    }

    static func drop(_ name: String) async {
        guard let admin = url else { return }
        _ = try? await PostgresAdmin.execute(url: admin, ["DROP DATABASE IF EXISTS \(name) WITH (FORCE)"])
    }
}

enum PostgresTestError: Error {
    case noServer
}

let testLogger: Logger = {
    var logger = Logger(label: "calgate.store-contract-tests")
    logger.logLevel = .warning
    return logger
}()

/// Opens a fresh store of `backend`, runs `body`, closes it and removes its database.
func withStore(_ backend: Backend, _ body: (any GatewayStore) async throws -> Void) async throws {
    /// Runs `body` on `store`, closing it however `body` ends.
    func run(_ store: any GatewayStore) async throws {
        do {
            try await body(store)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }
    switch backend {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-contract-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await run(try SQLiteStore(path: directory.appendingPathComponent("gateway.sqlite").path))
    case .postgres:
        try await withPostgresDatabase { url in
            try await run(try await PostgresStore.open(url: url, logger: testLogger))
        }
    }
}

/// A fresh database for `body`, dropped afterwards.
func withPostgresDatabase(_ body: (String) async throws -> Void) async throws {
    let (name, url) = try await PostgresTestServer.createDatabase()
    do {
        try await body(url)
    } catch {
        await PostgresTestServer.drop(name)
        throw error
    }
    await PostgresTestServer.drop(name)
}

/// Polls `condition` until it holds or `seconds` pass.
func eventually(within seconds: Double = 5, _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// A date at whole milliseconds (both stores keep milliseconds).
func date(_ seconds: Double) -> Date { Date(timeIntervalSince1970: (seconds * 1000).rounded() / 1000) }
