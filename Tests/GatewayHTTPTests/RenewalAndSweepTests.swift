import CurlHTTP
import Foundation
import GatewayCore
import GoogleCalendar
import Logging
import MicrosoftGraph
import ProviderSimulators
import SyncEngine
import TestSupport
import Testing

/// The renewal job and the reconciliation sweep over real TLS against the simulators, with the gateway's
/// syncers and the simulators sharing one manual clock so days pass in milliseconds.
@Suite("Renewal and reconciliation", .serialized)
struct RenewalAndSweepTests {
    var logger: Logger {
        var logger = Logger(label: "test.renewal")
        logger.logLevel = .warning
        return logger
    }

    func eventually(_ seconds: Double = 15, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    func api(_ gateway: GatewayHarness, _ path: String, _ arguments: [String] = []) async throws -> [String: Any] {
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate,
            arguments: ["--max-time", "40", "-H", "Authorization: Bearer \(gateway.apiToken)"] + arguments
        )
        return (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
    }

    func titles(_ gateway: GatewayHarness) async throws -> [String: String] {
        let items = try await api(gateway, "/api/v1/appointments?user=u1")["appointments"] as? [[String: Any]] ?? []
        return Dictionary(items.compactMap { item in (item["id"] as? String).map { ($0, item["title"] as? String ?? "") } }, uniquingKeysWith: { a, _ in a })
    }

    static func graphEvent(_ id: String, _ subject: String) -> [String: JSONValue] {
        [
            "id": .string(id), "subject": .string(subject),
            "start": .object(["dateTime": .string("2026-12-01T10:00:00.0000000"), "timeZone": .string("UTC")]),
            "end": .object(["dateTime": .string("2026-12-01T11:00:00.0000000"), "timeZone": .string("UTC")]),
        ]
    }

    @Test func graphSubscriptionsAreRenewedRecreatedAndLapsesRepaired() async throws {
        let clock = ManualGatewayClock()
        let simulator = GraphSimulator(refreshTokens: ["0.AAAA-ok"], clock: { clock.now() })
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let port = try SilentListener().port
        let gateway = try await GatewayHarness(
            configure: { $0.listen.port = port },
            microsoft: { store, sealer, _ in
                GraphConnectionSyncer(
                    client: GraphClient(
                        http: try CurlHTTPClient(),
                        endpoints: GraphEndpoints(
                            tokenURL: server.baseURL + "/common/oauth2/v2.0/token", apiBaseURL: server.baseURL + "/v1.0"
                        )),
                    store: store, sealer: sealer, clock: clock, publicURL: "https://localhost:\(port)"
                )
            })
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = gateway.certificates.caCertificate
        let push = try CurlHTTPClient(configuration: pushConfiguration)
        simulator.setPushClient(push)
        let created = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/api/v1/connections", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-X", "POST", "-H", "Authorization: Bearer \(gateway.apiToken)", "--data-binary",
                #"{"user_id":"u1","provider":"microsoft","client_id":"c","client_secret":"s","refresh_token":"0.AAAA-ok"}"#,
            ])
        #expect(created.status == 201)
        let connection = try #require(((try? JSONSerialization.jsonObject(with: Data(created.body.utf8))) as? [String: Any])?["id"] as? String)
        let renewal = RenewalService(maintainers: [try #require(gateway.microsoft)], scheduler: gateway.scheduler, health: gateway.health, clock: clock, logger: logger)

        var report = try #require(await renewal.runOnce()[.microsoft])
        #expect(report.renewed == 0 && report.created == 0 && report.failures == 0, "nothing is due right after connecting")

        // Past the renewal point (about a quarter of ~7 days left): PATCH to the full lifetime again.
        let first = try #require(simulator.subscriptions.first)
        clock.advance(by: 5.5 * 86_400)
        report = try #require(await renewal.runOnce()[.microsoft])
        #expect(report.renewed == 1)
        #expect(try #require(simulator.subscriptions.first).expiresAt > clock.now().addingTimeInterval(6 * 86_400))
        #expect(simulator.subscriptions.map(\.id) == [first.id])

        // Renewal whose validation handshake fails: backoff, and the connection shows degraded with the next retry.
        clock.advance(by: 5.5 * 86_400)
        simulator.setPushClient(nil)
        report = try #require(await renewal.runOnce()[.microsoft])
        #expect(report.failures == 1 && report.renewed == 0)
        var shown = try await api(gateway, "/api/v1/connections/\(connection)")
        #expect(shown["state"] as? String == "degraded")
        #expect((shown["state_reason"] as? String)?.contains("validation") == true)
        #expect(shown["next_retry_at"] as? String != nil)
        report = try #require(await renewal.runOnce()[.microsoft])
        #expect(report.failures == 0 && report.renewed == 0, "backing off: no retry before the next attempt time")
        simulator.setPushClient(push)
        clock.advance(by: 3601)
        report = try #require(await renewal.runOnce()[.microsoft])
        #expect(report.renewed == 1)
        shown = try await api(gateway, "/api/v1/connections/\(connection)")
        #expect(shown["state"] as? String == "active")

        // Graph dropped the subscription silently: renewal gets 404, creates a new one and re-syncs the gap.
        clock.advance(by: 5.5 * 86_400)
        simulator.removeSubscriptionSilently(id: first.id)
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.graphEvent("G1", "While unsubscribed"))
        report = try #require(await renewal.runOnce()[.microsoft])
        #expect(report.created == 1 && report.resync.count == 1)
        #expect(await eventually { (try? await titles(gateway))?["G1"] == "While unsubscribed" })
        #expect(simulator.subscriptions.count == 1 && simulator.subscriptions.first?.id != first.id)

        // Lapsed anyway (the gateway was "down" past the expiry): counted, recreated, re-synced.
        clock.advance(by: 8 * 86_400)
        #expect(simulator.subscriptions.isEmpty, "Graph deleted the expired subscription")
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.graphEvent("G2", "While lapsed"))
        report = try #require(await renewal.runOnce()[.microsoft])
        #expect(report.lapsed == 1 && report.created == 1)
        #expect(await eventually { (try? await titles(gateway))?["G2"] == "While lapsed" })
        #expect(simulator.subscriptions.count == 1)
        #expect(renewal.totalsByProvider[.microsoft]?.lapsed == 1)

        simulator.setPushClient(nil)
        await server.stop()
        await gateway.shutdown()
        await push.shutdown()
    }

    @Test func googleChannelsAreReplacedThenStoppedAndAFailedStopIsRetried() async throws {
        let clock = ManualGatewayClock()
        let simulator = GoogleSimulator(refreshTokens: ["1//refresh-ok"], clock: { clock.now() })
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let gateway = try await GatewayHarness(google: { store, sealer, config in
            GoogleConnectionSyncer(
                client: GoogleCalendarClient(
                    http: try CurlHTTPClient(),
                    endpoints: GoogleEndpoints(
                        tokenURL: server.baseURL + "/token", apiBaseURL: server.baseURL + "/calendar/v3"
                    )),
                store: store, sealer: sealer, clock: clock, webhookAddress: "https://localhost:\(config.listen.port)/webhooks/google"
            )
        })
        let created = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/api/v1/connections", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-X", "POST", "-H", "Authorization: Bearer \(gateway.apiToken)", "--data-binary",
                #"{"user_id":"u1","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//refresh-ok"}"#,
            ])
        #expect(created.status == 201)
        let renewal = RenewalService(maintainers: [try #require(gateway.google)], scheduler: gateway.scheduler, health: gateway.health, clock: clock, logger: logger)
        let first = try #require(simulator.liveChannels(calendar: "primary").first)

        clock.advance(by: 5.5 * 86_400)
        var report = try #require(await renewal.runOnce()[.google])
        #expect(report.renewed == 1 && report.stopped == 1)
        var live = simulator.liveChannels(calendar: "primary")
        #expect(live.count == 1 && live.first?.id != first.id, "one live channel, the new one")
        #expect(simulator.channels.first { $0.id == first.id }?.stopped == true)

        // The stop fails once: two channels overlap until the retry stops the old one.
        clock.advance(by: 5.5 * 86_400)
        simulator.failNextStops(1)
        report = try #require(await renewal.runOnce()[.google])
        #expect(report.renewed == 1 && report.failures == 1)
        #expect(simulator.liveChannels(calendar: "primary").count == 2)
        clock.advance(by: 3601)
        report = try #require(await renewal.runOnce()[.google])
        #expect(report.stopped == 1 && report.renewed == 0)
        live = simulator.liveChannels(calendar: "primary")
        #expect(live.count == 1)
        let connection = try #require(try await gateway.store.connections(userID: "u1").first)
        #expect(try await gateway.store.liveGoogleChannels(calendarKey: "\(connection.id)/primary").count == 1, "the store agrees")

        // Expired before renewal: counted as a lapse, replaced, re-synced.
        clock.advance(by: 8 * 86_400)
        #expect(simulator.liveChannels(calendar: "primary").isEmpty)
        report = try #require(await renewal.runOnce()[.google])
        #expect(report.lapsed == 1 && report.created == 1 && report.resync.count == 1)
        #expect(simulator.liveChannels(calendar: "primary").count == 1)
        await server.stop()
        await gateway.shutdown()
    }

    @Test func theSweepFindsWhatPushMissedAndCountsIt() async throws {
        let clock = ManualGatewayClock()
        let simulator = GraphSimulator(refreshTokens: ["0.AAAA-ok"], clock: { clock.now() })
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let port = try SilentListener().port
        let gateway = try await GatewayHarness(
            configure: { $0.listen.port = port },
            microsoft: { store, sealer, _ in
                GraphConnectionSyncer(
                    client: GraphClient(
                        http: try CurlHTTPClient(),
                        endpoints: GraphEndpoints(
                            tokenURL: server.baseURL + "/common/oauth2/v2.0/token", apiBaseURL: server.baseURL + "/v1.0"
                        )),
                    store: store, sealer: sealer, clock: clock, publicURL: "https://localhost:\(port)"
                )
            })
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = gateway.certificates.caCertificate
        let push = try CurlHTTPClient(configuration: pushConfiguration)
        simulator.setPushClient(push)
        let created = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/api/v1/connections", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-X", "POST", "-H", "Authorization: Bearer \(gateway.apiToken)", "--data-binary",
                #"{"user_id":"u1","provider":"microsoft","client_id":"c","client_secret":"s","refresh_token":"0.AAAA-ok"}"#,
            ])
        #expect(created.status == 201)
        let scheduler = try #require(gateway.scheduler)
        let sweep = ReconciliationSweep(store: gateway.store, scheduler: scheduler, providers: [.microsoft], clock: clock, interval: 3600, logger: logger)
        await sweep.runOnce()
        #expect(sweep.requestedSyncs <= 1)

        // A pushed change is not "missed"; a dropped one is found by the sweep within the hour and counted.
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.graphEvent("P1", "Pushed"))
        #expect(await eventually { (try? await titles(gateway))?["P1"] == "Pushed" })
        simulator.inject(.dropNotification)
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.graphEvent("M1", "Never notified"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await titles(gateway)["M1"] == nil)
        let before = sweep.requestedSyncs
        clock.advance(by: 3601)
        await sweep.runOnce()
        #expect(sweep.requestedSyncs == before + 1)
        #expect(await eventually { (try? await titles(gateway))?["M1"] == "Never notified" })
        #expect(await eventually { scheduler.missedByPush[.microsoft] == 1 })
        // An idle hour later the sweep finds nothing more.
        clock.advance(by: 3601)
        await sweep.runOnce()
        try await Task.sleep(for: .milliseconds(300))
        #expect(scheduler.missedByPush[.microsoft] == 1)

        simulator.setPushClient(nil)
        await server.stop()
        await gateway.shutdown()
        await push.shutdown()
    }
}
