import CurlHTTP
import Foundation
import GatewayAssembly
import GatewayCore
import GatewayHTTP
import GoogleCalendar
import MicrosoftGraph
import Hummingbird
import Logging
import OpenSSLTLS
import SecretSealing
import ProviderSimulators
import Redtail
import SQLiteStore
import ServiceLifecycle
import SyncEngine

/// The gateway in-process, composed as `calgate serve` composes it: real TLS on 127.0.0.1 (a dev CA), the
/// repository's route table, a real SQLite file, libcurl to the Google simulator served over loopback HTTP, and the
/// sync scheduler at its production settings (one-second window). Renewal and the reconciliation sweep are left out
/// so that every delta fetch counted was caused by a notification.
final class BenchGateway: Sendable {
    let directory: String
    let simulator: GoogleSimulator
    let simulatorServer: SimulatorServer
    let store: SQLiteStore
    let google: GoogleConnectionSyncer
    let scheduler: SyncScheduler
    let port: Int
    let certificates: DevCertificatePaths
    /// Trusts the dev CA; used for the API and for webhook pushes (as Google's sender would).
    let client: CurlHTTPClient
    let apiToken = "bench-api-token-0123456789abcdef0123"
    private let outbound: CurlHTTPClient
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    init(simulator: GoogleSimulator, routesDirectory: String, schedule: SyncScheduler.Configuration = .init(), logger: Logger) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.simulator = simulator
        simulatorServer = try await SimulatorServer(router: simulator.makeRouter())
        certificates = try DevCertificateAuthority.generate(directory: directory + "/certs")
        let tlsContext = try TLSServerContext(
            configuration: TLSServerConfiguration(
                certificateChainPath: certificates.serverCertificate, privateKeyPath: certificates.serverKey, handshakeTimeout: .seconds(10)
            ))
        var config = GatewayConfiguration()
        config.listen = ListenAddress(host: "127.0.0.1", port: try Self.freeLoopbackPort())
        config.dataDirectory = directory
        config.routesDirectory = routesDirectory
        // Bench accounts are many per user in `coalesce-many`; the per-user cap is not what is measured.
        config.maxConnectionsPerUser = 1_000_000
        store = try SQLiteStore(path: config.effectiveDatabasePath)
        let sealer = try AESGCMSecretSealer(key: (0..<32).map { _ in UInt8.random(in: 0...255) })
        outbound = try CurlHTTPClient()
        google = GoogleConnectionSyncer(
            client: GoogleCalendarClient(
                http: outbound,
                endpoints: GoogleEndpoints(
                    tokenURL: simulatorServer.baseURL + "/token", apiBaseURL: simulatorServer.baseURL + "/calendar/v3"
                )),
            store: store, sealer: sealer, clock: SystemGatewayClock(), webhookAddress: "https://localhost:\(config.listen.port)/webhooks/google"
        )
        // Built like `serve`, with Google only configured; the benchmark measures the webhook path and Google syncs,
        // so only the store, the scheduler and the listener run.
        let gateway = try GatewayAssembly(
            GatewayAssembly.Parts(
                configuration: config, store: store, sealer: sealer, tlsContext: tlsContext, adminToken: "bench-admin-token-0123456789abcdef",
                apiToken: apiToken, metrics: GatewayMetrics(), version: "bench", logger: logger
            ),
            plugins: [.google(google), .microsoft(nil), .redtail(nil)], progress: nil, schedulerConfiguration: schedule
        )
        scheduler = gateway.scheduler
        group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: StoreLifecycleService(store: store, logger: logger)), .init(service: scheduler), .init(service: gateway.application)],
                logger: logger
            ))
        let group = self.group
        running = Task { try await group.run() }
        port = config.listen.port
        var configuration = CurlHTTPClient.Configuration()
        configuration.caBundlePath = certificates.caCertificate
        configuration.requestTimeout = .seconds(60)
        client = try CurlHTTPClient(configuration: configuration)
        var ready = false
        for _ in 0..<500 where !ready {
            ready = (try? await client.execute(CurlHTTPRequest(url: "https://localhost:\(port)/admin/health")))?.status == 200
            if !ready { try await Task.sleep(for: .milliseconds(20)) }
        }
        guard ready else { throw BenchError("the gateway did not come up on port \(port)") }
    }

    /// Graceful shutdown and removal of the temporary directory.
    func shutdown() async {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        await simulatorServer.stop()
        await client.shutdown()
        await outbound.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: The LeadCenter API

    /// One API call; the answer's status and JSON.
    func api(_ method: String, _ path: String, body: String? = nil, timeout: Duration = .seconds(60)) async throws -> (status: Int, json: JSONValue?) {
        var headers = [CurlHTTPHeader("Authorization", "Bearer \(apiToken)")]
        if body != nil { headers.append(CurlHTTPHeader("Content-Type", "application/json")) }
        let response = try await client.execute(
            CurlHTTPRequest(
                method: method, url: "https://localhost:\(port)\(path)", headers: headers, body: body.map { Array($0.utf8) }, timeout: timeout
            ))
        return (response.status, try? JSONValue.parse(Data(response.body)))
    }

    /// Connects a Google account through `POST /api/v1/connections` (the simulator accepts `refreshToken`); its id.
    func connectGoogle(user: String, refreshToken: String) async throws -> String {
        let body = #"{"user_id":"\#(user)","provider":"google","client_id":"bench","client_secret":"bench","refresh_token":"\#(refreshToken)"}"#
        let (status, json) = try await api("POST", "/api/v1/connections", body: body)
        guard status == 201, case .object(let object)? = json, case .string(let id)? = object["id"] else {
            throw BenchError("connecting a Google account answered \(status)")
        }
        return id
    }

    /// Makes exactly `calendars` the connection's synced calendars through `PUT …/calendars`.
    func select(connection: String, calendars: [String]) async throws {
        let list = calendars.map { "\"\($0)\"" }.joined(separator: ",")
        let (status, _) = try await api("PUT", "/api/v1/connections/\(connection)/calendars", body: #"{"selected":[\#(list)]}"#)
        guard status == 200 else { throw BenchError("selecting calendars of \(connection) answered \(status)") }
    }

    // MARK: Webhooks

    /// One Google push as Google sends it (empty POST, `X-Goog-*` headers) over HTTPS to `/webhooks/google`.
    func push(_ channel: GoogleSimulator.WatchedChannel, messageNumber: UInt64) async -> Int {
        let request = CurlHTTPRequest(
            method: "POST", url: "https://localhost:\(port)/webhooks/google",
            headers: [
                CurlHTTPHeader("X-Goog-Channel-ID", channel.id), CurlHTTPHeader("X-Goog-Channel-Token", channel.token),
                CurlHTTPHeader("X-Goog-Resource-ID", channel.resourceID), CurlHTTPHeader("X-Goog-Resource-State", "exists"),
                CurlHTTPHeader("X-Goog-Resource-URI", "https://www.googleapis.com/calendar/v3/calendars/\(channel.calendar)/events?alt=json"),
                CurlHTTPHeader("X-Goog-Message-Number", String(messageNumber)),
            ], body: [])
        return (try? await client.execute(request))?.status ?? 0
    }

    /// Runs `count` jobs with at most `width` at once; each returns an HTTP status. Returns how many answered 200.
    static func run(count: Int, width: Int, _ job: @escaping @Sendable (Int) async -> Int) async -> Int {
        await withTaskGroup(of: Int.self) { group in
            var next = 0
            var ok = 0
            while next < min(width, count) {
                let index = next
                group.addTask { await job(index) }
                next += 1
            }
            for await status in group {
                if status == 200 { ok += 1 }
                if next < count {
                    let index = next
                    group.addTask { await job(index) }
                    next += 1
                }
            }
            return ok
        }
    }

    /// Waits until every inbox row is processed and the scheduler has nothing pending or running (checked twice,
    /// a tick apart); false when `seconds` pass first.
    func settle(within seconds: Double) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var calm = 0
        while ContinuousClock.now < deadline {
            let backlog = (try? await store.backlog().count) ?? -1
            calm = backlog == 0 && scheduler.isIdle && scheduler.runningCount == 0 ? calm + 1 : 0
            if calm >= 2 { return true }
            try? await Task.sleep(for: .milliseconds(30))
        }
        return false
    }

    /// Whether the store holds exactly the simulator's live events (id → title) for each calendar key.
    func converged(_ calendars: [(key: String, simulatorCalendar: String)]) async throws -> Int {
        var equal = 0
        for (key, calendar) in calendars {
            var stored: [String: String] = [:]
            for appointment in try await store.appointments(calendarKey: key) where appointment.status != "cancelled" {
                stored[appointment.externalID] = appointment.title
            }
            if stored == simulator.liveEvents(calendar: calendar) { equal += 1 }
        }
        return equal
    }

    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw BenchError("bind() on 127.0.0.1 failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A benchmark that could not run, and why.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A timed event for the simulator.
func benchEvent(id: String, title: String, start: Date, minutes: Int = 60, zone: String = "Europe/Berlin") -> [String: JSONValue] {
    [
        "id": .string(id), "summary": .string(title),
        "start": .object(["dateTime": .string(start.formatted(.iso8601)), "timeZone": .string(zone)]),
        "end": .object(["dateTime": .string(start.addingTimeInterval(Double(minutes) * 60).formatted(.iso8601)), "timeZone": .string(zone)]),
    ]
}

/// Prints one JSON object on stdout (keys sorted).
func emit(_ fields: [String: JSONValue]) {
    print(String(decoding: JSONValue.object(fields).serialized(), as: UTF8.self))
}

/// Seconds in a duration.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
