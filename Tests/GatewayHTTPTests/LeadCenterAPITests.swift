import CurlHTTP
import Foundation
import GatewayCore
import GoogleCalendar
import MicrosoftGraph
import ProviderSimulators
import TestSupport
import Testing

/// The LeadCenter rules over real TLS against the Google simulator: visibility, read-only imports with editable
/// categories, LeadCenter-created appointments, disconnect and reconnect, the plan's connection cap, availability.
@Suite("LeadCenter API", .serialized)
struct LeadCenterAPITests {
    func start(_ simulator: GoogleSimulator, cap: Int = 10) async throws -> (SimulatorServer, GatewayHarness) {
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let gateway = try await GatewayHarness(
            configure: { $0.maxConnectionsPerUser = cap },
            google: { store, sealer, config in
                GoogleConnectionSyncer(
                    client: GoogleCalendarClient(
                        http: try CurlHTTPClient(),
                        endpoints: GoogleEndpoints(
                            tokenURL: server.baseURL + "/token", apiBaseURL: server.baseURL + "/calendar/v3"
                        )),
                    store: store, sealer: sealer, clock: SystemGatewayClock(), webhookAddress: "https://localhost:\(config.listen.port)/webhooks/google"
                )
            })
        return (server, gateway)
    }

    func api(_ gateway: GatewayHarness, _ path: String, _ arguments: [String] = []) async throws -> (status: Int, json: [String: Any], body: String) {
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)", "-H", "Content-Type: application/json"] + arguments
        )
        return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:], response.body)
    }

    func connect(_ gateway: GatewayHarness, user: String = "u1", extra: String = "") async throws -> (status: Int, json: [String: Any], body: String) {
        try await api(
            gateway, "/api/v1/connections",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"\#(user)","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//ok"\#(extra)}"#,
            ])
    }

    func ids(_ gateway: GatewayHarness, _ query: String) async throws -> [String] {
        let items = try await api(gateway, "/api/v1/appointments?\(query)").json["appointments"] as? [[String: Any]] ?? []
        return items.compactMap { $0["id"] as? String }.sorted()
    }

    @Test func visibilityDecidesWhoSeesImports() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        simulator.upsertEvent(calendar: "primary", timed("Private review", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("p1")]))
        let (server, gateway) = try await start(simulator)
        let created = try await connect(gateway, extra: #","account_id":"acct-1""#)
        #expect(created.status == 201)
        #expect(created.json["visibility"] as? String == "only_me")
        #expect(created.json["account_id"] as? String == "acct-1")
        let id = try #require(created.json["id"] as? String)

        #expect(try await ids(gateway, "user=u1") == ["p1"], "the owner sees it")
        #expect(try await ids(gateway, "user=u1&viewer=u2&account=acct-1").isEmpty, "a colleague does not while it is only_me")
        let changed = try await api(gateway, "/api/v1/connections/\(id)", ["-X", "PATCH", "--data-binary", #"{"visibility":"everyone"}"#])
        #expect(changed.status == 200)
        #expect(changed.json["visibility"] as? String == "everyone")
        #expect(try await ids(gateway, "user=u1&viewer=u2&account=acct-1") == ["p1"], "everyone on the account sees it")
        #expect(try await ids(gateway, "user=u1&viewer=u9&account=acct-2").isEmpty, "another account never does")
        for bad in [#"{"visibility":"public"}"#, #"{"visibility":1}"#, #"{"color":"red"}"#, "{}", "nope"] {
            #expect(try await api(gateway, "/api/v1/connections/\(id)", ["-X", "PATCH", "--data-binary", bad]).status == 400, "\(bad)")
        }
        #expect(try await api(gateway, "/api/v1/connections/gc_nope", ["-X", "PATCH", "--data-binary", #"{"visibility":"everyone"}"#]).status == 404)
        #expect(try await connect(gateway, extra: #","visibility":"team""#).status == 400)
        await server.stop()
        await gateway.shutdown()
    }

    @Test func importsAreReadOnlyExceptCategoryAndLeadCenterAppointmentsAreEditable() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        simulator.upsertEvent(calendar: "primary", timed("Client call", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("g1")]))
        let (server, gateway) = try await start(simulator)
        let id = try #require(try await connect(gateway).json["id"] as? String)
        let path = "/api/v1/connections/\(id)/calendars/primary/appointments/g1"

        for body in [#"{"title":"Renamed"}"#, #"{"category":"Client","start":"2026-12-01T12:00:00Z"}"#, #"{"status":"cancelled"}"#] {
            let refused = try await api(gateway, path, ["-X", "PATCH", "--data-binary", body])
            #expect(refused.status == 409, "\(body)")
            #expect(refused.body.contains("edit it in Google Calendar"), "\(refused.body)")
        }
        let deleted = try await api(gateway, path, ["-X", "DELETE"])
        #expect(deleted.status == 409)
        #expect(deleted.body.contains("Google Calendar"))
        let categorised = try await api(gateway, path, ["-X", "PATCH", "--data-binary", #"{"category":"Client meeting"}"#])
        #expect(categorised.status == 200)
        #expect(categorised.json["category"] as? String == "Client meeting")
        #expect(categorised.json["read_only"] as? Bool == true)
        for bad in [#"{"category":5}"#, #"{"category":""}"#, "{}", "[1]"] {
            #expect(try await api(gateway, path, ["-X", "PATCH", "--data-binary", bad]).status == 400, "\(bad)")
        }
        #expect(try await api(gateway, "/api/v1/connections/\(id)/calendars/primary/appointments/nope", ["-X", "PATCH", "--data-binary", #"{"category":"x"}"#]).status == 404)
        #expect(try await api(gateway, "/api/v1/connections/\(id)/calendars/nope/appointments/g1", ["-X", "DELETE"]).status == 404)

        // The category survives a full re-sync (Google invalidated the sync token).
        simulator.invalidateSyncTokens()
        _ = try await gateway.google?.sync(calendarKey: "\(id)/primary")
        var items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(items.first { $0["id"] as? String == "g1" }?["category"] as? String == "Client meeting")
        #expect(items.first { $0["id"] as? String == "g1" }?["source"] as? String == "google")

        // A LeadCenter-created appointment: fully editable, deletable, says it was not pushed anywhere.
        let made = try await api(
            gateway, "/api/v1/appointments",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","title":"Prospect lunch","start":"2026-12-02T12:00:00Z","end":"2026-12-02T13:00:00Z","time_zone":"Europe/Berlin","category":"Prospect"}"#,
            ])
        #expect(made.status == 201, "\(made.body)")
        let lc = try #require(made.json["id"] as? String)
        #expect(made.json["source"] as? String == "leadcenter")
        #expect(made.json["read_only"] as? Bool == false)
        #expect(made.json["push_status"] as? String == "no_target", "no target chosen: nothing pushed")
        let edited = try await api(gateway, "/api/v1/appointments/\(lc)", ["-X", "PATCH", "--data-binary", #"{"title":"Prospect lunch (moved)","start":"2026-12-02T13:00:00Z","end":"2026-12-02T14:00:00Z"}"#])
        #expect(edited.status == 200)
        #expect(edited.json["title"] as? String == "Prospect lunch (moved)")
        items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(Set(items.compactMap { $0["source"] as? String }) == ["google", "leadcenter"])
        for bad in [
            #"{"user_id":"u1","start":"2026-12-02T12:00:00Z","end":"2026-12-02T13:00:00Z"}"#,
            #"{"user_id":"u1","title":"x","start":"2026-12-02T12:00:00Z","end":"2026-12-02T11:00:00Z"}"#,
            #"{"user_id":"u1","title":"x","start":"2026-12-02T12:00:00Z","end":"2026-12-02T13:00:00Z","start_date":"2026-12-02","end_date":"2026-12-03"}"#,
            #"{"user_id":"u1","title":"x","start":"2026-12-02T12:00:00Z","end":"2026-12-02T13:00:00Z","time_zone":"Mars/Base"}"#,
            #"{"user_id":"u1","title":"x","start_date":"2026-02-30","end_date":"2026-03-01"}"#,
            #"{"user_id":"u1","title":"x","start":"2026-12-02T12:00:00Z","end":"2026-12-02T13:00:00Z","recurrence":["BYDAY=MO"]}"#,
            #"{"user_id":"u1","title":"x","start":"tomorrow","end":"2026-12-02T13:00:00Z"}"#,
            #"{"user_id":"u1","title":"x","start":"2026-12-02T12:00:00Z","end":"2026-12-02T13:00:00Z","color":"red"}"#,
        ] {
            #expect(try await api(gateway, "/api/v1/appointments", ["-X", "POST", "--data-binary", bad]).status == 400, "\(bad)")
        }
        #expect(try await api(gateway, "/api/v1/appointments/g1", ["-X", "PATCH", "--data-binary", #"{"title":"x"}"#]).status == 409)
        #expect(try await api(gateway, "/api/v1/appointments/\(lc)", ["-X", "DELETE"]).status == 204)
        #expect(try await api(gateway, "/api/v1/appointments/\(lc)", ["-X", "DELETE"]).status == 404)
        await server.stop()
        await gateway.shutdown()
    }

    @Test func disconnectRemovesImportsReconnectResyncsAndTheCapHolds() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        simulator.upsertEvent(calendar: "primary", timed("Kickoff", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("k1")]))
        let (server, gateway) = try await start(simulator, cap: 2)
        let first = try #require(try await connect(gateway).json["id"] as? String)
        #expect(try await connect(gateway).status == 201, "a second account for the same user")
        let capped = try await connect(gateway)
        #expect(capped.status == 409)
        #expect(capped.body.contains("most this plan allows (2)"))
        #expect(try await connect(gateway, user: "u2").status == 201, "the cap is per user")

        let lc = try await api(
            gateway, "/api/v1/appointments",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","title":"Mine","start":"2026-12-03T12:00:00Z","end":"2026-12-03T13:00:00Z"}"#,
            ])
        #expect(lc.status == 201)
        // The channel of the connection being disconnected (the other connections watch the same calendar).
        let channel = try #require(try await gateway.store.liveGoogleChannels(calendarKey: "\(first)/primary").first)
        let disconnected = try await api(gateway, "/api/v1/connections/\(first)", ["-X", "DELETE"])
        #expect(disconnected.status == 200)
        #expect(disconnected.json["state"] as? String == "disconnected")
        #expect(simulator.channels.first { $0.id == channel.id }?.stopped == true, "the channel was stopped at Google")
        #expect(try await gateway.store.appointments(calendarKey: "\(first)/primary").isEmpty)
        let remaining = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(remaining.contains { $0["source"] as? String == "leadcenter" }, "LeadCenter-created appointments stay")
        #expect(try await api(gateway, "/api/v1/connections/\(first)/calendars", ["-X", "PUT", "--data-binary", #"{"selected":["primary"]}"#]).status == 409)
        #expect(try await api(gateway, "/api/v1/connections/\(first)", ["-X", "DELETE"]).status == 200, "disconnecting twice is harmless")
        #expect(try await connect(gateway).status == 201, "a disconnected connection no longer counts against the cap")

        // Reconnect: fresh credentials, full re-sync, a new channel.
        #expect(try await api(gateway, "/api/v1/connections/\(first)/reconnect", ["-X", "POST", "--data-binary", #"{"client_id":"c","client_secret":"s","refresh_token":"1//revoked"}"#]).status == 422)
        #expect(try await api(gateway, "/api/v1/connections/\(first)/reconnect", ["-X", "POST", "--data-binary", #"{"client_id":"c"}"#]).status == 400)
        let reconnected = try await api(
            gateway, "/api/v1/connections/\(first)/reconnect",
            [
                "-X", "POST", "--data-binary",
                #"{"client_id":"c","client_secret":"s","refresh_token":"1//ok"}"#,
            ])
        #expect(reconnected.status == 200, "\(reconnected.body)")
        #expect(reconnected.json["state"] as? String == "active")
        #expect(try await gateway.store.appointments(calendarKey: "\(first)/primary").map(\.externalID) == ["k1"])
        #expect(try await gateway.store.liveGoogleChannels(calendarKey: "\(first)/primary").count == 1)
        await server.stop()
        await gateway.shutdown()
    }

    @Test func availabilityIsMergedBusyTimeWithoutDetails() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        simulator.upsertEvent(calendar: "primary", timed("Secret A", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("a")]))
        simulator.upsertEvent(calendar: "primary", timed("Secret B", "2026-12-01T10:30:00Z", "2026-12-01T12:00:00Z", extra: ["id": .string("b")]))
        simulator.upsertEvent(calendar: "primary", timed("Secret C", "2026-12-01T15:00:00Z", "2026-12-01T16:00:00Z", extra: ["id": .string("c")]))
        simulator.upsertEvent(calendar: "primary", timed("Outside", "2026-12-05T15:00:00Z", "2026-12-05T16:00:00Z", extra: ["id": .string("d")]))
        let (server, gateway) = try await start(simulator)
        #expect(try await connect(gateway).status == 201)
        #expect(
            try await api(
                gateway, "/api/v1/appointments",
                [
                    "-X", "POST", "--data-binary",
                    #"{"user_id":"u1","title":"Secret LeadCenter","start":"2026-12-01T11:45:00Z","end":"2026-12-01T13:00:00Z"}"#,
                ]
            ).status == 201)
        let answer = try await api(gateway, "/api/v1/availability?user=u1&from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z")
        #expect(answer.status == 200)
        let busy = answer.json["busy"] as? [[String: String]] ?? []
        #expect(
            busy == [
                ["start": "2026-12-01T10:00:00Z", "end": "2026-12-01T13:00:00Z"],
                ["start": "2026-12-01T15:00:00Z", "end": "2026-12-01T16:00:00Z"],
            ])
        #expect(!answer.body.contains("Secret"), "no titles or other details")
        for bad in [
            "user=u1", "from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z", "user=u1&from=x&to=2026-12-02T00:00:00Z",
            "user=u1&from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "user=u1&from=2026-01-01T00:00:00Z&to=2028-01-01T00:00:00Z",
        ] {
            #expect(try await api(gateway, "/api/v1/availability?\(bad)").status == 400, "\(bad)")
        }
        await server.stop()
        await gateway.shutdown()
    }
}

/// Recurring series read over a range: occurrences, a moved instance at its new time, a cancelled one absent, and the
/// same in availability.
@Suite("Recurring series over a range", .serialized)
struct RecurringSeriesTests {
    @Test func occurrencesWithAMovedAndACancelledInstance() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        // Weekly on Tuesdays 09:00 Berlin, 5 times from 2026-12-01; the 8th moved to 11:00, the 15th cancelled.
        simulator.upsertEvent(
            calendar: "primary",
            [
                "id": .string("wk"), "summary": .string("Weekly pipeline"),
                "start": .object(["dateTime": .string("2026-12-01T09:00:00+01:00"), "timeZone": .string("Europe/Berlin")]),
                "end": .object(["dateTime": .string("2026-12-01T09:30:00+01:00"), "timeZone": .string("Europe/Berlin")]),
                "recurrence": .array([.string("RRULE:FREQ=WEEKLY;COUNT=5")]),
            ])
        simulator.upsertEvent(
            calendar: "primary",
            [
                "id": .string("wk_20261208T080000Z"), "summary": .string("Weekly pipeline (moved)"), "recurringEventId": .string("wk"),
                "originalStartTime": .object(["dateTime": .string("2026-12-08T09:00:00+01:00"), "timeZone": .string("Europe/Berlin")]),
                "start": .object(["dateTime": .string("2026-12-08T11:00:00+01:00"), "timeZone": .string("Europe/Berlin")]),
                "end": .object(["dateTime": .string("2026-12-08T11:30:00+01:00"), "timeZone": .string("Europe/Berlin")]),
            ])
        simulator.upsertEvent(
            calendar: "primary",
            [
                "id": .string("wk_20261215T080000Z"), "status": .string("cancelled"), "recurringEventId": .string("wk"),
                "originalStartTime": .object(["dateTime": .string("2026-12-15T09:00:00+01:00"), "timeZone": .string("Europe/Berlin")]),
            ])
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let gateway = try await GatewayHarness(google: { store, sealer, config in
            GoogleConnectionSyncer(
                client: GoogleCalendarClient(http: try CurlHTTPClient(), endpoints: GoogleEndpoints(tokenURL: server.baseURL + "/token", apiBaseURL: server.baseURL + "/calendar/v3")),
                store: store, sealer: sealer, clock: SystemGatewayClock(), webhookAddress: "https://localhost:\(config.listen.port)/webhooks/google"
            )
        })
        func get(_ path: String) async throws -> [String: Any] {
            let response = try await curlRequest(
                "https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate,
                arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)"])
            return (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
        }
        let connect = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/api/v1/connections", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-H", "Authorization: Bearer \(gateway.apiToken)", "-X", "POST", "--data-binary",
                #"{"user_id":"u1","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//ok"}"#,
            ])
        #expect(connect.status == 201)

        let items = try await get("/api/v1/appointments?user=u1&from=2026-12-01T00:00:00Z&to=2027-01-01T00:00:00Z")["appointments"] as? [[String: Any]] ?? []
        let starts = items.compactMap { $0["start"] as? String }.sorted()
        #expect(
            starts == ["2026-12-01T08:00:00Z", "2026-12-08T10:00:00Z", "2026-12-22T08:00:00Z", "2026-12-29T08:00:00Z"],
            "4 of 5: the moved one at its new time, the cancelled one gone")
        #expect(items.first { $0["start"] as? String == "2026-12-08T10:00:00Z" }?["title"] as? String == "Weekly pipeline (moved)")
        #expect(items.filter { $0["occurrence"] as? Bool == true }.allSatisfy { $0["series_id"] as? String == "wk" })
        // A narrower range returns only what falls in it.
        let narrow = try await get("/api/v1/appointments?user=u1&from=2026-12-20T00:00:00Z&to=2026-12-24T00:00:00Z")["appointments"] as? [[String: Any]] ?? []
        #expect(narrow.compactMap { $0["start"] as? String } == ["2026-12-22T08:00:00Z"])
        // Without a range the series comes as its master.
        let plain = try await get("/api/v1/appointments?user=u1")["appointments"] as? [[String: Any]] ?? []
        #expect(plain.contains { $0["id"] as? String == "wk" && ($0["recurrence"] as? [String])?.isEmpty == false })

        let availability = try await get("/api/v1/availability?user=u1&from=2026-12-01T00:00:00Z&to=2027-01-01T00:00:00Z")
        let busy = (availability["busy"] as? [[String: String]] ?? []).compactMap { $0["start"] }
        #expect(busy == ["2026-12-01T08:00:00Z", "2026-12-08T10:00:00Z", "2026-12-22T08:00:00Z", "2026-12-29T08:00:00Z"])
        await server.stop()
        await gateway.shutdown()
    }
}

/// The same meeting in a Google and an Outlook calendar (different time zones) is shown once.
@Suite("Duplicate detection", .serialized)
struct DuplicateDetectionTests {
    @Test func theSameMeetingFromTwoSourcesAppearsOnce() async throws {
        let google = GoogleSimulator(refreshTokens: ["1//ok"])
        let graph = GraphSimulator(refreshTokens: ["0.AAAA-ok"])
        // 10:00 Berlin = 09:00Z = 01:00 Pacific (winter).
        google.upsertEvent(
            calendar: "primary",
            [
                "id": .string("g-meet"), "summary": .string("Quarterly Review"),
                "start": .object(["dateTime": .string("2026-12-10T10:00:00+01:00"), "timeZone": .string("Europe/Berlin")]),
                "end": .object(["dateTime": .string("2026-12-10T11:00:00+01:00"), "timeZone": .string("Europe/Berlin")]),
                "attendees": .array([.object(["email": .string("Ann@Example.com")]), .object(["email": .string("bob@example.com")])]),
            ])
        graph.upsertEvent(
            calendar: GraphSimulator.defaultCalendarID,
            [
                "id": .string("m-meet"), "subject": .string("quarterly  review"),
                "start": .object(["dateTime": .string("2026-12-10T01:00:00.0000000"), "timeZone": .string("Pacific Standard Time")]),
                "end": .object(["dateTime": .string("2026-12-10T02:00:00.0000000"), "timeZone": .string("Pacific Standard Time")]),
                "attendees": .array([.object(["emailAddress": .object(["address": .string("ann@example.com")]), "type": .string("required")])]),
            ])
        // Same time and title, nobody in common: a different meeting, shown twice.
        google.upsertEvent(
            calendar: "primary",
            [
                "id": .string("g-other"), "summary": .string("Standup"),
                "start": .object(["dateTime": .string("2026-12-11T09:00:00Z")]), "end": .object(["dateTime": .string("2026-12-11T09:15:00Z")]),
                "attendees": .array([.object(["email": .string("team-a@example.com")])]),
            ])
        graph.upsertEvent(
            calendar: GraphSimulator.defaultCalendarID,
            [
                "id": .string("m-other"), "subject": .string("Standup"),
                "start": .object(["dateTime": .string("2026-12-11T09:00:00.0000000"), "timeZone": .string("UTC")]),
                "end": .object(["dateTime": .string("2026-12-11T09:15:00.0000000"), "timeZone": .string("UTC")]),
                "attendees": .array([.object(["emailAddress": .object(["address": .string("team-b@example.com")])])]),
            ])
        let googleServer = try await SimulatorServer(router: google.makeRouter())
        let graphServer = try await SimulatorServer(router: graph.makeRouter())
        let port = try SilentListener().port
        let gateway = try await GatewayHarness(
            configure: { $0.listen.port = port },
            google: { store, sealer, _ in
                GoogleConnectionSyncer(
                    client: GoogleCalendarClient(http: try CurlHTTPClient(), endpoints: GoogleEndpoints(tokenURL: googleServer.baseURL + "/token", apiBaseURL: googleServer.baseURL + "/calendar/v3")),
                    store: store, sealer: sealer, clock: SystemGatewayClock(), webhookAddress: "https://localhost:\(port)/webhooks/google"
                )
            },
            microsoft: { store, sealer, _ in
                GraphConnectionSyncer(
                    client: GraphClient(http: try CurlHTTPClient(), endpoints: GraphEndpoints(tokenURL: graphServer.baseURL + "/common/oauth2/v2.0/token", apiBaseURL: graphServer.baseURL + "/v1.0")),
                    store: store, sealer: sealer, clock: SystemGatewayClock(), publicURL: "https://localhost:\(port)"
                )
            })
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = gateway.certificates.caCertificate
        let push = try CurlHTTPClient(configuration: pushConfiguration)
        graph.setPushClient(push)
        func call(_ path: String, _ arguments: [String] = []) async throws -> (status: Int, json: [String: Any]) {
            let response = try await curlRequest(
                "https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate,
                arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)"] + arguments)
            return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:])
        }
        #expect(
            try await call(
                "/api/v1/connections",
                [
                    "-X", "POST", "--data-binary",
                    #"{"user_id":"u1","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//ok"}"#,
                ]
            ).status == 201)
        #expect(
            try await call(
                "/api/v1/connections",
                [
                    "-X", "POST", "--data-binary",
                    #"{"user_id":"u1","provider":"microsoft","client_id":"c","client_secret":"s","refresh_token":"0.AAAA-ok"}"#,
                ]
            ).status == 201)
        let items = try await call("/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        let reviews = items.filter { ($0["title"] as? String)?.lowercased().contains("quarterly") == true }
        #expect(reviews.count == 1, "shown once")
        #expect((reviews.first?["also_in"] as? [[String: Any]])?.first?["source"] as? String == "microsoft")
        #expect(items.filter { $0["title"] as? String == "Standup" }.count == 2, "different attendees: different meetings")
        // Microsoft imports are read-only except their category too.
        let outlook = try #require(items.first { $0["id"] as? String == "m-other" })
        let base = "/api/v1/connections/\(outlook["connection_id"] as? String ?? "")/calendars/\(GraphSimulator.defaultCalendarID)/appointments/m-other"
        #expect(try await call(base, ["-X", "PATCH", "--data-binary", #"{"title":"Renamed"}"#]).status == 409)
        #expect(try await call(base, ["-X", "DELETE"]).status == 409)
        #expect(try await call(base, ["-X", "PATCH", "--data-binary", #"{"category":"Team"}"#]).json["category"] as? String == "Team")
        // calgate never copied anything between the providers.
        #expect(google.liveEvents(calendar: "primary").count == 2)
        #expect(graph.liveEvents(calendar: GraphSimulator.defaultCalendarID).count == 2)
        graph.setPushClient(nil)
        await googleServer.stop()
        await graphServer.stop()
        await gateway.shutdown()
        await push.shutdown()
    }
}
