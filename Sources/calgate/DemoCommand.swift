import ArgumentParser
import CurlHTTP
import Foundation
import GatewayCore
import GoogleCalendar
import MicrosoftGraph
import Redtail
import Logging
import OpenSSLTLS
import ProviderSimulators
import ServiceLifecycle

/// `calgate demo`: the Google and Microsoft Graph simulators and the gateway wired together on loopback, with a demo
/// user whose calendars keep changing, so the whole pipeline can be watched without provider accounts.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway against the bundled Google and Microsoft simulators with a demo user whose calendars keep changing."
    )

    @OptionGroup var options: ServeOptions

    @Option(name: .customLong("change-every"), help: "Seconds between demo calendar changes.")
    var changeEvery: Double = 5

    func run() async throws {
        var config = try options.loadConfiguration()
        let logger = LoggingSetup.bootstrap(level: config.logLevel, format: config.logFormat)
        guard config.listen.port != 0 else { throw CLIError("--listen: the demo needs a fixed port (the simulator pushes to it)") }
        guard changeEvery >= 0.2 else { throw CLIError("--change-every must be at least 0.2 seconds") }
        // The simulator trusts only the gateway's dev CA, as Google trusts only real certificates.
        let devCA = (config.tls.devCertificateDirectory as NSString).appendingPathComponent("dev-ca.pem")
        if config.tls.certificatePath == nil, !FileManager.default.fileExists(atPath: devCA) {
            do { _ = try DevCertificateAuthority.generate(directory: config.tls.devCertificateDirectory) } catch {
                throw CLIError("cannot create the dev certificate: \(error)")
            }
        }
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = config.tls.certificatePath == nil ? devCA : nil
        let pushClient = try CurlHTTPClient(configuration: pushConfiguration)
        let simulator = GoogleSimulator(refreshTokens: [DemoDriver.refreshToken], pushClient: pushClient)
        simulator.addCalendar(id: "team", name: "Team calendar")
        DemoDriver.seed(simulator)
        let server: SimulatorServer
        do { server = try await SimulatorServer(router: simulator.makeRouter()) } catch { throw CLIError("cannot start the Google simulator: \(error)") }
        logger.notice("Google simulator listening", metadata: ["simulator.url": "\(server.baseURL)"])
        // Sign-in against the simulator's consent page too, so a person can add another account from a browser.
        config.google.pointAtGoogleSimulator(server.baseURL, client: ("demo-client", "demo-secret"))
        // The Microsoft account has two calendars; the default one is selected when it connects.
        let graph = GraphSimulator(refreshTokens: [DemoDriver.microsoftRefreshToken], pushClient: pushClient)
        graph.addCalendar(id: DemoDriver.teamCalendar, name: "Team (not synced until chosen)")
        DemoDriver.seed(graph)
        let graphServer: SimulatorServer
        do { graphServer = try await SimulatorServer(router: graph.makeRouter()) } catch {
            await server.stop()
            throw CLIError("cannot start the Microsoft Graph simulator: \(error)")
        }
        logger.notice("Microsoft Graph simulator listening", metadata: ["simulator.url": "\(graphServer.baseURL)"])
        config.microsoft.pointAtGraphSimulator(graphServer.baseURL, client: ("demo-ms-client", "demo-ms-secret"))
        // The demo user is a Financial Advisor with a Redtail account, polled (Redtail has no webhooks).
        let redtail = RedtailSimulator(users: [DemoDriver.redtailUser])
        DemoDriver.seed(redtail)
        let redtailServer: SimulatorServer
        do { redtailServer = try await SimulatorServer(router: redtail.makeRouter()) } catch {
            await server.stop()
            await graphServer.stop()
            throw CLIError("cannot start the Redtail simulator: \(error)")
        }
        logger.notice("Redtail simulator listening", metadata: ["simulator.url": "\(redtailServer.baseURL)"])
        config.redtail.baseURL = redtailServer.baseURL + "/api/public/v1"
        config.redtail.pollIntervalSeconds = min(config.redtail.pollIntervalSeconds, 30)
        if config.publicURL == nil { config.publicURL = "https://localhost:\(config.listen.port)" }
        do {
            try await GatewayRunner(logger: logger).serve(config) { runtime in
                [
                    DemoDriver(
                        runtime: runtime, simulator: simulator, simulatorURL: server.baseURL, graph: graph, graphURL: graphServer.baseURL,
                        redtail: redtail, redtailURL: redtailServer.baseURL, interval: changeEvery, http: pushClient, logger: logger
                    )
                ]
            }
        } catch let error as CLIError {
            logger.critical("calgate demo cannot start", metadata: ["error": "\(error.description)"])
            await server.stop()
            await graphServer.stop()
            await redtailServer.stop()
            throw error
        }
        graph.setPushClient(nil)
        await server.stop()
        await graphServer.stop()
        await redtailServer.stop()
        await pushClient.shutdown()
    }
}

/// Connects the demo user, prints where to look, then keeps changing the demo calendar.
struct DemoDriver: Service {
    static let refreshToken = "1//demo-refresh-token"
    static let microsoftRefreshToken = "0.AAAA-demo-refresh-token"
    static let teamCalendar = "AAMkDemoTeam="
    let runtime: GatewayRuntime
    let simulator: GoogleSimulator
    let simulatorURL: String
    let graph: GraphSimulator
    let graphURL: String
    let redtail: RedtailSimulator
    let redtailURL: String
    static let redtailUser = RedtailSimulator.User(
        apiKey: "demo-redtail-api-key", username: "advisor1", password: "demo-password", userKey: "B7B4BCDD-DEMO-449C-B1D4-C1AAFE49703D",
        id: 41_974, locked: false
    )
    let interval: Double
    /// Trusts the gateway's dev CA: the driver asks its own API for the sign-in URLs it prints.
    let http: CurlHTTPClient
    let logger: Logger

    static func seed(_ simulator: GoogleSimulator) {
        simulator.upsertEvent(
            calendar: "primary",
            event(
                "demo-weekly", "Weekly pipeline review", dayOffset: 1, hour: 9,
                extra: [
                    "recurrence": .array([.string("RRULE:FREQ=WEEKLY;COUNT=8")])
                ]))
        simulator.upsertEvent(calendar: "primary", event("demo-client", "Client call: Smith household", dayOffset: 2, hour: 14))
        simulator.upsertEvent(
            calendar: "primary",
            [
                "id": .string("demo-offsite"), "summary": .string("Team offsite"),
                "start": .object(["date": .string(day(5))]), "end": .object(["date": .string(day(7))]),
            ])
    }

    static func seed(_ graph: GraphSimulator) {
        graph.upsertEvent(calendar: GraphSimulator.defaultCalendarID, graphEvent("ms-review", "Quarterly review (Outlook)", dayOffset: 4, hour: 13))
        graph.upsertEvent(
            calendar: GraphSimulator.defaultCalendarID,
            graphEvent(
                "ms-standup", "Advisor standup (Outlook)", dayOffset: 1, hour: 8,
                extra: [
                    "recurrence": .object([
                        "pattern": .object(["type": .string("daily"), "interval": .integer(1)]),
                        "range": .object(["type": .string("numbered"), "startDate": .string(day(1)), "numberOfOccurrences": .integer(10)]),
                    ])
                ]))
        graph.upsertEvent(calendar: teamCalendar, graphEvent("ms-team", "Team lunch (Outlook, unselected calendar)", dayOffset: 2, hour: 12))
    }

    static func seed(_ redtail: RedtailSimulator) {
        redtail.upsertActivity(
            username: redtailUser.username,
            [
                "id": .integer(555_001), "subject": .string("Annual review: Smith household (Redtail)"),
                "start_date": .string(instant(dayOffset: 6, hour: 15)), "end_date": .string(instant(dayOffset: 6, hour: 16)),
            ])
    }

    func run() async throws {
        guard await runtime.ready.wait() else { return }
        let connection: Connection
        let microsoft: Connection
        let crm: Connection
        do {
            connection = try await runtime.google.connect(
                userID: "demo-user", clientID: "demo-client", clientSecret: "demo-secret", refreshToken: Self.refreshToken
            )
            microsoft = try await runtime.microsoft.connect(
                userID: "demo-user", clientID: "demo-ms-client", clientSecret: "demo-ms-secret", refreshToken: Self.microsoftRefreshToken
            )
            // The account's main Redtail integration first, then the demo user's Redtail calendar on it.
            _ = try await runtime.redtail.registerIntegration(
                accountID: "demo-account", accountType: RedtailConnector.financialAdvisor, apiKey: Self.redtailUser.apiKey,
                username: Self.redtailUser.username, password: Self.redtailUser.password
            )
            crm = try await runtime.redtail.connectCalendar(userID: "demo-user", accountID: "demo-account")
        } catch {
            logger.error("demo: connecting the demo user failed", metadata: ["error": "\(error)"])
            return
        }
        let base = runtime.configuration.effectivePublicURL
        let googleSignIn = await signInURL(provider: "google", base: base)
        let microsoftSignIn = await signInURL(provider: "microsoft", base: base)
        let ca =
            runtime.configuration.tls.certificatePath == nil
            ? (runtime.configuration.tls.devCertificateDirectory as NSString).appendingPathComponent("dev-ca.pem") : "<your CA>"
        let instructions = """

            calgate demo is running. The demo user's Google calendar and Outlook calendar (both simulated) change every
            \(interval) s; each change is pushed to \(base)/webhooks/google or /webhooks/microsoft, stored, and synced.

              console:       \(base)/admin   (open it in a browser; log in with the admin token \(runtime.adminToken))
              status:        calgate status --listen \(runtime.configuration.listen) --data-dir \(runtime.configuration.dataDirectory) [--json]
              health:        curl --cacert \(ca) -H "Authorization: Bearer \(runtime.adminToken)" \(base)/admin/health
              connection:    curl --cacert \(ca) -H "Authorization: Bearer \(runtime.apiToken)" \(base)/api/v1/connections/\(connection.id)
              Outlook:       curl --cacert \(ca) -H "Authorization: Bearer \(runtime.apiToken)" \(base)/api/v1/connections/\(microsoft.id)/calendars
              choose both:   curl --cacert \(ca) -H "Authorization: Bearer \(runtime.apiToken)" -X PUT \\
                               -d '{"selected":["\(GraphSimulator.defaultCalendarID)","\(Self.teamCalendar)"]}' \(base)/api/v1/connections/\(microsoft.id)/calendars
              appointments:  curl --cacert \(ca) -H "Authorization: Bearer \(runtime.apiToken)" "\(base)/api/v1/appointments?user=demo-user"
              metrics:       curl --cacert \(ca) -H "Authorization: Bearer \(runtime.adminToken)" \(base)/admin/metrics

            The Google simulator is at \(simulatorURL):
              channels (id, token, resource id, for pushes by hand):  curl \(simulatorURL)/control/channels
              change the calendar:   curl -X POST \(simulatorURL)/control/calendars/primary/events -H 'Content-Type: application/json' \\
                                       -d '{"summary":"Call","start":{"dateTime":"2026-12-01T10:00:00Z"},"end":{"dateTime":"2026-12-01T11:00:00Z"}}'
              inject a fault:        curl -X POST \(simulatorURL)/control/faults/rate_limit   (\(GoogleSimulator.Fault.allCases.map(\.rawValue).joined(separator: ", ")))

            The Redtail simulator is at \(redtailURL) (polled every \(runtime.configuration.redtail.pollIntervalSeconds) s, connection \(crm.id)):
              add an activity:       curl -X POST \(redtailURL)/control/users/advisor1/activities -H 'Content-Type: application/json' \\
                                       -d '{"subject":"Portfolio check-in","start_date":"2026-12-01T10:00:00Z","end_date":"2026-12-01T11:00:00Z"}'
              lock the account:      curl -X POST \(redtailURL)/control/users/advisor1/lock

            The Microsoft Graph simulator is at \(graphURL):
              subscriptions:         curl \(graphURL)/control/subscriptions
              lifecycle event:       curl -X POST \(graphURL)/control/subscriptions/<id>/lifecycle/subscriptionRemoved
              inject a fault:        curl -X POST \(graphURL)/control/faults/sync_state_not_found   (\(GraphSimulator.Fault.allCases.map(\.rawValue).joined(separator: ", ")))

            Add another account by signing in (open in a browser, allow on the simulator's consent page; each link works
            once, for 10 minutes):
              Google sign-in:        \(googleSignIn)
              Microsoft sign-in:     \(microsoftSignIn)
              a new link:            curl --cacert \(ca) -H "Authorization: Bearer \(runtime.apiToken)" -X POST \\
                                       -d '{"user_id":"demo-user-2","provider":"google"}' \(base)/api/v1/connections/authorizations
              its result:            curl --cacert \(ca) -H "Authorization: Bearer \(runtime.apiToken)" \(base)/api/v1/connections/authorizations/<id>

            More LeadCenter calls (API token as above; the simulators accept these credentials for further connections):
              connect Google:        {"user_id":"u2","provider":"google","client_id":"c","client_secret":"s","refresh_token":"\(Self.refreshToken)"}
              connect Microsoft:     {"user_id":"u2","provider":"microsoft","client_id":"c","client_secret":"s","refresh_token":"\(Self.microsoftRefreshToken)"}
                                     curl --cacert \(ca) -H "Authorization: Bearer \(runtime.apiToken)" -X POST -d '<one of the above>' \(base)/api/v1/connections
              Add to calendar:       curl --cacert \(ca) -H "Authorization: Bearer \(runtime.apiToken)" -X PUT \\
                                       -d '{"connection_id":"\(connection.id)","calendar_id":"primary"}' \(base)/api/v1/users/demo-user/push-target
              availability:          curl --cacert \(ca) -H "Authorization: Bearer \(runtime.apiToken)" "\(base)/api/v1/availability?user=demo-user&from=<RFC 3339>&to=<RFC 3339>"
              OpenAPI document:      curl --cacert \(ca) \(base)/api/v1/openapi.json

            Press Ctrl-C to stop.

            """
        // Unbuffered: the instructions must show even when stdout is a pipe.
        FileHandle.standardOutput.write(Data(instructions.utf8))
        logger.notice("demo user connected", metadata: ["connection.id": "\(connection.id)", "microsoft.connection.id": "\(microsoft.id)"])
        var step = 0
        while !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(interval))
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            step += 1
            change(step)
        }
    }

    /// A sign-in URL for `demo-user-2`, minted through the gateway's own API (what LeadCenter would do).
    func signInURL(provider: String, base: String) async -> String {
        do {
            let response = try await http.execute(
                CurlHTTPRequest(
                    method: "POST", url: base + "/api/v1/connections/authorizations",
                    headers: [CurlHTTPHeader("Authorization", "Bearer \(runtime.apiToken)"), CurlHTTPHeader("Content-Type", "application/json")],
                    body: Array(#"{"user_id":"demo-user-2","provider":"\#(provider)"}"#.utf8), timeout: .seconds(10)
                ))
            if case .object(let object) = try JSONValue.parse(Data(response.body)), case .string(let url)? = object["authorization_url"] {
                return url
            }
            return "(not available: the gateway answered \(response.status))"
        } catch {
            return "(not available: \(error))"
        }
    }

    /// One change per step, cycling through the kinds a calendar sees.
    func change(_ step: Int) {
        switch step % 4 {
        case 1:
            simulator.upsertEvent(calendar: "primary", Self.event("demo-new-\(step)", "Prospect meeting #\(step)", dayOffset: 3, hour: 10 + step % 6))
        case 2:
            simulator.upsertEvent(calendar: "primary", Self.event("demo-client", "Client call: Smith household (moved)", dayOffset: 2, hour: 15 + step % 3))
        case 3:
            simulator.upsertEvent(
                calendar: "primary",
                [
                    "id": .string("demo-weekly_exception"), "summary": .string("Weekly pipeline review (this week only: room \(step))"),
                    "recurringEventId": .string("demo-weekly"),
                    "originalStartTime": .object(["dateTime": .string(Self.instant(dayOffset: 8, hour: 9))]),
                    "start": .object(["dateTime": .string(Self.instant(dayOffset: 8, hour: 10)), "timeZone": .string("UTC")]),
                    "end": .object(["dateTime": .string(Self.instant(dayOffset: 8, hour: 11)), "timeZone": .string("UTC")]),
                ])
        default:
            simulator.deleteEvent(calendar: "primary", id: "demo-new-\(step - 3)")
        }
        // The Outlook calendar changes too: a new event, a move, a deletion, in turn.
        let outlook = GraphSimulator.defaultCalendarID
        switch step % 3 {
        case 1: graph.upsertEvent(calendar: outlook, Self.graphEvent("ms-new-\(step)", "Outlook meeting #\(step)", dayOffset: 3, hour: 9 + step % 8))
        case 2: graph.upsertEvent(calendar: outlook, Self.graphEvent("ms-review", "Quarterly review (Outlook, moved)", dayOffset: 4, hour: 14 + step % 3))
        default: graph.deleteEvent(calendar: outlook, id: "ms-new-\(step - 2)")
        }
        // Redtail: an activity edited now and then (picked up by the next poll).
        if step % 4 == 0 {
            redtail.upsertActivity(
                username: Self.redtailUser.username,
                [
                    "id": .integer(555_001), "subject": .string("Annual review: Smith household (Redtail, v\(step / 4))"),
                    "start_date": .string(Self.instant(dayOffset: 6, hour: 15)), "end_date": .string(Self.instant(dayOffset: 6, hour: 16)),
                ])
        }
        logger.info("demo: changed the demo calendar", metadata: ["demo.step": "\(step)"])
    }

    static func event(_ id: String, _ summary: String, dayOffset: Int, hour: Int, extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "id": .string(id), "summary": .string(summary),
            "start": .object(["dateTime": .string(instant(dayOffset: dayOffset, hour: hour)), "timeZone": .string("UTC")]),
            "end": .object(["dateTime": .string(instant(dayOffset: dayOffset, hour: hour + 1)), "timeZone": .string("UTC")]),
        ]
        for (key, value) in extra { fields[key] = value }
        return fields
    }

    /// A Graph-shaped event (wall clock in UTC, as `Prefer: outlook.timezone="UTC"` returns them).
    static func graphEvent(_ id: String, _ subject: String, dayOffset: Int, hour: Int, extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
        func wall(_ hour: Int) -> String { String(instant(dayOffset: dayOffset, hour: hour).dropLast()) + ".0000000" }
        var fields: [String: JSONValue] = [
            "id": .string(id), "subject": .string(subject),
            "start": .object(["dateTime": .string(wall(hour)), "timeZone": .string("UTC")]),
            "end": .object(["dateTime": .string(wall(hour + 1)), "timeZone": .string("UTC")]),
        ]
        for (key, value) in extra { fields[key] = value }
        return fields
    }

    static func instant(dayOffset: Int, hour: Int) -> String {
        let midnight = Calendar(identifier: .gregorian).startOfDay(for: Date()).addingTimeInterval(Double(dayOffset) * 86_400)
        return ISO8601DateFormatter().string(from: midnight.addingTimeInterval(Double(hour) * 3600))
    }

    static func day(_ offset: Int) -> String {
        String(instant(dayOffset: offset, hour: 0).prefix(10))
    }
}
