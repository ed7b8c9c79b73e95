import CurlHTTP
import Foundation
import ProviderSimulators
import TestSupport
import Testing

/// The real `calgate serve` against all three simulators: every secret it holds is sealed in the SQLite file (and
/// its WAL), none reaches a log line or an error body, and `calgate secrets rotate` re-seals them all.
@Suite("calgate secrets at rest", .serialized)
struct SecretsAtRestTests {
    static let googleRefresh = "1//google-refresh-SECRET-4f1c"
    static let graphRefresh = "0.AAAA-graph-refresh-SECRET-77ab"
    static let clientSecret = "client-secret-SECRET-91de"
    static let redtailUser = RedtailSimulator.User(
        apiKey: "partner-api-key-SECRET-0c2e", username: "advisor1", password: "pa55word-SECRET-d41d", userKey: "USERKEY-SECRET-8e3f", id: 41_974
    )

    struct Rig {
        let dir: String
        let config: String
        let ca: String
        let google: GoogleSimulator
        let graph: GraphSimulator
        let redtail: RedtailSimulator
        let servers: [SimulatorServer]
        let port: Int

        func stop() async { for server in servers { await server.stop() } }

        func serve() async throws -> CalgateProcess {
            let gateway = try CalgateProcess(["serve", "--config", config, "--log-format", "json", "--log-level", "debug"])
            _ = try await gateway.waitUntilReady()
            return gateway
        }

        var apiToken: String {
            (try? String(contentsOfFile: dir + "/data/api-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? ""
        }
        var adminToken: String {
            (try? String(contentsOfFile: dir + "/data/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? ""
        }

        func api(_ path: String, _ arguments: [String] = [], token: String? = nil) async throws -> (status: Int, body: String, headers: String) {
            try await curlRequest(
                "https://localhost:\(port)\(path)", caFile: ca, arguments: ["-H", "Authorization: Bearer \(token ?? apiToken)"] + arguments
            )
        }

        /// Every secret the gateway has been given or has made, as the providers saw them.
        var secrets: [String] {
            [Self.googleRefresh, Self.graphRefresh, Self.clientSecret, redtailUser.apiKey, redtailUser.password, redtailUser.userKey, apiToken, adminToken]
                + google.issuedAccessTokens + graph.issuedAccessTokens
                + google.channels.map(\.token) + graph.subscriptions.compactMap(\.clientState)
        }

        var redtailUser: RedtailSimulator.User { SecretsAtRestTests.redtailUser }
        static var googleRefresh: String { SecretsAtRestTests.googleRefresh }
        static var graphRefresh: String { SecretsAtRestTests.graphRefresh }
        static var clientSecret: String { SecretsAtRestTests.clientSecret }
    }

    func makeRig() async throws -> Rig {
        let dir = temporaryDirectory()
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/certs"]).status == 0)
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = dir + "/certs/dev-ca.pem"
        let google = GoogleSimulator(refreshTokens: [Self.googleRefresh], pushClient: try CurlHTTPClient(configuration: pushConfiguration))
        let graph = GraphSimulator(refreshTokens: [Self.graphRefresh], pushClient: try CurlHTTPClient(configuration: pushConfiguration))
        let redtail = RedtailSimulator(users: [Self.redtailUser])
        let googleServer = try await SimulatorServer(router: google.makeRouter())
        let graphServer = try await SimulatorServer(router: graph.makeRouter())
        let redtailServer = try await SimulatorServer(router: redtail.makeRouter())
        let port = try SilentListener().port
        let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path
        let config = dir + "/config.json"
        _ = FileManager.default.createFile(
            atPath: config,
            contents: Data(
                """
                {"listen": "127.0.0.1:\(port)", "data_dir": "\(dir)/data", "routes_dir": "\(routes)",
                 "tls": {"dev_cert_dir": "\(dir)/certs"}, "public_url": "https://localhost:\(port)",
                 "google": {"token_url": "\(googleServer.baseURL)/token", "api_base_url": "\(googleServer.baseURL)/calendar/v3"},
                 "microsoft": {"token_url": "\(graphServer.baseURL)/common/oauth2/v2.0/token", "api_base_url": "\(graphServer.baseURL)/v1.0"},
                 "redtail": {"base_url": "\(redtailServer.baseURL)/api/public/v1"}}
                """.utf8))
        return Rig(
            dir: dir, config: config, ca: dir + "/certs/dev-ca.pem", google: google, graph: graph, redtail: redtail,
            servers: [googleServer, graphServer, redtailServer], port: port
        )
    }

    /// Connects one account per provider and waits until the Google channel and Graph subscription exist.
    func connectEverything(_ rig: Rig) async throws {
        let google = try await rig.api(
            "/api/v1/connections",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","provider":"google","client_id":"c","client_secret":"\#(Self.clientSecret)","refresh_token":"\#(Self.googleRefresh)"}"#,
            ])
        #expect(google.status == 201, "\(google.body)")
        let graph = try await rig.api(
            "/api/v1/connections",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","provider":"microsoft","client_id":"c","client_secret":"\#(Self.clientSecret)","refresh_token":"\#(Self.graphRefresh)"}"#,
            ])
        #expect(graph.status == 201, "\(graph.body)")
        let integration = try await rig.api(
            "/api/v1/accounts/acct-1/redtail",
            [
                "-X", "PUT", "--data-binary",
                #"{"account_type":"financial_advisor","api_key":"\#(Self.redtailUser.apiKey)","username":"advisor1","password":"\#(Self.redtailUser.password)"}"#,
            ])
        #expect(integration.status == 200 || integration.status == 201, "\(integration.body)")
        let redtail = try await rig.api("/api/v1/connections", ["-X", "POST", "--data-binary", #"{"user_id":"u1","provider":"redtail","account_id":"acct-1"}"#])
        #expect(redtail.status == 201, "\(redtail.body)")
        let deadline = ContinuousClock.now + .seconds(20)
        while rig.google.channels.isEmpty || rig.graph.subscriptions.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(!rig.google.channels.isEmpty, "no Google channel was created")
        #expect(!rig.graph.subscriptions.isEmpty, "no Graph subscription was created")
        #expect(!rig.google.issuedAccessTokens.isEmpty && !rig.graph.issuedAccessTokens.isEmpty)
    }

    /// Failures that carry secrets in their requests: every answer must be a clean 4xx that echoes none of them.
    func driveFailures(_ rig: Rig) async throws -> [String] {
        var bodies: [String] = []
        for path in ["/api/v1/connections", "/admin/metrics"] {
            let wrong = try await rig.api(path, token: "wrong-\(rig.apiToken)-\(rig.adminToken)")
            #expect(wrong.status == 401)
            bodies.append(wrong.body + wrong.headers)
        }
        // A provider refusal: an unknown refresh token (the simulator answers invalid_grant with an error body).
        let refused = try await rig.api(
            "/api/v1/connections",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u2","provider":"google","client_id":"c","client_secret":"\#(Self.clientSecret)","refresh_token":"1//unknown-SECRET-refresh"}"#,
            ])
        #expect((400..<500).contains(refused.status), "\(refused.body)")
        bodies.append(refused.body)
        // Wrong Redtail password.
        let badPassword = try await rig.api(
            "/api/v1/accounts/acct-2/redtail",
            [
                "-X", "PUT", "--data-binary",
                #"{"account_type":"financial_advisor","api_key":"\#(Self.redtailUser.apiKey)","username":"advisor1","password":"wrong-SECRET-password"}"#,
            ])
        #expect((400..<500).contains(badPassword.status), "\(badPassword.body)")
        bodies.append(badPassword.body)
        // A forged Google push naming a real channel with the wrong token.
        if let channel = rig.google.channels.first {
            let forged = try await curlRequest(
                "https://localhost:\(rig.port)/webhooks/google", caFile: rig.ca,
                arguments: [
                    "-X", "POST", "--data-binary", "", "-H", "X-Goog-Channel-ID: \(channel.id)", "-H", "X-Goog-Channel-Token: forged-SECRET-token",
                    "-H", "X-Goog-Resource-ID: \(channel.resourceID)", "-H", "X-Goog-Resource-State: exists", "-H", "X-Goog-Message-Number: 99",
                ])
            #expect(forged.status == 403)
            bodies.append(forged.body)
        }
        // A Graph notification with the wrong clientState.
        if let subscription = rig.graph.subscriptions.first {
            let forged = try await curlRequest(
                "https://localhost:\(rig.port)/webhooks/microsoft", caFile: rig.ca,
                arguments: [
                    "-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                    #"{"value":[{"subscriptionId":"\#(subscription.id)","clientState":"forged-SECRET-state","changeType":"updated","resource":"Users/x/Events/y","tenantId":"t"}]}"#,
                ])
            #expect(forged.status == 403)
            bodies.append(forged.body)
        }
        // Body bytes must not come back either.
        let malformed = try await rig.api("/api/v1/connections", ["-X", "POST", "--data-binary", #"{"password":"body-SECRET-value""#])
        #expect(malformed.status == 400)
        bodies.append(malformed.body)
        return bodies
    }

    static func bytes(_ path: String) -> [UInt8] {
        FileManager.default.contents(atPath: path).map { Array($0) } ?? []
    }

    static func leaked(_ secrets: [String], in haystacks: [(String, [UInt8])]) -> [String] {
        var found: [String] = []
        for secret in Set(secrets) where !secret.isEmpty {
            let needle = Array(secret.utf8)
            for (name, bytes) in haystacks where bytes.contains(needle) {
                found.append("\(name) holds \(secret.prefix(12))…")
            }
        }
        return found
    }

    @Test func noSecretIsStoredLoggedOrEchoedAndRotationReSealsThemAll() async throws {
        let rig = try await makeRig()
        defer { try? FileManager.default.removeItem(atPath: rig.dir) }
        var gateway = try await rig.serve()
        try await connectEverything(rig)
        let bodies = try await driveFailures(rig)
        let database = rig.dir + "/data/calgate.sqlite"

        // While running: the main file and the WAL (where fresh writes sit before a checkpoint).
        let extraSecrets = ["1//unknown-SECRET-refresh", "wrong-SECRET-password", "forged-SECRET-token", "forged-SECRET-state", "body-SECRET-value"]
        var leaks = Self.leaked(
            rig.secrets + extraSecrets,
            in: [
                ("calgate.sqlite", Self.bytes(database)), ("calgate.sqlite-wal", Self.bytes(database + "-wal")),
            ])
        #expect(leaks.isEmpty, "\(leaks)")
        #expect(FileManager.default.fileExists(atPath: database + "-wal"), "the WAL should exist while serving")
        // The sealed values are there (the test would prove nothing if the rows were missing).
        let dump = try await runTool("/usr/bin/sqlite3", [database, "SELECT count(*) FROM connections; SELECT count(*) FROM push_subscriptions WHERE provider = 'google'; SELECT count(*) FROM push_subscriptions WHERE provider = 'microsoft'; SELECT count(*) FROM redtail_integrations;"])
        #expect(dump.output.split(separator: "\n").map { Int($0) ?? 0 }.allSatisfy { $0 >= 1 }, "\(dump.output)")

        // No error body and no log line carries a secret (the log is JSON at debug level).
        let secretsToHide = rig.secrets.filter { $0 != rig.apiToken && $0 != rig.adminToken } + extraSecrets
        leaks = Self.leaked(secretsToHide + [rig.apiToken, rig.adminToken], in: bodies.enumerated().map { ("error body \($0.offset)", Array($0.element.utf8)) })
        leaks += Self.leaked(secretsToHide + [rig.apiToken, rig.adminToken], in: [("log", Array(gateway.output.utf8))])
        #expect(leaks.isEmpty, "\(leaks)")
        #expect(gateway.output.contains("verification rejected"), "the failures should have been logged")

        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit() == 0)
        leaks = Self.leaked(rig.secrets, in: [("calgate.sqlite after shutdown", Self.bytes(database)), ("wal after shutdown", Self.bytes(database + "-wal"))])
        #expect(leaks.isEmpty, "\(leaks)")

        // Rotation: a new key, the old one kept 0600, everything re-sealed.
        let keyFile = rig.dir + "/data/secret.key"
        let oldKey = try String(contentsOfFile: keyFile, encoding: .utf8)
        let rotated = try await CalgateProcess.run(["secrets", "rotate", "--config", rig.config])
        #expect(rotated.status == 0, "\(rotated.output)")
        #expect(rotated.output.contains("re-sealed 10 secrets"), "\(rotated.output)")
        let newKey = try String(contentsOfFile: keyFile, encoding: .utf8)
        #expect(newKey != oldKey)
        let backups = try FileManager.default.contentsOfDirectory(atPath: rig.dir + "/data").filter { $0.hasPrefix("secret.key.") && $0.hasSuffix(".bak") }
        #expect(backups.count == 1)
        for name in backups {
            let path = rig.dir + "/data/" + name
            #expect(try String(contentsOfFile: path, encoding: .utf8) == oldKey)
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        }
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int == 0o600)

        // Interrupted after the commit, before the rename: the new key is still in `.next`, the old one in place.
        try FileManager.default.moveItem(atPath: keyFile, toPath: keyFile + ".next")
        try FileManager.default.moveItem(atPath: rig.dir + "/data/" + backups[0], toPath: keyFile)
        // The gateway still opens every secret in that state: a Google change is pushed, verified and synced.
        gateway = try await rig.serve()
        #expect(gateway.output.contains("did not finish"), "the unfinished rotation should be reported")
        try await expectAPushArrives(rig, title: "after interrupted rotation")
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit() == 0)
        // Running the command again finishes it, under the key it had already chosen.
        let resumed = try await CalgateProcess.run(["secrets", "rotate", "--config", rig.config])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains("finishing an interrupted rotation"), "\(resumed.output)")
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8) == newKey)
        #expect(!FileManager.default.fileExists(atPath: keyFile + ".next"))

        // Restarted on the rotated key alone: everything still opens.
        gateway = try await rig.serve()
        try await expectAPushArrives(rig, title: "after rotation")
        let connections = try await rig.api("/api/v1/connections?user=u1")
        #expect(connections.status == 200)
        leaks = Self.leaked(rig.secrets, in: [("log after rotation", Array(gateway.output.utf8))])
        #expect(leaks.isEmpty, "\(leaks)")
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit() == 0)
        await rig.stop()
    }

    /// Changes an event in the Google simulator (which pushes to the channel) and waits for it in the API.
    func expectAPushArrives(_ rig: Rig, title: String) async throws {
        _ = rig.google.upsertEvent(
            calendar: "primary",
            [
                "summary": .string(title),
                "start": .object(["dateTime": .string("2026-12-01T10:00:00Z")]), "end": .object(["dateTime": .string("2026-12-01T11:00:00Z")]),
            ])
        var body = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while !body.contains(title), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            body = try await rig.api("/api/v1/appointments?user=u1").body
        }
        #expect(body.contains(title), "the pushed change never arrived: \(body)")
    }

    @Test func theKeyMayComeFromTheEnvironmentAndAMissingConfiguredKeyFileStopsStartUp() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path
        let base = ["serve", "--listen", "127.0.0.1:0", "--data-dir", dir + "/data", "--routes", routes, "--log-format", "json"]
        let config = dir + "/config.json"
        _ = FileManager.default.createFile(atPath: config, contents: Data(#"{"tls": {"dev_cert_dir": "\#(dir)/certs"}, "secret_key_file": "\#(dir)/missing.key"}"#.utf8))
        let missing = try await CalgateProcess.run(base + ["--config", config])
        #expect(missing.status != 0)
        #expect(missing.output.contains("missing.key"), "\(missing.output)")

        let bad = try await CalgateProcess.run(base + ["--config", config], environment: ["CALGATE_SECRET_KEY": "not-hex"])
        #expect(bad.status != 0)
        #expect(bad.output.contains("CALGATE_SECRET_KEY must be 64 hex characters"), "\(bad.output)")
        #expect(!bad.output.contains("not-hex"), "the key's value must never be echoed")

        let key = String(repeating: "ab", count: 32)
        let gateway = try CalgateProcess(base + ["--config", config], environment: ["CALGATE_SECRET_KEY": key])
        _ = try await gateway.waitUntilReady()
        #expect(!FileManager.default.fileExists(atPath: dir + "/data/secret.key"), "no key file when the key comes from the environment")
        #expect(!gateway.output.contains(key))
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit() == 0)
    }
}
