import CurlHTTP
import Foundation
import GatewayCore
import GoogleCalendar
import ProviderSimulators
import TestSupport
import Testing

/// Connect a Google account through the API, watch its calendar, push through the webhook, read appointments back.
@Suite("Google connection end to end", .serialized)
struct GoogleConnectionEndToEndTests {
    func start(_ simulator: GoogleSimulator, port: Int = 0, syncWindow: TimeInterval = 0.05) async throws -> (SimulatorServer, GatewayHarness) {
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let gateway = try await GatewayHarness(
            configure: { $0.listen.port = port }, syncWindow: syncWindow,
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

    func api(_ gateway: GatewayHarness, _ path: String, _ arguments: [String] = []) async throws -> (status: Int, json: [String: Any]) {
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)"] + arguments
        )
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
        return (response.status, json)
    }

    func connectBody(_ refresh: String = "1//refresh-ok") -> [String] {
        [
            "-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
            #"{"user_id":"u1","provider":"google","client_id":"cid","client_secret":"csecret","refresh_token":"\#(refresh)"}"#,
        ]
    }

    @Test func connectSyncsWatchesAndPushesTriggerADeltaSync() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//refresh-ok"])
        simulator.addCalendar(id: "team", name: "Team")
        simulator.upsertEvent(calendar: "primary", timed("Kickoff", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("k1")]))
        let (server, gateway) = try await start(simulator)

        let created = try await api(gateway, "/api/v1/connections", connectBody())
        #expect(created.status == 201)
        let id = try #require(created.json["id"] as? String)
        #expect(created.json["state"] as? String == "active")
        let calendars = created.json["calendars"] as? [[String: Any]] ?? []
        #expect(calendars.count == 2)
        #expect(calendars.first { $0["id"] as? String == "primary" }?["selected"] as? Bool == true)

        var listed = try await api(gateway, "/api/v1/appointments?user=u1")
        var items = listed.json["appointments"] as? [[String: Any]] ?? []
        #expect(items.map { $0["id"] as? String } == ["k1"])
        #expect(items.first?["source"] as? String == "google")
        #expect(items.first?["connection_id"] as? String == id)

        // The connect flow opened a channel; a push through it (as Google would send) triggers a delta sync.
        let channel = try #require(simulator.channels.first)
        simulator.upsertEvent(calendar: "primary", timed("Kickoff (moved)", "2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z", extra: ["id": .string("k1")]))
        let status = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/webhooks/google", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-X", "POST", "--data-binary", "", "-H", "X-Goog-Channel-ID: \(channel.id)", "-H", "X-Goog-Channel-Token: \(channel.token)",
                "-H", "X-Goog-Resource-ID: \(channel.resourceID)", "-H", "X-Goog-Resource-State: exists", "-H", "X-Goog-Message-Number: 2",
            ]
        ).status
        #expect(status == 200)
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            try await Task.sleep(for: .milliseconds(50))
            listed = try await api(gateway, "/api/v1/appointments?user=u1")
            items = listed.json["appointments"] as? [[String: Any]] ?? []
        } while items.first?["title"] as? String != "Kickoff (moved)" && ContinuousClock.now < deadline
        #expect(items.first?["title"] as? String == "Kickoff (moved)")
        // The processed push leaves no backlog.
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await gateway.store.backlog().count == 0)

        // Range filter, and a bad range is a clear 400.
        #expect((try await api(gateway, "/api/v1/appointments?user=u1&from=2026-12-03T00:00:00Z").json["appointments"] as? [Any])?.isEmpty == true)
        #expect(try await api(gateway, "/api/v1/appointments?user=u1&from=tomorrow").status == 400)
        #expect(try await api(gateway, "/api/v1/appointments").status == 400)

        // A revoked refresh token puts the connection in needs_reconnect with the reason, visible in the API
        // and in /admin/health. (A fresh syncer has no cached access token, so the next sync must refresh.)
        simulator.revoke(refreshToken: "1//refresh-ok")
        let coldSyncer = try #require(gateway.google).withEmptyTokenCache()
        await #expect { _ = try await coldSyncer.sync(calendarKey: "\(id)/primary") } throws: {
            ($0 as? SyncFailure)?.kind == .needsReconnect
        }
        let one = try await api(gateway, "/api/v1/connections/\(id)")
        #expect(one.json["state"] as? String == "needs_reconnect")
        #expect((one.json["state_reason"] as? String)?.contains("invalid_grant") == true)
        let health = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/admin/health", caFile: gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(gateway.adminToken)"]
        )
        #expect(health.body.contains(#""status":"degraded""#))
        #expect(health.body.contains(#""needs_reconnect":1"#))
        await server.stop()
        await gateway.shutdown()
    }

    /// Waits until `condition` holds or `seconds` pass.
    func eventually(_ seconds: Double = 15, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    func title(_ gateway: GatewayHarness, _ id: String) async throws -> String? {
        let items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        return items.first { $0["id"] as? String == id }?["title"] as? String
    }

    @Test func aThousandPushesWithinOneWindowCauseAtMostTwoFetches() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//refresh-ok"])
        simulator.upsertEvent(calendar: "primary", timed("A", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("a")]))
        // A debug build on two cores needs a few seconds for 1,000 TLS requests: make the window cover the burst.
        let (server, gateway) = try await start(simulator, syncWindow: 6)
        #expect(try await api(gateway, "/api/v1/connections", connectBody()).status == 201)
        let channel = try #require(simulator.channels.first)
        let fetchesBefore = try #require(gateway.scheduler).fetchesStarted
        var configuration = CurlHTTPClient.Configuration()
        configuration.caBundlePath = gateway.certificates.caCertificate
        let http = try CurlHTTPClient(configuration: configuration)
        let started = ContinuousClock.now
        // All 1,000 are queued at once; the client's connection cap (16 per host) keeps the flood orderly.
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for n in 0..<1000 {
                group.addTask {
                    try await http.execute(
                        CurlHTTPRequest(
                            method: "POST", url: "https://localhost:\(gateway.port)/webhooks/google",
                            headers: [
                                CurlHTTPHeader("X-Goog-Channel-ID", channel.id), CurlHTTPHeader("X-Goog-Channel-Token", channel.token),
                                CurlHTTPHeader("X-Goog-Resource-ID", channel.resourceID), CurlHTTPHeader("X-Goog-Resource-State", "exists"),
                                CurlHTTPHeader("X-Goog-Message-Number", String(10 + n)),
                            ], body: [])
                    ).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        let burst = ContinuousClock.now - started
        #expect(statuses.allSatisfy { $0 == 200 })
        #expect(burst < .seconds(6), "the burst took \(burst), longer than one coalescing window")
        #expect(await eventually { (try? await gateway.store.backlog().count) == 0 })
        let fetches = try #require(gateway.scheduler).fetchesStarted - fetchesBefore
        #expect(fetches >= 1 && fetches <= 2, "\(fetches) fetches for 1,000 pushes")
        await http.shutdown()
        await server.stop()
        await gateway.shutdown()
    }

    @Test func rateLimitsAnd5xxConvergeAndPushFaultsAreSurvived() async throws {
        let port = try SilentListener().port
        let simulator = GoogleSimulator(refreshTokens: ["1//refresh-ok"], pushClient: nil)
        simulator.upsertEvent(calendar: "primary", timed("A", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("a")]))
        let (server, gateway) = try await start(simulator, port: port)
        #expect(try await api(gateway, "/api/v1/connections", connectBody()).status == 201)
        let channel = try #require(simulator.channels.first)

        simulator.inject(.rateLimit, count: 2)
        simulator.inject(.serverError)
        simulator.upsertEvent(calendar: "primary", timed("A (edited)", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("a")]))
        let status = try await curlRequest(
            "https://localhost:\(gateway.port)/webhooks/google", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-X", "POST", "--data-binary", "", "-H", "X-Goog-Channel-ID: \(channel.id)", "-H", "X-Goog-Channel-Token: \(channel.token)",
                "-H", "X-Goog-Resource-ID: \(channel.resourceID)", "-H", "X-Goog-Resource-State: exists", "-H", "X-Goog-Message-Number: 900000",
            ]
        ).status
        #expect(status == 200)
        #expect(await eventually(20) { (try? await title(gateway, "a")) == "A (edited)" }, "sync did not converge through 429, 429, 503")
        #expect(await eventually { (try? await gateway.store.backlog().count) == 0 })

        // Now the simulator pushes by itself, like Google, trusting only the gateway's CA: a dropped push is
        // covered by the next one's delta sync, a duplicated one is stored once.
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = gateway.certificates.caCertificate
        let pushClient = try CurlHTTPClient(configuration: pushConfiguration)
        simulator.setPushClient(pushClient)
        simulator.inject(.dropPush)
        simulator.upsertEvent(calendar: "primary", timed("B", "2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z", extra: ["id": .string("b")]))
        simulator.inject(.duplicatePush)
        simulator.upsertEvent(calendar: "primary", timed("C", "2026-12-03T10:00:00Z", "2026-12-03T11:00:00Z", extra: ["id": .string("c")]))
        let converged = await eventually {
            let b = try? await title(gateway, "b")
            let c = try? await title(gateway, "c")
            return b == "B" && c == "C"
        }
        #expect(converged, "changes behind a dropped push arrive with the next push's delta sync (pushes: \(simulator.pushStatistics))")
        let delivered = await eventually { simulator.pushStatistics.delivered == 2 }
        #expect(delivered, "one dropped push, one duplicated: two deliveries")
        await pushClient.shutdown()
        await server.stop()
        await gateway.shutdown()
    }

    @Test func choosingCalendarsWatchesNewOnesAndStopsDroppedOnes() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//refresh-ok"])
        simulator.addCalendar(id: "team", name: "Team")
        simulator.upsertEvent(calendar: "primary", timed("Mine", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("p1")]))
        simulator.upsertEvent(calendar: "team", timed("Ours", "2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z", extra: ["id": .string("t1")]))
        let (server, gateway) = try await start(simulator)
        let created = try await api(gateway, "/api/v1/connections", connectBody())
        let id = try #require(created.json["id"] as? String)
        let primaryChannel = try #require(simulator.channels.first)

        let chosen = try await api(
            gateway, "/api/v1/connections/\(id)/calendars",
            [
                "-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", #"{"selected":["team"]}"#,
            ])
        #expect(chosen.status == 200)
        let items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(items.compactMap { $0["id"] as? String } == ["t1"])
        #expect(simulator.channels.first { $0.id == primaryChannel.id }?.stopped == true, "the dropped calendar's channel was stopped")
        #expect(simulator.channels.contains { $0.calendar == "team" && !$0.stopped })
        #expect(try await gateway.store.liveGoogleChannels(calendarKey: "\(id)/primary").isEmpty)
        // A push on the stopped channel is refused and triggers nothing.
        let pushed = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/webhooks/google", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-X", "POST", "--data-binary", "", "-H", "X-Goog-Channel-ID: \(primaryChannel.id)", "-H", "X-Goog-Channel-Token: \(primaryChannel.token)",
                "-H", "X-Goog-Resource-ID: \(primaryChannel.resourceID)", "-H", "X-Goog-Resource-State: exists", "-H", "X-Goog-Message-Number: 77",
            ]
        )
        #expect(pushed.status == 404)
        let listed = try await api(gateway, "/api/v1/connections/\(id)/calendars")
        #expect((listed.json["calendars"] as? [[String: Any]])?.first { $0["id"] as? String == "team" }?["selected"] as? Bool == true)
        #expect(try await api(gateway, "/api/v1/connections/\(id)/calendars", ["-X", "PUT", "--data-binary", #"{"selected":["nope"]}"#]).status == 400)
        await server.stop()
        await gateway.shutdown()
    }

    @Test func badConnectRequestsAreRefusedClearly() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//refresh-ok"])
        let (server, gateway) = try await start(simulator)
        let cases: [([String], Int)] = [
            (["-X", "POST", "--data-binary", "{"], 400),
            (["-X", "POST", "--data-binary", #"{"user_id":"u1","provider":"google"}"#], 400),
            (["-X", "POST", "--data-binary", #"{"user_id":"u1","provider":"yahoo","client_id":"a","client_secret":"b","refresh_token":"c"}"#], 400),
            (["-X", "POST", "--data-binary", #"{"user_id":"u1","provider":"google","client_id":"a","client_secret":"b","refresh_token":"c","extra":1}"#], 400),
            (["-X", "POST", "--data-binary", #"{"user_id":5,"provider":"google","client_id":"a","client_secret":"b","refresh_token":"c"}"#], 400),
            (connectBody("1//revoked"), 422),
        ]
        for (arguments, status) in cases {
            #expect(try await api(gateway, "/api/v1/connections", arguments).status == status, "\(arguments)")
        }
        #expect(try await api(gateway, "/api/v1/connections").json["connections"] as? [Any] != nil)
        #expect(try await api(gateway, "/api/v1/connections/nope").status == 404)
        let noToken = try await curlRequest("https://127.0.0.1:\(gateway.port)/api/v1/connections", caFile: gateway.certificates.caCertificate)
        #expect(noToken.status == 401)
        await server.stop()
        await gateway.shutdown()
    }
}

func timed(_ summary: String, _ start: String, _ end: String, extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
    var fields: [String: JSONValue] = [
        "summary": .string(summary),
        "start": .object(["dateTime": .string(start), "timeZone": .string("UTC")]),
        "end": .object(["dateTime": .string(end), "timeZone": .string("UTC")]),
    ]
    for (k, v) in extra { fields[k] = v }
    return fields
}
