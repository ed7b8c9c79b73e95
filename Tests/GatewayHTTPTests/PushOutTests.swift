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

/// "Add to calendar": LeadCenter-created appointments pushed to the one chosen calendar, durably, and their echoes
/// shown once.
@Suite("Add to calendar", .serialized)
struct PushOutTests {
    func api(_ gateway: GatewayHarness, _ path: String, _ arguments: [String] = []) async throws -> (status: Int, json: [String: Any], body: String) {
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)", "-H", "Content-Type: application/json"] + arguments
        )
        return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:], response.body)
    }

    var logger: Logger {
        var logger = Logger(label: "test.push")
        logger.logLevel = .critical
        return logger
    }

    @Test func pushedToGoogleThroughFaultsAndARestartAndShownOnce() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let gateway = try await GatewayHarness(google: { store, sealer, config in
            GoogleConnectionSyncer(
                client: GoogleCalendarClient(
                    http: try CurlHTTPClient(),
                    endpoints: GoogleEndpoints(
                        tokenURL: server.baseURL + "/token", apiBaseURL: server.baseURL + "/calendar/v3"
                    )),
                store: store, sealer: sealer, clock: SystemGatewayClock(), webhookAddress: "https://localhost:\(config.listen.port)/webhooks/google"
            )
        })
        let google = try #require(gateway.google)
        let id = try #require(
            try await api(
                gateway, "/api/v1/connections",
                [
                    "-X", "POST", "--data-binary",
                    #"{"user_id":"u1","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//ok"}"#,
                ]
            ).json["id"] as? String)

        // No target: nothing is pushed, and the appointment says so.
        let unpushed = try await api(
            gateway, "/api/v1/appointments",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","title":"Not pushed","start":"2026-12-01T09:00:00Z","end":"2026-12-01T10:00:00Z"}"#,
            ])
        #expect(unpushed.json["push_status"] as? String == "no_target")
        let clock = ManualGatewayClock()
        var worker = PushWorker(store: gateway.store, pushers: [google], clock: clock, logger: logger)
        #expect(await worker.runOnce() == 0)
        #expect(simulator.liveEvents(calendar: "primary").isEmpty)

        // Choose the target; bad choices are refused.
        #expect(try await api(gateway, "/api/v1/users/u1/push-target", ["-X", "PUT", "--data-binary", #"{"connection_id":"gc_nope","calendar_id":"primary"}"#]).status == 404)
        #expect(try await api(gateway, "/api/v1/users/u2/push-target", ["-X", "PUT", "--data-binary", #"{"connection_id":"\#(id)","calendar_id":"primary"}"#]).status == 404)
        #expect(try await api(gateway, "/api/v1/users/u1/push-target", ["-X", "PUT", "--data-binary", #"{"connection_id":"\#(id)","calendar_id":"nope"}"#]).status == 400)
        #expect(try await api(gateway, "/api/v1/users/u1/push-target", ["-X", "PUT", "--data-binary", #"{"connection_id":"\#(id)"}"#]).status == 400)
        let chosen = try await api(gateway, "/api/v1/users/u1/push-target", ["-X", "PUT", "--data-binary", #"{"connection_id":"\#(id)","calendar_id":"primary"}"#])
        #expect(chosen.status == 200)
        #expect(try await api(gateway, "/api/v1/users/u1/push-target").json["calendar_id"] as? String == "primary")

        // Google fails every call: the job stays queued; after a "restart" (a new worker) it goes through.
        simulator.chaos.configure(failureRate: 1, dropRate: 0, timeoutDelay: .milliseconds(1), seed: 7)
        let made = try await api(
            gateway, "/api/v1/appointments",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","title":"Review with Smiths","start":"2026-12-02T15:00:00Z","end":"2026-12-02T16:00:00Z"}"#,
            ])
        #expect(made.json["push_status"] as? String == "pending")
        let lc = try #require(made.json["id"] as? String)
        clock.set(Date().addingTimeInterval(1))  // jobs are stamped with the wall clock; the worker's clock catches up
        #expect(await worker.runOnce() == 1)
        #expect(try await gateway.store.pendingPushJobCount() == 1, "a failed push stays queued")
        let listed = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(listed.first { $0["id"] as? String == lc }?["push_error"] as? String != nil)
        simulator.chaos.configure(failureRate: 0, dropRate: 0, seed: 7)
        worker = PushWorker(store: gateway.store, pushers: [google], clock: clock, logger: logger)
        #expect(await worker.runOnce() == 0, "backing off")
        clock.advance(by: 3600)
        #expect(await worker.runOnce() == 1)
        let pushedEvent = try #require(simulator.liveEvents(calendar: "primary").first)
        #expect(pushedEvent.value == "Review with Smiths")
        #expect(simulator.event(calendar: "primary", id: pushedEvent.key)?["extendedProperties"] == .object(["private": .object(["calgateId": .string(lc)])]))

        // The echo comes back through the calendar's sync: shown once, as the LeadCenter appointment.
        _ = try await google.sync(calendarKey: "\(id)/primary")
        #expect(try await gateway.store.appointments(calendarKey: "\(id)/primary").map(\.externalID) == [pushedEvent.key])
        var items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(items.filter { ($0["title"] as? String) == "Review with Smiths" }.count == 1)
        #expect(items.first { $0["id"] as? String == lc }?["push_status"] as? String == "pushed")

        // Update and delete follow to Google.
        #expect(try await api(gateway, "/api/v1/appointments/\(lc)", ["-X", "PATCH", "--data-binary", #"{"title":"Review with Smiths (moved)"}"#]).status == 200)
        clock.set(Date().addingTimeInterval(1))
        #expect(await worker.runOnce() == 1)
        #expect(simulator.liveEvents(calendar: "primary")[pushedEvent.key] == "Review with Smiths (moved)")
        #expect(try await api(gateway, "/api/v1/appointments/\(lc)", ["-X", "DELETE"]).status == 204)
        items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(!items.contains { $0["id"] as? String == lc }, "hidden at once")
        clock.set(Date().addingTimeInterval(1))
        #expect(await worker.runOnce() == 1)
        #expect(simulator.liveEvents(calendar: "primary").isEmpty)
        #expect(try await gateway.store.pendingPushJobCount() == 0)

        // A push whose answer was lost (Google created the event, calgate never heard): the event carries calgate's
        // tag, so its echo is still recognised and not shown as a second appointment.
        let lost = try await api(
            gateway, "/api/v1/appointments",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","title":"Lost answer","start":"2026-12-04T15:00:00Z","end":"2026-12-04T16:00:00Z"}"#,
            ])
        let lostID = try #require(lost.json["id"] as? String)
        simulator.upsertEvent(
            calendar: "primary",
            timed(
                "Lost answer", "2026-12-04T15:00:00Z", "2026-12-04T16:00:00Z",
                extra: [
                    "id": .string("orphan1"), "extendedProperties": .object(["private": .object(["calgateId": .string(lostID)])]),
                ]))
        _ = try await google.sync(calendarKey: "\(id)/primary")
        items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(items.filter { $0["title"] as? String == "Lost answer" }.count == 1, "the tagged echo is linked, not listed")
        // The retried create adopts the event instead of creating a second one.
        clock.set(Date().addingTimeInterval(1))
        #expect(await worker.runOnce() == 1)
        #expect(simulator.liveEvents(calendar: "primary").filter { $0.value == "Lost answer" }.map(\.key) == ["orphan1"])
        #expect(try await gateway.store.pushState(appointmentID: lostID)?.externalID == "orphan1")

        // Clearing the target: new appointments are not pushed.
        #expect(try await api(gateway, "/api/v1/users/u1/push-target", ["-X", "PUT", "--data-binary", #"{"connection_id":null}"#]).json["connection_id"] is NSNull)
        #expect(
            try await api(
                gateway, "/api/v1/appointments",
                [
                    "-X", "POST", "--data-binary",
                    #"{"user_id":"u1","title":"Local only","start":"2026-12-03T09:00:00Z","end":"2026-12-03T10:00:00Z"}"#,
                ]
            ).json["push_status"] as? String == "no_target")
        await server.stop()
        await gateway.shutdown()
    }

    @Test func pushedToOutlookAndShownOnce() async throws {
        let simulator = GraphSimulator(refreshTokens: ["0.AAAA-ok"])
        let graph = simulator
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
                    store: store, sealer: sealer, clock: SystemGatewayClock(), publicURL: "https://localhost:\(port)"
                )
            })
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = gateway.certificates.caCertificate
        let push = try CurlHTTPClient(configuration: pushConfiguration)
        simulator.setPushClient(push)
        let microsoft = try #require(gateway.microsoft)
        let id = try #require(
            try await api(
                gateway, "/api/v1/connections",
                [
                    "-X", "POST", "--data-binary",
                    #"{"user_id":"u1","provider":"microsoft","client_id":"c","client_secret":"s","refresh_token":"0.AAAA-ok"}"#,
                ]
            ).json["id"] as? String)
        #expect(
            try await api(
                gateway, "/api/v1/users/u1/push-target",
                [
                    "-X", "PUT", "--data-binary",
                    #"{"connection_id":"\#(id)","calendar_id":"\#(GraphSimulator.defaultCalendarID)"}"#,
                ]
            ).status == 200)
        let made = try await api(
            gateway, "/api/v1/appointments",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","title":"Outlook-bound","start":"2026-12-04T15:00:00Z","end":"2026-12-04T15:30:00Z"}"#,
            ])
        let lc = try #require(made.json["id"] as? String)
        let worker = PushWorker(store: gateway.store, pushers: [microsoft], logger: logger)
        #expect(await worker.runOnce() == 1)
        #expect(simulator.liveEvents(calendar: GraphSimulator.defaultCalendarID).values.sorted() == ["Outlook-bound"])
        // Graph notifies calgate of the new event; the echo is synced but shown once.
        let deadline = ContinuousClock.now + .seconds(10)
        while try await gateway.store.appointments(calendarKey: "\(id)/\(GraphSimulator.defaultCalendarID)").isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await gateway.store.appointments(calendarKey: "\(id)/\(GraphSimulator.defaultCalendarID)").count == 1)
        let items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(items.map { $0["id"] as? String } == [lc])
        // The iCalUID was recorded: a copy Outlook shows under another id is still recognised as the pushed event.
        let uid = try #require(
            graph.liveEvents(calendar: GraphSimulator.defaultCalendarID).keys.first.flatMap {
                if case .string(let value)? = graph.event(calendar: GraphSimulator.defaultCalendarID, id: $0)?["iCalUId"] { return value } else { return nil }
            })
        graph.upsertEvent(
            calendar: GraphSimulator.defaultCalendarID,
            [
                "id": .string("AAMkCopy="), "subject": .string("Outlook-bound"), "iCalUId": .string(uid),
                "start": .object(["dateTime": .string("2026-12-04T15:00:00.0000000"), "timeZone": .string("UTC")]),
                "end": .object(["dateTime": .string("2026-12-04T15:30:00.0000000"), "timeZone": .string("UTC")]),
            ])
        _ = try await microsoft.sync(calendarKey: "\(id)/\(GraphSimulator.defaultCalendarID)")
        #expect(try await gateway.store.appointments(calendarKey: "\(id)/\(GraphSimulator.defaultCalendarID)").count == 2)
        let again = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(again.map { $0["id"] as? String } == [lc], "linked by iCalUID")
        // A recurring appointment cannot go to Outlook: it fails clearly after the retries.
        let series = try await api(
            gateway, "/api/v1/appointments",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","title":"Weekly","start":"2026-12-07T09:00:00Z","end":"2026-12-07T09:30:00Z","recurrence":["RRULE:FREQ=WEEKLY;COUNT=4"]}"#,
            ])
        let seriesID = try #require(series.json["id"] as? String)
        let impatient = PushWorker(store: gateway.store, pushers: [microsoft], backoff: BackoffPolicy(base: 0.001, cap: 0.001), maxFailedAttempts: 2, logger: logger)
        for _ in 0..<3 {
            await impatient.runOnce()
            try await Task.sleep(for: .milliseconds(20))
        }
        let state = try await gateway.store.pushState(appointmentID: seriesID)
        #expect(state?.status == "failed")
        #expect(state?.error?.contains("recurring") == true)
        simulator.setPushClient(nil)
        await server.stop()
        await gateway.shutdown()
        await push.shutdown()
    }
}
