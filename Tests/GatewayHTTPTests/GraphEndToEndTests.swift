import CurlHTTP
import Foundation
import GatewayCore
import MicrosoftGraph
import ProviderSimulators
import TestSupport
import Testing

/// A Microsoft account connected through the API against the Graph simulator: the simulator runs the validation
/// handshake against the gateway over real TLS, pushes notifications and lifecycle events, and serves delta rounds.
@Suite("Microsoft Graph end to end", .serialized)
struct GraphEndToEndTests {
    static let team = "AAMkCalendarTeam="

    struct Rig {
        let simulator: GraphSimulator
        let server: SimulatorServer
        let gateway: GatewayHarness
        let push: CurlHTTPClient

        func stop() async {
            simulator.setPushClient(nil)
            await server.stop()
            await gateway.shutdown()
            await push.shutdown()
        }
    }

    func start(_ simulator: GraphSimulator, syncWindow: TimeInterval = 0.05, pageSize: Int = 100) async throws -> Rig {
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let port = try SilentListener().port  // a free port (released at once): Graph must know the URL before we bind
        let gateway = try await GatewayHarness(
            configure: { $0.listen.port = port }, syncWindow: syncWindow,
            microsoft: { store, sealer, _ in
                GraphConnectionSyncer(
                    client: GraphClient(
                        http: try CurlHTTPClient(),
                        endpoints: GraphEndpoints(
                            tokenURL: server.baseURL + "/common/oauth2/v2.0/token", apiBaseURL: server.baseURL + "/v1.0"
                        )),
                    store: store, sealer: sealer, clock: SystemGatewayClock(), publicURL: "https://localhost:\(port)", pageSize: pageSize
                )
            })
        var configuration = CurlHTTPClient.Configuration()
        configuration.caBundlePath = gateway.certificates.caCertificate
        let push = try CurlHTTPClient(configuration: configuration)
        simulator.setPushClient(push)
        return Rig(simulator: simulator, server: server, gateway: gateway, push: push)
    }

    func api(_ gateway: GatewayHarness, _ path: String, _ arguments: [String] = []) async throws -> (status: Int, json: [String: Any], body: String) {
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate,
            arguments: ["--max-time", "40", "-H", "Authorization: Bearer \(gateway.apiToken)"] + arguments
        )
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
        return (response.status, json, response.body)
    }

    func connect(_ gateway: GatewayHarness, refresh: String = "0.AAAA-ok") async throws -> (status: Int, json: [String: Any], body: String) {
        try await api(
            gateway, "/api/v1/connections",
            [
                "-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                #"{"user_id":"u1","provider":"microsoft","client_id":"cid","client_secret":"s3cret","refresh_token":"\#(refresh)"}"#,
            ])
    }

    /// id → title of the user's appointments as the API lists them.
    func titles(_ gateway: GatewayHarness) async throws -> [String: String] {
        let items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        return Dictionary(items.compactMap { item in (item["id"] as? String).map { ($0, item["title"] as? String ?? "") } }, uniquingKeysWith: { a, _ in a })
    }

    func eventually(_ seconds: Double = 15, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    static func event(_ id: String, _ subject: String, _ start: String, _ end: String, zone: String = "UTC", extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "id": .string(id), "subject": .string(subject),
            "start": .object(["dateTime": .string(start), "timeZone": .string(zone)]),
            "end": .object(["dateTime": .string(end), "timeZone": .string(zone)]),
        ]
        for (key, value) in extra { fields[key] = value }
        return fields
    }

    @Test func connectPassesTheHandshakeAndNotificationsDriveDeltaSyncs() async throws {
        let simulator = GraphSimulator(refreshTokens: ["0.AAAA-ok"])
        simulator.addCalendar(id: Self.team, name: "Team")
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.event("E1", "Client review", "2026-12-03T14:00:00.0000000", "2026-12-03T15:00:00.0000000"))
        // Written in a Windows zone: 09:00 Pacific in July is 16:00Z.
        simulator.upsertEvent(
            calendar: GraphSimulator.defaultCalendarID,
            Self.event(
                "E2", "West coast call", "2026-07-01T09:00:00.0000000", "2026-07-01T09:30:00.0000000", zone: "Pacific Standard Time"
            ))
        simulator.upsertEvent(calendar: Self.team, Self.event("T1", "Team lunch", "2026-12-04T12:00:00.0000000", "2026-12-04T13:00:00.0000000"))
        let rig = try await start(simulator)
        let gateway = rig.gateway

        let created = try await connect(gateway)
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(created.json["id"] as? String)
        #expect(created.json["provider"] as? String == "microsoft")
        let calendars = created.json["calendars"] as? [[String: Any]] ?? []
        #expect(calendars.count == 2)
        #expect(calendars.first { $0["id"] as? String == GraphSimulator.defaultCalendarID }?["selected"] as? Bool == true)
        #expect(calendars.first { $0["id"] as? String == Self.team }?["selected"] as? Bool == false)

        // The simulator validated both URLs with tokens carrying spaces, '+', a literal "%2B" and ':'.
        #expect(simulator.validationTokens.count == 2)
        #expect(simulator.validationTokens.allSatisfy { $0.contains(" +plus %2Bliteral %3Acolon") })
        let subscription = try #require(simulator.subscriptions.first)
        #expect(subscription.calendar == GraphSimulator.defaultCalendarID)
        #expect(subscription.lifecycleURL?.hasSuffix("/webhooks/microsoft/lifecycle") == true)
        #expect((subscription.clientState?.count ?? 0) >= 32)

        var listed = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(Set(listed.compactMap { $0["id"] as? String }) == ["E1", "E2"], "the unselected calendar stays out")
        let west = try #require(listed.first { $0["id"] as? String == "E2" })
        #expect(west["start"] as? String == "2026-07-01T16:00:00Z")
        #expect(west["time_zone"] as? String == "America/Los_Angeles")
        #expect(west["source"] as? String == "microsoft")
        #expect(west["connection_id"] as? String == id)

        // New event: created + updated in one batch; edit: two updated; delete: deleted. Each ends in the store.
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.event("E3", "Prospect", "2026-12-05T10:00:00.0000000", "2026-12-05T11:00:00.0000000"))
        #expect(await eventually { (try? await titles(gateway))?["E3"] == "Prospect" })
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.event("E3", "Prospect (moved)", "2026-12-06T10:00:00.0000000", "2026-12-06T11:00:00.0000000"))
        #expect(await eventually { (try? await titles(gateway))?["E3"] == "Prospect (moved)" })
        simulator.deleteEvent(calendar: GraphSimulator.defaultCalendarID, id: "E1")
        #expect(await eventually { (try? await titles(gateway))?["E1"] == nil })
        // The unselected calendar's changes never enter the store.
        simulator.upsertEvent(calendar: Self.team, Self.event("T2", "Team offsite", "2026-12-07T09:00:00.0000000", "2026-12-07T17:00:00.0000000"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await gateway.store.appointments(calendarKey: "\(id)/\(Self.team)").isEmpty)
        #expect(await eventually { (try? await gateway.store.backlog().count) == 0 })

        // Forged clientState and unknown subscriptions: refused, stored nothing, fetched nothing.
        let deltaCalls = simulator.deltaCalls
        for (sub, state) in [(subscription.id, "forged-state"), ("00000000-0000-0000-0000-000000000000", subscription.clientState ?? "")] {
            let body = #"{"value":[{"subscriptionId":"\#(sub)","clientState":"\#(state)","changeType":"updated","resource":"Users/x/Events/E2","tenantId":"t","resourceData":{"id":"E2"}}]}"#
            let answer = try await curlRequest(
                "https://localhost:\(gateway.port)/webhooks/microsoft", caFile: gateway.certificates.caCertificate,
                arguments: ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body]
            )
            #expect(answer.status == 403)
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(simulator.deltaCalls == deltaCalls, "a refused notification caused a fetch")
        #expect(try await gateway.store.backlog().count == 0)

        // Entra rotated the refresh token and calgate stored the new one: with the original refused, a restarted
        // syncer (no cached access token) still syncs.
        #expect(simulator.rotations >= 1)
        simulator.setTokenMode(.invalidGrant, for: "0.AAAA-ok")
        let restarted = try #require(gateway.microsoft).restarted()
        _ = try await restarted.sync(calendarKey: "\(id)/\(GraphSimulator.defaultCalendarID)")

        // Choosing the Team calendar subscribes and syncs it; dropping the default one unsubscribes and clears it.
        let chosen = try await api(
            gateway, "/api/v1/connections/\(id)/calendars",
            [
                "-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", #"{"selected":["\#(Self.team)"]}"#,
            ])
        #expect(chosen.status == 200, "\(chosen.body)")
        listed = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(Set(listed.compactMap { $0["id"] as? String }) == ["T1", "T2"])
        #expect(simulator.subscriptions.map(\.calendar) == [Self.team])
        #expect(try await gateway.store.appointments(calendarKey: "\(id)/\(GraphSimulator.defaultCalendarID)").isEmpty)
        simulator.upsertEvent(calendar: Self.team, Self.event("T3", "Team standup", "2026-12-08T09:00:00.0000000", "2026-12-08T09:15:00.0000000"))
        #expect(await eventually { (try? await titles(gateway))?["T3"] == "Team standup" })

        // Bad choices are refused clearly and change nothing.
        for (body, status) in [
            (#"{"selected":["no-such-calendar"]}"#, 400), (#"{"selected":"AAMk"}"#, 400), (#"{"selected":["a","a"]}"#, 400),
            (#"{"chosen":[]}"#, 400), ("not json", 400),
        ] {
            let answer = try await api(
                gateway, "/api/v1/connections/\(id)/calendars",
                [
                    "-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", body,
                ])
            #expect(answer.status == status, "\(body) answered \(answer.status)")
        }
        #expect(try await api(gateway, "/api/v1/connections/mc_nope/calendars", ["-X", "PUT", "--data-binary", #"{"selected":[]}"#]).status == 404)
        #expect(simulator.subscriptions.map(\.calendar) == [Self.team])

        // A calendar added in Outlook shows up after a refresh, unselected.
        simulator.addCalendar(id: "AAMkCalendarNew=", name: "Birthdays")
        let refreshed = try await api(gateway, "/api/v1/connections/\(id)/calendars/refresh", ["-X", "POST"])
        #expect(refreshed.status == 200)
        let after = refreshed.json["calendars"] as? [[String: Any]] ?? []
        #expect(after.first { $0["id"] as? String == "AAMkCalendarNew=" }?["selected"] as? Bool == false)
        #expect(after.first { $0["id"] as? String == Self.team }?["selected"] as? Bool == true)
        await rig.stop()
    }

    @Test func everyLifecycleEventDrivesItsRecovery() async throws {
        let simulator = GraphSimulator(refreshTokens: ["0.AAAA-ok"])
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.event("E1", "One", "2026-12-03T14:00:00.0000000", "2026-12-03T15:00:00.0000000"))
        let rig = try await start(simulator)
        let gateway = rig.gateway
        #expect(try await connect(gateway).status == 201)
        let first = try #require(simulator.subscriptions.first)

        // reauthorizationRequired: notifications pause; a change made meanwhile arrives after calgate reauthorizes.
        #expect(simulator.sendLifecycle(subscriptionID: first.id, event: "reauthorizationRequired"))
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.event("E2", "During the pause", "2026-12-04T14:00:00.0000000", "2026-12-04T15:00:00.0000000"))
        #expect(await eventually { (try? await titles(gateway))?["E2"] == "During the pause" })
        #expect(await eventually { simulator.subscriptions.first?.needsReauthorization == false })
        #expect(simulator.subscriptions.map(\.id) == [first.id], "reauthorized, not replaced")

        // subscriptionRemoved: calgate creates a new subscription and delta-syncs the gap.
        #expect(simulator.sendLifecycle(subscriptionID: first.id, event: "subscriptionRemoved"))
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.event("E3", "While removed", "2026-12-05T14:00:00.0000000", "2026-12-05T15:00:00.0000000"))
        #expect(await eventually { (try? await titles(gateway))?["E3"] == "While removed" })
        #expect(await eventually { simulator.subscriptions.count == 1 && simulator.subscriptions.first?.id != first.id })
        #expect(try await gateway.store.graphSubscription(id: first.id)?.removedAt != nil)
        // The new subscription delivers.
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.event("E4", "Through the new one", "2026-12-06T14:00:00.0000000", "2026-12-06T15:00:00.0000000"))
        #expect(await eventually { (try? await titles(gateway))?["E4"] == "Through the new one" })

        // missed: a dropped notification's change arrives through the delta round the lifecycle event triggers.
        let second = try #require(simulator.subscriptions.first)
        simulator.inject(.dropNotification)
        simulator.upsertEvent(calendar: GraphSimulator.defaultCalendarID, Self.event("E5", "Missed", "2026-12-07T14:00:00.0000000", "2026-12-07T15:00:00.0000000"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await titles(gateway)["E5"] == nil, "the notification was dropped")
        #expect(simulator.sendLifecycle(subscriptionID: second.id, event: "missed"))
        #expect(await eventually { (try? await titles(gateway))?["E5"] == "Missed" })

        // The final store equals the simulator's calendar, with nothing left in the inbox.
        #expect(await eventually { (try? await gateway.store.backlog().count) == 0 })
        #expect(try await titles(gateway) == simulator.liveEvents(calendar: GraphSimulator.defaultCalendarID))
        await rig.stop()
    }

    @Test func deltaPagingRemovalsSeriesResyncAndThrottling() async throws {
        let simulator = GraphSimulator(refreshTokens: ["0.AAAA-ok"])
        let calendar = GraphSimulator.defaultCalendarID
        for n in 1...5 {
            simulator.upsertEvent(calendar: calendar, Self.event("S\(n)", "Single \(n)", "2026-12-0\(n)T10:00:00.0000000", "2026-12-0\(n)T11:00:00.0000000"))
        }
        simulator.upsertEvent(
            calendar: calendar,
            Self.event(
                "M1", "Weekly sync", "2026-12-01T14:00:00.0000000", "2026-12-01T14:30:00.0000000", zone: "W. Europe Standard Time",
                extra: [
                    "recurrence": .object([
                        "pattern": .object(["type": .string("weekly"), "interval": .integer(1), "daysOfWeek": .array([.string("tuesday")]), "firstDayOfWeek": .string("sunday")]),
                        "range": .object(["type": .string("numbered"), "startDate": .string("2026-12-01"), "numberOfOccurrences": .integer(8), "recurrenceTimeZone": .string("W. Europe Standard Time")]),
                    ])
                ]))
        simulator.upsertEvent(
            calendar: calendar,
            Self.event(
                "X1", "Weekly sync (moved)", "2026-12-09T14:00:00.0000000", "2026-12-09T14:30:00.0000000",
                extra: [
                    "type": .string("exception"), "seriesMasterId": .string("M1"), "originalStart": .string("2026-12-08T13:00:00Z"),
                ]))
        simulator.upsertEvent(
            calendar: calendar,
            Self.event(
                "X2", "Weekly sync", "2026-12-15T13:00:00.0000000", "2026-12-15T13:30:00.0000000",
                extra: [
                    "type": .string("exception"), "seriesMasterId": .string("M1"), "originalStart": .string("2026-12-15T13:00:00Z"), "isCancelled": .bool(true),
                ]))
        let rig = try await start(simulator, pageSize: 2)
        let gateway = rig.gateway
        let created = try await connect(gateway)
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(created.json["id"] as? String)
        let key = "\(id)/\(calendar)"
        #expect(simulator.deltaCalls >= 4, "8 items at 2 per page take 4 pages")

        let stored = Dictionary(try await gateway.store.appointments(calendarKey: key).map { ($0.externalID, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(Set(stored.keys) == ["S1", "S2", "S3", "S4", "S5", "M1", "X1", "X2"])
        #expect(stored["M1"]?.recurrence.first?.hasPrefix("RRULE:FREQ=WEEKLY") == true)
        #expect(stored["M1"]?.recurrence.first?.contains("BYDAY=TU") == true)
        #expect(stored["M1"]?.recurrence.first?.contains("COUNT=8") == true)
        if case .timed(let start, _, let zone)? = stored["M1"]?.time {
            #expect(zone == "Europe/Berlin")
            #expect(start == ISO8601DateFormatter().date(from: "2026-12-01T13:00:00Z"))
        } else {
            Issue.record("the series master is not a timed appointment")
        }
        #expect(stored["X1"]?.seriesID == "M1")
        #expect(stored["X1"]?.originalStart == "2026-12-08T13:00:00Z")
        #expect(stored["X2"]?.status == "cancelled", "a cancelled occurrence is kept as a cancelled instance")

        // @removed → deletion; deleting the master takes its exceptions along.
        simulator.deleteEvent(calendar: calendar, id: "S1")
        #expect(await eventually { (try? await titles(gateway))?["S1"] == nil })
        simulator.deleteEvent(calendar: calendar, id: "M1")
        #expect(await eventually { ((try? await gateway.store.appointments(calendarKey: key)) ?? []).allSatisfy { $0.seriesID != "M1" && $0.externalID != "M1" } })

        // syncStateNotFound, resyncRequired and forgotten tokens: full re-sync, store equals the calendar.
        for fault in [GraphSimulator.Fault.syncStateNotFound, .resyncRequired] {
            simulator.inject(fault)
            simulator.upsertEvent(calendar: calendar, Self.event("S2", "Single 2 after \(fault.rawValue)", "2026-12-02T10:00:00.0000000", "2026-12-02T11:00:00.0000000"))
            #expect(await eventually { (try? await titles(gateway))?["S2"] == "Single 2 after \(fault.rawValue)" })
        }
        simulator.invalidateDeltaTokens()
        simulator.upsertEvent(calendar: calendar, Self.event("S3", "Single 3 after invalidation", "2026-12-03T10:00:00.0000000", "2026-12-03T11:00:00.0000000"))
        #expect(await eventually { (try? await titles(gateway))?["S3"] == "Single 3 after invalidation" })

        // 429 with Retry-After and 503: backed off, then converged.
        simulator.inject(.rateLimit, count: 2)
        simulator.inject(.serverError)
        simulator.upsertEvent(calendar: calendar, Self.event("S4", "Single 4 after throttling", "2026-12-04T10:00:00.0000000", "2026-12-04T11:00:00.0000000"))
        #expect(await eventually(20) { (try? await titles(gateway))?["S4"] == "Single 4 after throttling" })
        #expect(await eventually { (try? await gateway.store.backlog().count) == 0 })
        #expect(try await titles(gateway) == simulator.liveEvents(calendar: calendar))
        await rig.stop()
    }

    @Test func burstsCoalesceAndTheMailboxLimitHolds() async throws {
        let simulator = GraphSimulator(refreshTokens: ["0.AAAA-ok"])
        for n in 0..<6 { simulator.addCalendar(id: "AAMkCal\(n)=", name: "Calendar \(n)") }
        let rig = try await start(simulator, syncWindow: 4)
        let gateway = rig.gateway
        let created = try await connect(gateway)
        let id = try #require(created.json["id"] as? String)
        let all = [GraphSimulator.defaultCalendarID] + (0..<6).map { "AAMkCal\($0)=" }
        let body = #"{"selected":[\#(all.map { "\"\($0)\"" }.joined(separator: ","))]}"#
        #expect(try await api(gateway, "/api/v1/connections/\(id)/calendars", ["-X", "PUT", "--data-binary", body]).status == 200)
        #expect(simulator.subscriptions.count == 7)

        // 300 notifications (created+updated pairs and repeated updates) for one calendar within one window.
        let subscription = try #require(simulator.subscriptions.first { $0.calendar == GraphSimulator.defaultCalendarID })
        let fetchesBefore = try #require(gateway.scheduler).fetchesStarted
        let items = (0..<300).map { n in
            #"{"subscriptionId":"\#(subscription.id)","clientState":"\#(subscription.clientState ?? "")","changeType":"\#(n % 3 == 0 ? "created" : "updated")","resource":"Users/x/Events/B\#(n / 3)","tenantId":"t","resourceData":{"id":"B\#(n / 3)","@odata.etag":"W/\"\#(n)\""}}"#
        }
        for chunk in stride(from: 0, to: items.count, by: 50) {
            let answer = try await curlRequest(
                "https://localhost:\(gateway.port)/webhooks/microsoft", caFile: gateway.certificates.caCertificate,
                arguments: ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", #"{"value":[\#(items[chunk..<chunk + 50].joined(separator: ","))]}"#]
            )
            #expect(answer.status == 202)
        }
        #expect(await eventually(20) { (try? await gateway.store.backlog().count) == 0 })
        let fetches = try #require(gateway.scheduler).fetchesStarted - fetchesBefore
        #expect(fetches >= 1 && fetches <= 2, "\(fetches) delta rounds for 300 notifications")

        // Seven calendars syncing at once, with slow answers holding requests open: never more than 4 in flight.
        simulator.inject(.slow, count: 8)
        let syncer = try #require(gateway.microsoft)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for calendar in all { group.addTask { _ = try await syncer.sync(calendarKey: "\(id)/\(calendar)") } }
            try await group.waitForAll()
        }
        #expect(simulator.concurrency.max <= GraphSimulator.mailboxConcurrency)
        #expect(simulator.concurrency.rejected == 0, "calgate exceeded the mailbox concurrency limit")
        await rig.stop()
    }

    @Test func refusedCredentialsMarkTheConnectionWithTheReason() async throws {
        let simulator = GraphSimulator(refreshTokens: ["0.AAAA-ok"])
        simulator.setTokenMode(.interactionRequired, for: "0.AAAA-mfa")
        let rig = try await start(simulator)
        let gateway = rig.gateway
        let refused = try await connect(gateway, refresh: "0.AAAA-mfa")
        #expect(refused.status == 422)
        #expect(refused.body.contains("interaction_required"))
        #expect(try await connect(gateway, refresh: "0.AAAA-unknown").status == 422)

        let created = try await connect(gateway)
        let id = try #require(created.json["id"] as? String)
        simulator.setTokenModeForAll(.interactionRequired)
        let cold = try #require(gateway.microsoft).restarted()
        await #expect { _ = try await cold.sync(calendarKey: "\(id)/\(GraphSimulator.defaultCalendarID)") } throws: {
            ($0 as? SyncFailure)?.kind == .needsReconnect
        }
        let one = try await api(gateway, "/api/v1/connections/\(id)")
        #expect(one.json["state"] as? String == "needs_reconnect")
        #expect((one.json["state_reason"] as? String)?.contains("interaction_required") == true)
        // A connection that needs reconnecting cannot change calendars.
        #expect(try await api(gateway, "/api/v1/connections/\(id)/calendars/refresh", ["-X", "POST"]).status == 409)
        await rig.stop()
    }
}
