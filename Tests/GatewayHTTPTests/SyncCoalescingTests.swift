import CurlHTTP
import Foundation
import GatewayCore
import GoogleCalendar
import ProviderSimulators
import TestSupport
import Testing

/// The coalescing figures of the benchmark (`calgate-bench coalesce-one` / `coalesce-many`) at a small scale, through
/// the same path: changes at the Google simulator, real HTTPS pushes to the gateway, the inbox, the scheduler, delta
/// fetches over loopback. Each calendar's pushes arrive within one window, so each calendar is fetched at most twice.
@Suite("Sync coalescing at small scale", .serialized)
struct SyncCoalescingTests {
    // Wide enough that a loaded CI machine still sends each burst inside one window.
    static let window: TimeInterval = 5

    func start(_ simulator: GoogleSimulator) async throws -> (SimulatorServer, GatewayHarness) {
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let gateway = try await GatewayHarness(
            syncWindow: Self.window,
            google: { store, sealer, config in
                GoogleConnectionSyncer(
                    client: GoogleCalendarClient(
                        http: try CurlHTTPClient(),
                        endpoints: GoogleEndpoints(
                            tokenURL: server.baseURL + "/token", apiBaseURL: server.baseURL + "/calendar/v3"
                        )),
                    store: store, sealer: sealer, clock: SystemGatewayClock(),
                    webhookAddress: "https://localhost:\(config.listen.port)/webhooks/google"
                )
            })
        return (server, gateway)
    }

    func api(_ gateway: GatewayHarness, _ path: String, _ arguments: [String]) async throws -> (status: Int, id: String?) {
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)", "-H", "Content-Type: application/json"] + arguments
        )
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any]
        return (response.status, json?["id"] as? String)
    }

    func connect(_ gateway: GatewayHarness, user: String, calendars: [String]) async throws -> String {
        let body = #"{"user_id":"\#(user)","provider":"google","client_id":"cid","client_secret":"cs","refresh_token":"1//refresh-ok"}"#
        let created = try await api(gateway, "/api/v1/connections", ["-X", "POST", "--data-binary", body])
        let id = try #require(created.id, "connect answered \(created.status)")
        let list = calendars.map { "\"\($0)\"" }.joined(separator: ",")
        #expect(try await api(gateway, "/api/v1/connections/\(id)/calendars", ["-X", "PUT", "--data-binary", #"{"selected":[\#(list)]}"#]).status == 200)
        return id
    }

    /// Sends `pushes` (channel, message number) as Google does, 16 at a time; returns the statuses.
    func send(_ pushes: [(GoogleSimulator.WatchedChannel, Int, @Sendable () -> Void)], to gateway: GatewayHarness) async throws -> [Int] {
        var configuration = CurlHTTPClient.Configuration()
        configuration.caBundlePath = gateway.certificates.caCertificate
        let http = try CurlHTTPClient(configuration: configuration)
        let port = gateway.port
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for (channel, number, change) in pushes {
                group.addTask {
                    change()
                    return try await http.execute(
                        CurlHTTPRequest(
                            method: "POST", url: "https://localhost:\(port)/webhooks/google",
                            headers: [
                                CurlHTTPHeader("X-Goog-Channel-ID", channel.id), CurlHTTPHeader("X-Goog-Channel-Token", channel.token),
                                CurlHTTPHeader("X-Goog-Resource-ID", channel.resourceID), CurlHTTPHeader("X-Goog-Resource-State", "exists"),
                                CurlHTTPHeader("X-Goog-Message-Number", String(number)),
                            ], body: [])
                    ).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        await http.shutdown()
        return statuses
    }

    func settled(_ gateway: GatewayHarness) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if (try? await gateway.store.backlog().count) == 0, gateway.scheduler?.isIdle == true { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test func aHundredPushesForOneCalendarCauseAtMostTwoFetches() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//refresh-ok"])
        let (server, gateway) = try await start(simulator)
        let id = try await connect(gateway, user: "u1", calendars: ["primary"])
        let channel = try #require(simulator.liveChannels(calendar: "primary").first)
        let lists = simulator.listCalls
        let started = ContinuousClock.now
        let statuses = try await send(
            (0..<100).map { n in
                (channel, 10 + n, { simulator.upsertEvent(calendar: "primary", timed("Edit \(n)", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("e\(n % 7)")])) })
            }, to: gateway)
        #expect(ContinuousClock.now - started < .seconds(Self.window), "the burst must fit in one window")
        #expect(statuses.allSatisfy { $0 == 200 })
        #expect(await settled(gateway))
        let fetches = simulator.listCalls - lists
        #expect(fetches >= 1 && fetches <= 2, "\(fetches) delta fetches for 100 pushes on one calendar")
        let stored = try await gateway.store.appointments(calendarKey: "\(id)/primary").count
        #expect(stored == simulator.liveEvents(calendar: "primary").count)
        await server.stop()
        await gateway.shutdown()
    }

    @Test func twentyCalendarsWithFivePushesEachCauseAtMostFortyFetches() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//refresh-ok"])
        let names = (0..<20).map { "cal\($0)" }
        for name in names { simulator.addCalendar(id: name, name: name) }
        let (server, gateway) = try await start(simulator)
        let first = try await connect(gateway, user: "u1", calendars: Array(names[0..<10]))
        let second = try await connect(gateway, user: "u2", calendars: Array(names[10..<20]))
        var pushes: [(GoogleSimulator.WatchedChannel, Int, @Sendable () -> Void)] = []
        for round in 0..<5 {
            for name in names {
                let channel = try #require(simulator.liveChannels(calendar: name).first)
                pushes.append(
                    (
                        channel, 10 + round,
                        {
                            simulator.upsertEvent(calendar: name, timed("Edit \(round)", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("e\(round)")]))
                        }
                    ))
            }
        }
        let lists = simulator.listCalls
        let started = ContinuousClock.now
        let statuses = try await send(pushes, to: gateway)
        #expect(ContinuousClock.now - started < .seconds(Self.window), "the burst must fit in one window")
        #expect(statuses.allSatisfy { $0 == 200 })
        #expect(await settled(gateway))
        let fetches = simulator.listCalls - lists
        #expect(fetches >= 20 && fetches <= 40, "\(fetches) delta fetches for 20 calendars x 5 pushes")
        for (index, name) in names.enumerated() {
            let key = "\(index < 10 ? first : second)/\(name)"
            #expect(try await gateway.store.appointments(calendarKey: key).count == 5, "\(key) did not converge")
        }
        await server.stop()
        await gateway.shutdown()
    }
}
