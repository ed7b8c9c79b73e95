import CurlHTTP
import Foundation
import GatewayAssembly
import GatewayCore
import GatewayHTTP
import Logging
import OpenSSLTLS
import SQLiteStore
import SecretSealing
import ServiceLifecycle
import Testing

/// A provider added from outside the gateway: its own files (`ToyProvider.swift`), its own route file, and one line
/// in the assembly. Driven end to end over real TLS: connect through the API, a verified push syncs the calendar,
/// forged and unknown pushes are refused, and a change nobody pushed arrives through the poll.
@Suite("Toy provider through the plugin boundary", .serialized)
struct ToyProviderTests {
    @Test func aFourthProviderConnectsPushesAndPollsThroughTheBoundary() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-toy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The toy's route file beside the repository's.
        let routes = directory + "/routes"
        try FileManager.default.createDirectory(atPath: routes, withIntermediateDirectories: true)
        let repositoryRoutes = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes").standardized.path
        for file in try FileManager.default.contentsOfDirectory(atPath: repositoryRoutes) where file.hasSuffix(".json") {
            try FileManager.default.copyItem(atPath: repositoryRoutes + "/" + file, toPath: routes + "/" + file)
        }
        try Data(#"{ "routes": [ { "method": "POST", "path": "/webhooks/toy", "handler": "webhook.toy", "verifier": "toy_signature" } ] }"#.utf8)
            .write(to: URL(fileURLWithPath: routes + "/toy.json"))

        let certificates = try DevCertificateAuthority.generate(directory: directory + "/certs")
        let tls = try TLSServerContext(
            configuration: TLSServerConfiguration(
                certificateChainPath: certificates.serverCertificate, privateKeyPath: certificates.serverKey
            ))
        var config = GatewayConfiguration()
        config.listen = ListenAddress(host: "127.0.0.1", port: 0)
        config.dataDirectory = directory
        config.routesDirectory = routes
        let store = try SQLiteStore(path: config.effectiveDatabasePath)
        let sealer = try AESGCMSecretSealer(key: Array(repeating: 9, count: 32))
        var logger = Logger(label: "toy-test")
        logger.logLevel = .warning
        let http = try CurlHTTPClient(
            configuration: {
                var c = CurlHTTPClient.Configuration(); c.caBundlePath = certificates.caCertificate; return c
            }())
        let service = ToyService()
        let progress = SyncProgressBoard()
        let parts = GatewayAssembly.Parts(
            configuration: config, store: store, sealer: sealer, tlsContext: tls, adminToken: "toy-admin-token-0123456789abcdef",
            apiToken: "toy-api-token-0123456789abcdef01234", metrics: GatewayMetrics(), version: "test", logger: logger
        )
        let builtIn = BuiltInProviders(configuration: config, http: http, store: store, sealer: sealer, progress: progress)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let gateway = try GatewayAssembly(
            parts,
            plugins: builtIn.plugins + [Toy.plugin(service: service, store: store, sealer: sealer, pollInterval: 1)],  // the one assembly line
            progress: progress
        ) { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: gateway.services, logger: logger))
        let running = Task { try await group.run() }
        var port = 0
        for await bound in ports { port = bound }
        let base = "https://127.0.0.1:\(port)"
        func call(_ method: String, _ path: String, headers: [CurlHTTPHeader] = [], json: String? = nil) async throws -> (Int, String) {
            var all = headers
            if json != nil { all.append(CurlHTTPHeader("Content-Type", "application/json")) }
            let response = try await http.execute(CurlHTTPRequest(method: method, url: base + path, headers: all, body: json.map { Array($0.utf8) } ?? []))
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
        let api = [CurlHTTPHeader("Authorization", "Bearer \(parts.apiToken)")]

        // The API's OpenAPI document names the toy and its connect field.
        let (documented, document) = try await call("GET", "/api/v1/openapi.json")
        #expect(documented == 200)
        #expect(document.contains(#""toy_token""#) && document.contains(#""toy""#))
        // Bad connect requests are refused by the API from the toy's shape, before the toy sees them.
        #expect(try await call("POST", "/api/v1/connections", headers: api, json: #"{"user_id":"u1","provider":"toy"}"#).0 == 400)
        #expect(try await call("POST", "/api/v1/connections", headers: api, json: #"{"user_id":"u1","provider":"toy","toy_token":"x","refresh_token":"y"}"#).0 == 400)
        #expect(try await call("POST", "/api/v1/connections", headers: api, json: #"{"user_id":"u1","provider":"toy","toy_token":"wrong"}"#).0 == 422)
        // A good one.
        let (created, body) = try await call("POST", "/api/v1/connections", headers: api, json: #"{"user_id":"u1","provider":"toy","toy_token":"let-me-in"}"#)
        #expect(created == 201, "\(body)")
        #expect(body.contains(#""provider":"toy""#))
        let connection = try #require(try await store.connections(userID: "u1").first)
        let calendarKey = ConnectionCalendar(connectionID: connection.id, calendarID: "main", name: "", selected: true).calendarKey
        let channel = try #require(service.channels(calendarKey: calendarKey).first)

        // A verified push syncs the change.
        service.put(calendarKey: calendarKey, eventID: "e1", title: "Pushed")
        let push = [CurlHTTPHeader("X-Toy-Channel", channel.id), CurlHTTPHeader("X-Toy-Token", channel.token)]
        #expect(try await call("POST", "/webhooks/toy", headers: push).0 == 204)
        #expect(await eventually { try await store.appointments(calendarKey: calendarKey).map(\.title) == ["Pushed"] })
        // Forged, unknown and malformed pushes are refused, counted under the toy's verifier, and store nothing.
        #expect(try await call("POST", "/webhooks/toy", headers: [CurlHTTPHeader("X-Toy-Channel", channel.id), CurlHTTPHeader("X-Toy-Token", "forged")]).0 == 403)
        #expect(try await call("POST", "/webhooks/toy", headers: [CurlHTTPHeader("X-Toy-Channel", "nope"), CurlHTTPHeader("X-Toy-Token", "x")]).0 == 404)
        #expect(try await call("POST", "/webhooks/toy").0 == 400)
        let (_, metrics) = try await call("GET", "/admin/metrics", headers: [CurlHTTPHeader("Authorization", "Bearer \(parts.adminToken)")])
        #expect(metrics.contains(#"calgate_notifications_accepted_total{provider="toy",kind="changed"} 1"#), "\(metrics)")
        for reason in ["token_mismatch", "unknown_channel", "missing_header"] {
            #expect(metrics.contains(#"calgate_verification_rejected_total{verifier="toy_signature",reason="\#(reason)"} 1"#))
        }

        // A change nobody pushed arrives through the poll.
        service.put(calendarKey: calendarKey, eventID: "e2", title: "Polled")
        #expect(await eventually(timeout: .seconds(15)) { try await store.appointments(calendarKey: calendarKey).map(\.title) == ["Pushed", "Polled"] })

        await group.triggerGracefulShutdown()
        try await running.value
        await http.shutdown()
    }

    /// Polls `condition` until it holds or the timeout passes.
    func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return (try? await condition()) == true
    }
}
