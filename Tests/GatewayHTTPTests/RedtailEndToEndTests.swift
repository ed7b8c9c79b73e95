import CurlHTTP
import Foundation
import GatewayCore
import Logging
import ProviderSimulators
@testable import Redtail
import Synchronization
import SyncEngine
import TestSupport
import Testing

/// Redtail through the API and the poller against the Redtail simulator: connect, poll edits and deletions,
/// faults, locked accounts, and what is (not) stored.
@Suite("Redtail end to end", .serialized)
struct RedtailEndToEndTests {
    static let user = RedtailSimulator.User(apiKey: "partner-key-1", username: "advisor1", password: "pa55word-not-stored", userKey: "USERKEY-0001", id: 41_974)

    struct Rig {
        let simulator: RedtailSimulator
        let server: SimulatorServer
        let gateway: GatewayHarness
        let connector: RedtailConnector
        func stop() async {
            await server.stop()
            await gateway.shutdown()
        }
    }

    func start(_ simulator: RedtailSimulator, clock: any GatewayClock = SystemGatewayClock(), scheme: RedtailAuthScheme = .userKeyAuth) async throws -> Rig {
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let connector = Mutex<RedtailConnector?>(nil)
        let gateway = try await GatewayHarness(redtail: { store, sealer, _ in
            let made = RedtailConnector(
                client: RedtailClient(http: try CurlHTTPClient(), endpoints: RedtailEndpoints(baseURL: server.baseURL + "/api/public/v1", authScheme: scheme)),
                store: store, sealer: sealer, clock: clock, pageSize: 2
            )
            connector.withLock { $0 = made }
            return made
        })
        return Rig(simulator: simulator, server: server, gateway: gateway, connector: try #require(connector.withLock { $0 }))
    }

    func api(_ gateway: GatewayHarness, _ path: String, _ arguments: [String] = []) async throws -> (status: Int, json: [String: Any], body: String) {
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)"] + arguments
        )
        return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:], response.body)
    }

    /// Connects the account's main Redtail integration.
    func integrate(_ gateway: GatewayHarness, accountType: String = "financial_advisor", password: String = user.password) async throws -> (status: Int, json: [String: Any], body: String) {
        try await api(
            gateway, "/api/v1/accounts/acct-1/redtail",
            [
                "-X", "PUT", "--data-binary",
                #"{"account_type":"\#(accountType)","api_key":"\#(Self.user.apiKey)","username":"advisor1","password":"\#(password)"}"#,
            ])
    }

    /// Integration (when needed) plus the user's Redtail calendar connection.
    func connect(_ gateway: GatewayHarness) async throws -> (status: Int, json: [String: Any], body: String) {
        if try await api(gateway, "/api/v1/accounts/acct-1/redtail").status == 404 { _ = try await integrate(gateway) }
        return try await api(gateway, "/api/v1/connections", ["-X", "POST", "--data-binary", #"{"user_id":"u1","provider":"redtail","account_id":"acct-1"}"#])
    }

    func titles(_ gateway: GatewayHarness) async throws -> [String: String] {
        let items = try await api(gateway, "/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        return Dictionary(items.compactMap { item in (item["id"] as? String).map { ($0, item["title"] as? String ?? "") } }, uniquingKeysWith: { a, _ in a })
    }

    static func activity(_ subject: String, day: Int, id: Int64? = nil) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "subject": .string(subject),
            "start_date": .string(ISO8601DateFormatter().string(from: Date().addingTimeInterval(Double(day) * 86_400))),
            "end_date": .string(ISO8601DateFormatter().string(from: Date().addingTimeInterval(Double(day) * 86_400 + 3600))),
        ]
        if let id { fields["id"] = .integer(id) }
        return fields
    }

    @Test func connectPollsEditsAndDeletionsAndKeepsNoPassword() async throws {
        let simulator = RedtailSimulator(users: [Self.user])
        for n in 1...5 { simulator.upsertActivity(username: "advisor1", Self.activity("Review \(n)", day: n, id: Int64(1000 + n))) }
        let rig = try await start(simulator)
        let gateway = rig.gateway

        // A Redtail calendar needs the account's main Redtail integration first: 409 until then.
        let early = try await api(gateway, "/api/v1/connections", ["-X", "POST", "--data-binary", #"{"user_id":"u1","provider":"redtail","account_id":"acct-1"}"#])
        #expect(early.status == 409)
        #expect(early.body.contains("main Redtail integration"))
        // Only Financial Advisor accounts have Redtail (409); wrong credentials and locked accounts are refused (422).
        let assistant = try await integrate(gateway, accountType: "assistant")
        #expect(assistant.status == 409)
        #expect(assistant.body.contains("Financial Advisor"))
        #expect(try await integrate(gateway, password: "wrong").status == 422)
        simulator.setLocked(true, username: "advisor1")
        let locked = try await integrate(gateway)
        #expect(locked.status == 422)
        #expect(locked.body.contains("locked"))
        simulator.setLocked(false, username: "advisor1")
        #expect(try await api(gateway, "/api/v1/accounts/acct-1/redtail").status == 404)
        let integrated = try await integrate(gateway)
        #expect(integrated.status == 200)
        #expect(integrated.json["connected"] as? Bool == true)
        #expect(!integrated.body.contains(Self.user.userKey) && !integrated.body.contains(Self.user.password), "no secrets in answers")
        for bad in [
            #"{"user_id":"u1","provider":"redtail"}"#,
            #"{"user_id":"u1","provider":"redtail","account_id":"acct-1","password":"p"}"#,
            #"{"user_id":"u1","provider":"redtail","account_id":"acct-1","refresh_token":"x"}"#,
        ] {
            #expect(try await api(gateway, "/api/v1/connections", ["-X", "POST", "--data-binary", bad]).status == 400, "\(bad)")
        }
        #expect(try await api(gateway, "/api/v1/accounts/acct-1/redtail", ["-X", "PUT", "--data-binary", #"{"account_type":"financial_advisor"}"#]).status == 400)

        let created = try await connect(gateway)
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(created.json["id"] as? String)
        #expect(created.json["account_type"] as? String == "financial_advisor")
        #expect((created.json["calendars"] as? [[String: Any]])?.first?["id"] as? String == "activities")
        #expect(try await titles(gateway) == simulator.liveActivities(username: "advisor1"), "paged (2 per page) first listing")

        // The password is never stored: not in the credentials, not anywhere in the database file.
        let credentials = try #require(try await gateway.store.credentials(connectionID: id))
        let userKey = try gateway.sealer.open(credentials.sealedRefreshToken, context: "connection:\(id):refresh_token")
        #expect(String(decoding: userKey, as: UTF8.self) == Self.user.userKey)
        await gateway.store.close()
        let database = try Data(contentsOf: URL(fileURLWithPath: gateway.directory + "/calgate.sqlite"))
        let wal = (try? Data(contentsOf: URL(fileURLWithPath: gateway.directory + "/calgate.sqlite-wal"))) ?? Data()
        #expect(database.range(of: Data(Self.user.password.utf8)) == nil && wal.range(of: Data(Self.user.password.utf8)) == nil)
        await rig.server.stop()
        await gateway.shutdown()
    }

    @Test func editsAndDeletionsAppearWithinOnePollAndFaultsAreSurvived() async throws {
        let clock = ManualGatewayClock()
        let simulator = RedtailSimulator(users: [Self.user], clock: { clock.now() })
        for n in 1...3 { simulator.upsertActivity(username: "advisor1", Self.activity("Call \(n)", day: n, id: Int64(2000 + n))) }
        let rig = try await start(simulator, clock: clock)
        let gateway = rig.gateway
        let created = try await connect(gateway)
        let id = try #require(created.json["id"] as? String)
        let key = "\(id)/activities"
        var logger = Logger(label: "test.redtail")
        logger.logLevel = .warning
        let poller = ReconciliationSweep(
            store: gateway.store, scheduler: try #require(gateway.scheduler), providers: [.redtail], clock: clock, interval: 300,
            missedByPush: false, logger: logger
        )
        await poller.runOnce()

        // An idle poll changes nothing: the overlap window returns the same (id, updated_at) again.
        clock.advance(by: 10)
        #expect(try await rig.connector.sync(calendarKey: key).changes == 0)

        // Edit, delete and add; one poll interval later the store has them.
        clock.advance(by: 5)
        simulator.upsertActivity(username: "advisor1", Self.activity("Call 1 (moved)", day: 4, id: 2001))
        simulator.deleteActivity(id: 2002)
        simulator.upsertActivity(username: "advisor1", Self.activity("New prospect", day: 5, id: 2004))
        clock.advance(by: 301)
        await poller.runOnce()
        let deadline = ContinuousClock.now + .seconds(10)
        while try await titles(gateway) != simulator.liveActivities(username: "advisor1"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await titles(gateway) == simulator.liveActivities(username: "advisor1"))
        #expect(try await titles(gateway)["2002"] == nil)

        // 429, 503 and Redtail's "Gateway Time-out" 401 are retried, not mistaken for revoked credentials.
        simulator.inject(.rateLimit)
        simulator.inject(.serverError)
        simulator.inject(.gatewayTimeout)
        clock.advance(by: 5)
        simulator.upsertActivity(username: "advisor1", Self.activity("After faults", day: 6, id: 2005))
        for _ in 0..<3 {
            await #expect { _ = try await rig.connector.sync(calendarKey: key) } throws: {
                if case .retry? = ($0 as? SyncFailure)?.kind { return true }
                return false
            }
        }
        #expect(try await rig.connector.sync(calendarKey: key).changes == 1)
        #expect(try await api(gateway, "/api/v1/connections/\(id)").json["state"] as? String != "needs_reconnect")

        // A locked account: needs_reconnect with the reason; calendar changes are then refused with 409.
        simulator.setLocked(true, username: "advisor1")
        await #expect { _ = try await rig.connector.sync(calendarKey: key) } throws: { ($0 as? SyncFailure)?.kind == .needsReconnect }
        let shown = try await api(gateway, "/api/v1/connections/\(id)")
        #expect(shown.json["state"] as? String == "needs_reconnect")
        #expect((shown.json["state_reason"] as? String)?.contains("locked") == true)
        #expect(try await api(gateway, "/api/v1/connections/\(id)/calendars", ["-X", "PUT", "--data-binary", #"{"selected":[]}"#]).status == 409)
        await rig.stop()
    }

    @Test func theOtherAuthSchemeAndMalformedAnswers() async throws {
        let simulator = RedtailSimulator(users: [Self.user])
        simulator.upsertActivity(username: "advisor1", Self.activity("Only", day: 1, id: 3001))
        let rig = try await start(simulator, scheme: .basicWithUserKeyHeader)
        #expect(try await connect(rig.gateway).status == 201)
        #expect(try await titles(rig.gateway) == ["3001": "Only"])
        // An activity without a start cannot become an appointment: the poll fails naming it, nothing is half-applied.
        let id = try #require(try await rig.gateway.store.connections(userID: "u1").first?.id)
        simulator.upsertActivity(username: "advisor1", ["id": .integer(3002), "subject": .string("No start"), "start_date": .string("someday")])
        await #expect { _ = try await rig.connector.sync(calendarKey: "\(id)/activities") } throws: {
            (($0 as? SyncFailure)?.description.contains("3002")) == true
        }
        #expect(try await titles(rig.gateway) == ["3001": "Only"])
        #expect(RedtailClient.classify(.init(status: 401, body: Array(#"{"message":"Account Locked"}"#.utf8)), what: "x").kind == .accountLocked)
        #expect(RedtailClient.classify(.init(status: 401, body: Array("Gateway Time-out".utf8)), what: "x").kind == .retry(retryAfter: nil))
        #expect(RedtailClient.classify(.init(status: 401, body: []), what: "x").kind == .unauthorized)
        #expect(RedtailClient.classify(.init(status: 429, headers: [.init("Retry-After", "9")], body: []), what: "x").kind == .retry(retryAfter: 9))
        await rig.stop()
    }
}
