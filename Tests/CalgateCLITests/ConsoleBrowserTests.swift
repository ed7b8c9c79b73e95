import Foundation
import TestSupport
import Testing

/// Where Debian's `chromium` is, if installed (`.ci/run` and `scripts/test` install it when missing).
let chromiumPath: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// `calgate demo` with the console opened in headless Chromium, the console's actions run against the real scheduler
/// and renewal service, and `calgate status` read in both forms.
@Suite("calgate console and status", .serialized)
struct ConsoleBrowserTests {
    struct Demo {
        let process: CalgateProcess
        let directory: String
        let port: Int
        var base: String { "https://127.0.0.1:\(port)" }
        var ca: String { directory + "/certs/dev-ca.pem" }
        func token(_ name: String) throws -> String {
            try String(contentsOfFile: directory + "/data/\(name)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func startDemo() async throws -> Demo {
        let dir = temporaryDirectory()
        let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path
        let config = dir + "/config.json"
        _ = FileManager.default.createFile(atPath: config, contents: Data(#"{"tls": {"dev_cert_dir": "\#(dir)/certs"}}"#.utf8))
        // The demo needs its port before it listens (it is the simulators' push address), so it is picked from a
        // listener that is then closed; another test may take it in between, and then the demo starts again.
        for attempt in 1...3 {
            let port = try SilentListener().port
            let demo = try CalgateProcess([
                "demo", "--listen", "127.0.0.1:\(port)", "--data-dir", dir + "/data", "--routes", routes, "--config", config,
                "--log-format", "json", "--change-every", "0.5",
            ])
            do {
                _ = try await demo.waitForLine(containing: "demo user connected")
                return Demo(process: demo, directory: dir, port: port)
            } catch  where attempt < 3 && demo.output.contains("Address already in use") {
                continue
            }
        }
        throw ProcessFailure("unreachable: the last attempt returns or throws")
    }

    /// A one-time login code's path, minted with the admin token (the token itself never goes into a URL).
    func loginPath(_ demo: Demo, next: String? = nil) async throws -> String {
        let minted = try await curlRequest(
            demo.base + "/admin/api/login-codes", caFile: demo.ca,
            arguments: [
                "-X", "POST", "-H", "Authorization: Bearer \(try demo.token("admin-token"))",
            ])
        #expect(minted.status == 201)
        let path = try #require((try JSONSerialization.jsonObject(with: Data(minted.body.utf8)) as? [String: Any])?["path"] as? String)
        return path + (next.map { "&next=\($0)" } ?? "")
    }

    func connectionID(_ demo: Demo, provider: String) async throws -> String {
        let list = try await curlRequest(
            demo.base + "/api/v1/connections?user=demo-user", caFile: demo.ca,
            arguments: [
                "-H", "Authorization: Bearer \(try demo.token("api-token"))",
            ])
        let items = (try JSONSerialization.jsonObject(with: Data(list.body.utf8)) as? [String: Any])?["connections"] as? [[String: Any]] ?? []
        return try #require(items.first { $0["provider"] as? String == provider }?["id"] as? String)
    }

    @Test(.enabled(if: chromiumPath != nil, "chromium is not installed and could not be: run scripts/install-deps chromium"))
    func headlessChromiumRendersTheConsoleAgainstTheDemo() async throws {
        let demo = try await startDemo()
        defer {
            demo.process.signal(SIGKILL)
            try? FileManager.default.removeItem(atPath: demo.directory)
        }
        // Let a few pushes and syncs land so the per-minute figures are not all zero.
        try await Task.sleep(for: .seconds(3))
        let screenshot = demo.directory + "/console.png"
        let profile = demo.directory + "/chromium-profile"
        let shot = try await ChildProcess.run(
            try #require(chromiumPath),
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--user-data-dir=\(profile)",
                "--window-size=1280,1800", "--screenshot=\(screenshot)", demo.base + (try await loginPath(demo)),
            ], timeout: .seconds(60))
        #expect(shot.status == 0, "\(shot.output)")
        let png = try #require(FileManager.default.contents(atPath: screenshot), "no screenshot written: \(shot.output)")
        #expect(png.count > 20_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "not a real PNG (\(png.count) bytes)")
        if let keep = ProcessInfo.processInfo.environment["CALGATE_CONSOLE_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: screenshot, toPath: keep)
        }

        // The DOM Chromium built (after the code login redirected to /admin with the session cookie).
        let dom = try await ChildProcess.run(
            try #require(chromiumPath),
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--user-data-dir=\(profile)-dom",
                "--dump-dom", demo.base + (try await loginPath(demo)),
            ], timeout: .seconds(60))
        #expect(dom.status == 0)
        let html = dom.output
        #expect(html.contains(#"<svg class="timeline" id="subscription-timeline""#), "no timeline SVG in the DOM")
        #expect(html.components(separatedBy: #"<g class="row""#).count - 1 >= 2, "one timeline row per live Google channel and Graph subscription")
        #expect(html.contains(#"data-provider="google""#) && html.contains(#"data-provider="microsoft""#))
        for id in ["inbox-backlog", "notifications-accepted", "syncs-per-minute", "renewals-due", "missed-by-push", "connections-by-state"] {
            #expect(html.contains(#"id="\#(id)""#), "overview figure \(id) missing")
        }
        let accepted = html.range(of: #"id="notifications-accepted">"#).map { Int(html[$0.upperBound...].prefix { $0.isNumber }) ?? -1 } ?? -1
        #expect(accepted > 0, "the demo's pushes should show as accepted notifications per minute (got \(accepted))")
        #expect(html.contains("demo-user"))
        demo.process.signal(SIGTERM)
        #expect(await demo.process.waitForExit() == 0)
    }

    @Test func consoleActionsAndStatusWorkAgainstTheDemo() async throws {
        let demo = try await startDemo()
        defer {
            demo.process.signal(SIGKILL)
            try? FileManager.default.removeItem(atPath: demo.directory)
        }
        let google = try await connectionID(demo, provider: "google")
        let jar = demo.directory + "/jar"
        let login = try await curlRequest(demo.base + (try await loginPath(demo, next: "/admin/connections/\(google)")), caFile: demo.ca, arguments: ["-c", jar])
        #expect(login.status == 303)
        let page = try await curlRequest(demo.base + "/admin/connections/\(google)", caFile: demo.ca, arguments: ["-b", jar])
        #expect(page.status == 200)
        let csrf = try #require(page.body.range(of: #"name="csrf" value=""#).map { String(page.body[$0.upperBound...].prefix { $0 != "\"" }) })
        func post(_ action: String, _ form: String) async throws -> Int {
            try await curlRequest(
                demo.base + "/admin/connections/\(google)/\(action)", caFile: demo.ca,
                arguments: [
                    "-b", jar, "-X", "POST", "-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary", "csrf=\(csrf)&\(form)",
                ]
            ).status
        }
        let channelsBefore = try await channelIDs(demo, google)
        #expect(try await post("renew", "") == 303)
        let channelsAfter = try await channelIDs(demo, google)
        #expect(!channelsAfter.isEmpty && channelsAfter.isDisjoint(with: channelsBefore), "renew now replaced the channel: \(channelsBefore) → \(channelsAfter)")

        let requestedAt = Date().addingTimeInterval(-1)
        #expect(try await post("resync", "mode=full") == 303)
        var progress: [String: Any] = [:]
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let body = try await curlRequest(
                demo.base + "/api/v1/connections/\(google)", caFile: demo.ca,
                arguments: [
                    "-H", "Authorization: Bearer \(try demo.token("api-token"))",
                ]
            ).body
            progress = ((try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["progress"] as? [[String: Any]])?.first ?? [:]
            if progress["phase"] as? String == "done", let started = progress["started_at"] as? String,
                let at = ISO8601DateFormatter().date(from: started), at >= requestedAt
            {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(progress["phase"] as? String == "done", "\(progress)")
        #expect((progress["pages_fetched"] as? Int ?? 0) >= 1)
        #expect((progress["appointments_applied"] as? Int ?? 0) >= 3, "the demo calendar has at least three events")

        let status = try await CalgateProcess.run(["status", "--listen", "127.0.0.1:\(demo.port)", "--data-dir", demo.directory + "/data", "--cacert", demo.ca])
        #expect(status.status == 0, "\(status.output)")
        #expect(status.output.contains("PROVIDER") && status.output.contains("ACCEPTED/MIN") && status.output.contains("Inbox backlog:"))
        #expect(status.output.contains("Renewals due in 24 h:") && status.output.contains("google") && status.output.contains("microsoft"))
        #expect(status.output.contains("Partitions (256 in all), by instance:") && status.output.contains("local (this one)") && status.output.contains("HEARTBEAT"), "\(status.output)")
        let json = try await CalgateProcess.run(["status", "--json", "--listen", "127.0.0.1:\(demo.port)", "--data-dir", demo.directory + "/data", "--cacert", demo.ca])
        #expect(json.status == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any], "\(json.output)")
        #expect(((document["connections"] as? [String: Any])?["google"] as? [String: Any])?["active"] as? Int == 1)
        #expect((document["subscriptions"] as? [[String: Any]])?.count == 2)
        #expect(!json.output.contains(try demo.token("admin-token")))

        let badToken = try await CalgateProcess.run(
            ["status", "--listen", "127.0.0.1:\(demo.port)", "--data-dir", demo.directory + "/data", "--cacert", demo.ca],
            environment: ["CALGATE_ADMIN_TOKEN": String(repeating: "f", count: 64)]
        )
        #expect(badToken.status != 0 && badToken.output.contains("refused the admin token"), "\(badToken.output)")
        let unreachable = try await CalgateProcess.run(["status", "--url", "https://127.0.0.1:1", "--data-dir", demo.directory + "/data", "--cacert", demo.ca])
        #expect(unreachable.status != 0 && unreachable.output.contains("cannot reach the gateway"), "\(unreachable.output)")
        demo.process.signal(SIGTERM)
        #expect(await demo.process.waitForExit() == 0)
    }

    /// The live channel ids of the connection, from the overview document.
    func channelIDs(_ demo: Demo, _ connection: String) async throws -> Set<String> {
        let body = try await curlRequest(
            demo.base + "/admin/api/overview", caFile: demo.ca,
            arguments: [
                "-H", "Authorization: Bearer \(try demo.token("admin-token"))",
            ]
        ).body
        let items = (try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["subscriptions"] as? [[String: Any]] ?? []
        return Set(items.filter { $0["connection_id"] as? String == connection }.compactMap { $0["id"] as? String })
    }
}
