import CurlHTTP
import ProviderSimulators
import Foundation
import Synchronization
import TestSupport
import Testing

/// `calgate` as a real process: start-up, bad input, signals, and scans from outside.
@Suite("calgate executable", .serialized)
struct ServeCommandTests {
    let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path

    func serveArguments(_ dir: String, extra: [String] = []) -> [String] {
        ["serve", "--listen", "127.0.0.1:0", "--data-dir", dir + "/data", "--routes", routes, "--log-format", "json"] + extra
    }

    func writeConfig(_ dir: String, _ json: String) -> String {
        let path = dir + "/config.json"
        _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
        return path
    }

    func curl(_ args: [String]) async throws -> (status: Int32, output: String) {
        try await runTool("/usr/bin/curl", ["-sS", "--max-time", "10"] + args)
    }

    @Test func servesHealthOverTLSWithAGeneratedDevCertificateAndToken() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = writeConfig(dir, #"{"tls": {"dev_cert_dir": "\#(dir)/certs"}}"#)
        let gateway = try CalgateProcess(serveArguments(dir, extra: ["--config", config]))
        let port = try await gateway.waitUntilReady()
        #expect(gateway.output.contains("generated a dev certificate"))
        #expect(gateway.output.contains("generated the admin token"))
        let token = try String(contentsOfFile: dir + "/data/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!gateway.output.contains(token), "the admin token must never be logged")
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/data/admin-token")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let keyMode = try FileManager.default.attributesOfItem(atPath: dir + "/certs/server.key")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)

        let anonymous = try await curl(["--cacert", dir + "/certs/dev-ca.pem", "https://127.0.0.1:\(port)/admin/health"])
        #expect(anonymous.output == #"{"status":"ok"}"#)
        let admin = try await curl([
            "--cacert", dir + "/certs/dev-ca.pem", "-H", "Authorization: Bearer \(token)", "https://localhost:\(port)/admin/health",
        ])
        #expect(admin.output.contains(#""checks":{"#))
        #expect(admin.output.contains(#""uptime_s":"#))
        let metrics = try await curl([
            "--cacert", dir + "/certs/dev-ca.pem", "-H", "Authorization: Bearer \(token)", "https://127.0.0.1:\(port)/admin/metrics",
        ])
        #expect(metrics.output.contains("calgate_http_requests_total"))

        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit() == 0)
        #expect(gateway.output.contains("store closed"))
        #expect(gateway.output.contains("calgate stopped"))
    }

    @Test func protocolAndCipherScanFromOutside() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = writeConfig(dir, #"{"tls": {"dev_cert_dir": "\#(dir)/certs"}}"#)
        let gateway = try CalgateProcess(serveArguments(dir, extra: ["--config", config]))
        let port = try await gateway.waitUntilReady()
        defer { gateway.signal(SIGKILL) }

        for old in ["-tls1", "-tls1_1"] {
            let result = try await runTool(
                "/usr/bin/openssl",
                [
                    "s_client", "-connect", "127.0.0.1:\(port)", old, "-cipher", "DEFAULT@SECLEVEL=0",
                ])
            #expect(!result.output.contains("Cipher is ECDHE"), "\(old) must be refused: \(result.output)")
            #expect(result.output.contains("alert protocol version") || result.output.contains("no protocols available"))
        }
        let nonAEAD = try await runTool(
            "/usr/bin/openssl",
            [
                "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-SHA",
            ])
        #expect(nonAEAD.output.contains("alert handshake failure") || nonAEAD.status != 0)
        #expect(!nonAEAD.output.contains("New, TLSv1.2, Cipher is"))

        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sslscan") else {
            Issue.record("sslscan is not installed (scripts/install-deps installs it)")
            return
        }
        let scan = try await runTool("/usr/bin/sslscan", ["--no-colour", "127.0.0.1:\(port)"], timeout: .seconds(120))
        let text = scan.output
        #expect(text.contains("TLSv1.3   enabled"))
        #expect(text.contains("TLSv1.2   enabled"))
        #expect(text.contains("TLSv1.1   disabled"))
        #expect(text.contains("TLSv1.0   disabled"))
        #expect(text.contains("SSLv3     disabled"))
        // Debian's sslscan is built without zlib and cannot probe compression; OpenSSLTLSTests checks it with s_client.
        #expect(text.contains("Compression disabled") || text.contains("does not support compression"))
        #expect(text.contains("Session renegotiation not supported") || text.contains("Secure session renegotiation supported"))
        #expect(!text.contains("Insecure session renegotiation supported"))
        let accepted = text.split(separator: "\n").filter { $0.hasPrefix("Preferred") || $0.hasPrefix("Accepted") }
        #expect(!accepted.isEmpty)
        for line in accepted {
            let isTLS13 = line.contains("TLSv1.3")
            let forwardSecretAEAD = line.contains("ECDHE") && (line.contains("GCM") || line.contains("CHACHA20"))
            #expect(isTLS13 || forwardSecretAEAD, "weak suite accepted: \(line)")
        }
    }

    @Test func badCertificateFilesStopStartUpNamingTheFile() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Two dev CAs, so a key can be mismatched with a certificate.
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/a"]).status == 0)
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/b"]).status == 0)
        _ = FileManager.default.createFile(atPath: dir + "/garbage.pem", contents: Data("not a certificate\n".utf8))
        let cases: [(cert: String, key: String, named: String)] = [
            (dir + "/missing.pem", dir + "/a/server.key", dir + "/missing.pem"),
            (dir + "/a/server.pem", dir + "/missing.key", dir + "/missing.key"),
            (dir + "/garbage.pem", dir + "/a/server.key", dir + "/garbage.pem"),
            (dir + "/a/server.pem", dir + "/garbage.pem", dir + "/garbage.pem"),
            (dir + "/a/server.pem", dir + "/b/server.key", dir + "/b/server.key"),
            (dir, dir + "/a/server.key", dir),
        ]
        for c in cases {
            let result = try await CalgateProcess.run(
                serveArguments(dir), environment: ["CALGATE_TLS_CERT": c.cert, "CALGATE_TLS_KEY": c.key]
            )
            #expect(result.status != 0, "started with \(c)")
            #expect(result.output.contains(c.named), "message should name \(c.named): \(result.output)")
        }
    }

    @Test func badSimulatorAndMonthFlagsExitNonZeroNamingTheFlag() async throws {
        let cases: [([String], String)] = [
            (["simulate", "--provider", "yahoo"], "provider"),
            (["simulate", "--provider", "microsoft", "--listen", "10.0.0.1:9000", "--ca", "/dev/null"], "loopback"),
            (["simulate", "--provider", "microsoft", "--channel-lifetime", "120", "--ca", "/dev/null"], "--channel-lifetime"),
            (["simulate", "--provider", "google", "--channel-lifetime", "59", "--ca", "/dev/null"], "--channel-lifetime"),
            (["simulate", "--provider", "google", "--channel-lifetime", "2592001", "--ca", "/dev/null"], "--channel-lifetime"),
            (["simulate", "--provider", "google", "--channel-lifetime", "soon", "--ca", "/dev/null"], "channel-lifetime"),
            (["simulate-month", "--days", "0"], "--days"),
            (["simulate-month", "--failure-rate", "0.9"], "--failure-rate"),
            (["simulate-month", "--drop-rate", "-1"], "--drop-rate"),
            (["simulate-month", "--routes", "/no/such/routes"], "--routes"),
        ]
        for (arguments, expected) in cases {
            let result = try await CalgateProcess.run(arguments)
            #expect(result.status != 0, "\(arguments) ran")
            #expect(result.output.contains(expected), "\(expected) not in: \(result.output)")
        }
    }

    @Test func badConfigurationExitsNonZeroWithTheSettingNamed() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [(args: [String], env: [String: String], expected: String)] = [
            (["--listen", "nowhere"], [:], "--listen"),
            (["--log-level", "loud"], [:], "--log-level"),
            (["--log-format", "xml"], [:], "--log-format"),
            (["--config", dir + "/nope.json"], [:], "nope.json"),
            (["--config", writeConfig(dir, #"{"listen": "127.0.0.1:1", "colour": "blue"}"#)], [:], "colour"),
            ([], ["CALGATE_LISTEN": "x"], "CALGATE_LISTEN"),
            ([], ["CALGATE_ADMIN_TOKEN": "short"], "CALGATE_ADMIN_TOKEN"),
            ([], ["CALGATE_ROUTES_DIR": dir + "/no-routes"], "no-routes"),
            // A sign-in client with only half its credentials stops start-up, naming the missing one.
            ([], ["CALGATE_GOOGLE_CLIENT_ID": "g-client"], "google.client_secret"),
            ([], ["CALGATE_MICROSOFT_CLIENT_SECRET": "m-secret"], "microsoft.client_id"),
            // PostgreSQL URLs: each bad part named, the password never echoed (checked below), an unreachable server
            // refused within seconds.
            ([], ["CALGATE_DATABASE": "postgres://calgate:hunter2@/calgate"], "host"),
            ([], ["CALGATE_DATABASE": "postgres://calgate:hunter2@127.0.0.1:99999/calgate"], "port"),
            ([], ["CALGATE_DATABASE": "postgres://calgate:hunter2@127.0.0.1:5432"], "database"),
            ([], ["CALGATE_DATABASE": "postgres://calgate:hunter2@127.0.0.1:5432/calgate?sslmode=maybe"], "sslmode"),
            ([], ["CALGATE_DATABASE": "postgres://calgate:hunter2@127.0.0.1:1/calgate"], "127.0.0.1:1"),
        ]
        for c in cases {
            var args = serveArguments(dir) + c.args
            if c.env["CALGATE_ROUTES_DIR"] != nil { args = args.filter { $0 != "--routes" && $0 != routes } }
            let result = try await CalgateProcess.run(args, environment: c.env)
            #expect(result.status != 0, "\(c.args) \(c.env) started")
            #expect(result.output.contains(c.expected), "\(c.expected) not in: \(result.output)")
            #expect(!result.output.contains("hunter2"), "the database password was echoed: \(result.output)")
        }
    }

    @Test func routesCheckReportsEveryProblemWithFileAndEntry() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try await CalgateProcess.run(["routes", "check", routes])
        #expect(good.status == 0)
        #expect(good.output.contains("routes OK"))

        try FileManager.default.createDirectory(atPath: dir + "/bad", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(
            atPath: dir + "/bad/a.json",
            contents: Data(
                #"""
                {"routes": [
                  {"method": "GET", "path": "/admin/health", "handler": "admin.health", "verifier": "admin_token_optional"},
                  {"method": "GET", "path": "/admin/health", "handler": "admin.health", "verifier": "admin_token_optional"},
                  {"method": "GET", "path": "/x", "handler": "nope.handler", "verifier": "none"},
                  {"method": "GET", "path": "/y", "handler": "admin.metrics", "verifier": "bogus"}
                ]}
                """#.utf8))
        _ = FileManager.default.createFile(atPath: dir + "/bad/b.json", contents: Data(#"{"routes": [], "surprise": true}"#.utf8))
        let bad = try await CalgateProcess.run(["routes", "check", dir + "/bad"])
        #expect(bad.status != 0)
        #expect(bad.output.contains("a.json: route #2 (GET /admin/health): duplicates"))
        #expect(bad.output.contains("a.json: route #3 (GET /x): unknown handler key \"nope.handler\""))
        #expect(bad.output.contains("a.json: route #4 (GET /y): unknown verifier key \"bogus\""))
        #expect(bad.output.contains("b.json: surprise: is not a known key"))

        let missing = try await CalgateProcess.run(["routes", "check", dir + "/none"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("does not exist"))

        // serve refuses the same table.
        let serve = try await CalgateProcess.run(serveArguments(dir).map { $0 == routes ? dir + "/bad" : $0 })
        #expect(serve.status != 0)
        #expect(serve.output.contains("unknown handler key"))
    }

    @Test func certsDevWritesKeysPrivately() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/certs"])
        #expect(result.status == 0)
        for file in ["dev-ca.pem", "dev-ca.key", "server.pem", "server.key"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/certs/\(file)"))
        }
        for key in ["dev-ca.key", "server.key"] {
            let mode = try FileManager.default.attributesOfItem(atPath: "\(dir)/certs/\(key)")[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
        let verify = try await runTool(
            "/usr/bin/openssl",
            [
                "verify", "-CAfile", dir + "/certs/dev-ca.pem", "-verify_hostname", "localhost", dir + "/certs/server.pem",
            ])
        #expect(verify.output.contains("OK"))
        let verifyIP = try await runTool(
            "/usr/bin/openssl",
            [
                "verify", "-CAfile", dir + "/certs/dev-ca.pem", "-verify_ip", "::1", dir + "/certs/server.pem",
            ])
        #expect(verifyIP.output.contains("OK"))
    }
}

/// SIGHUP on the real process: the new certificate for new connections, the old connection keeps working.
@Suite("calgate certificate reload")
struct CertificateReloadProcessTests {
    @Test func sighupReloadsWhileAnOldConnectionKeepsWorking() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/a"]).status == 0)
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/b"]).status == 0)
        try FileManager.default.copyItem(atPath: dir + "/a/server.pem", toPath: dir + "/server.pem")
        try FileManager.default.copyItem(atPath: dir + "/a/server.key", toPath: dir + "/server.key")
        let gateway = try CalgateProcess(
            ["serve", "--listen", "127.0.0.1:0", "--data-dir", dir + "/data", "--routes", routes, "--log-format", "json"],
            environment: ["CALGATE_TLS_CERT": dir + "/server.pem", "CALGATE_TLS_KEY": dir + "/server.key"]
        )
        let port = try await gateway.waitUntilReady()
        defer { gateway.signal(SIGKILL) }

        let old = try RawTLSClient(port: port, caFile: dir + "/a/dev-ca.pem")
        old.send("GET /admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(await old.waitFor("HTTP/1.1 200"))

        // Replace the files with certificate B and reload.
        try FileManager.default.removeItem(atPath: dir + "/server.pem")
        try FileManager.default.removeItem(atPath: dir + "/server.key")
        try FileManager.default.copyItem(atPath: dir + "/b/server.pem", toPath: dir + "/server.pem")
        try FileManager.default.copyItem(atPath: dir + "/b/server.key", toPath: dir + "/server.key")
        gateway.signal(SIGHUP)
        _ = try await gateway.waitForLine(containing: "certificate reloaded")

        let newCA = try await curlRequest("https://127.0.0.1:\(port)/admin/health", caFile: dir + "/b/dev-ca.pem")
        #expect(newCA.status == 200)
        let oldCA = try await curlRequest("https://127.0.0.1:\(port)/admin/health", caFile: dir + "/a/dev-ca.pem")
        #expect(oldCA.status == 0, "new handshakes must present certificate B")

        old.send("GET /admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let deadline = ContinuousClock.now + .seconds(5)
        while old.text.components(separatedBy: "HTTP/1.1 200").count < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(old.text.components(separatedBy: "HTTP/1.1 200").count == 3, "the old connection stopped working")
        old.close()

        // A broken file: reload refused, B still served.
        _ = FileManager.default.createFile(atPath: dir + "/server.pem", contents: Data("garbage".utf8))
        gateway.signal(SIGHUP)
        _ = try await gateway.waitForLine(containing: "certificate reload failed")
        let still = try await curlRequest("https://127.0.0.1:\(port)/admin/health", caFile: dir + "/b/dev-ca.pem")
        #expect(still.status == 200)
    }
}

/// Certificate reloads under steady load: no request fails, and new connections see the new certificate.
@Suite("calgate certificate reload under load")
struct CertificateReloadUnderLoadTests {
    /// Counts of a load client's requests.
    final class Tally: Sendable {
        private let counts = Mutex<(ok: Int, failed: Int, failures: [String])>((0, 0, []))
        func record(_ result: Result<Int, any Error>) {
            counts.withLock { counts in
                switch result {
                case .success(200): counts.ok += 1
                case .success(let status):
                    counts.failed += 1
                    counts.failures.append("status \(status)")
                case .failure(let error):
                    counts.failed += 1
                    counts.failures.append("\(error)")
                }
            }
        }
        var snapshot: (ok: Int, failed: Int, failures: [String]) { counts.withLock { $0 } }
    }

    @Test func reloadsUnderLoadWithZeroFailedRequests() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/a"]).status == 0)
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/b"]).status == 0)
        // The load clients trust both CAs, so a request fails only if the server fails it, not because of the swap.
        let both = try String(contentsOfFile: dir + "/a/dev-ca.pem", encoding: .utf8) + String(contentsOfFile: dir + "/b/dev-ca.pem", encoding: .utf8)
        _ = FileManager.default.createFile(atPath: dir + "/both-ca.pem", contents: Data(both.utf8))
        func install(_ name: String) throws {
            // Replaced by rename, as a deploy tool or certbot does: the files are never seen half written.
            for file in ["server.pem", "server.key"] {
                try? FileManager.default.removeItem(atPath: dir + "/next-" + file)
                try FileManager.default.copyItem(atPath: "\(dir)/\(name)/\(file)", toPath: dir + "/next-" + file)
                guard rename(dir + "/next-" + file, dir + "/" + file) == 0 else { throw ProcessFailure("rename \(file) failed") }
            }
        }
        try install("a")
        let gateway = try CalgateProcess(
            ["serve", "--listen", "127.0.0.1:0", "--data-dir", dir + "/data", "--routes", routes, "--log-format", "json"],
            environment: ["CALGATE_TLS_CERT": dir + "/server.pem", "CALGATE_TLS_KEY": dir + "/server.key"]
        )
        let port = try await gateway.waitUntilReady()
        defer { gateway.signal(SIGKILL) }
        let url = "https://127.0.0.1:\(port)/admin/health"

        var configuration = CurlHTTPClient.Configuration()
        configuration.caBundlePath = dir + "/both-ca.pem"
        configuration.requestTimeout = .seconds(10)
        let client = try CurlHTTPClient(configuration: configuration)
        let tally = Tally()
        let stop = ExitSignal()
        // Three clients on keep-alive connections and three that open a new connection (full handshake) per request.
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<6 {
                    let headers = index < 3 ? [] : [CurlHTTPHeader("Connection", "close")]
                    group.addTask {
                        while !stop.isFired {
                            do {
                                let response = try await client.execute(CurlHTTPRequest(url: url, headers: headers))
                                tally.record(.success(response.status))
                            } catch {
                                tally.record(.failure(error))
                            }
                        }
                    }
                }
            }
        }
        func reloads() -> Int { gateway.lines.filter { $0.contains("certificate reloaded") }.count }
        try await Task.sleep(for: .milliseconds(300))
        for round in 1...6 {
            let name = round % 2 == 1 ? "b" : "a"
            let before = tally.snapshot.ok
            try install(name)
            gateway.signal(SIGHUP)
            let deadline = ContinuousClock.now + .seconds(10)
            while reloads() < round, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(reloads() == round, "reload \(round) was not logged")
            // New handshakes present the new certificate: only its CA verifies them.
            let fresh = try await curlRequest(url, caFile: "\(dir)/\(name)/dev-ca.pem")
            #expect(fresh.status == 200, "after reload \(round) a new connection does not verify with the new CA")
            let stale = try await curlRequest(url, caFile: "\(dir)/\(name == "a" ? "b" : "a")/dev-ca.pem")
            #expect(stale.status == 0, "after reload \(round) a new connection still presents the old certificate")
            // Load kept flowing across the reload.
            while tally.snapshot.ok < before + 30, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(tally.snapshot.ok >= before + 30, "load stalled around reload \(round)")
        }
        stop.fire()
        await load.value
        await client.shutdown()
        let result = tally.snapshot
        #expect(result.failed == 0, "\(result.failed) of \(result.ok + result.failed) requests failed: \(result.failures.prefix(5))")
        // Each round above already required 30 more answered requests across its reload.
        #expect(result.ok >= 6 * 30, "too little load to mean anything: \(result.ok) requests")
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit() == 0)
    }
}

/// `calgate demo` as the README runs it: simulator pushes reach the gateway and changes show up in the API.
@Suite("calgate demo")
struct DemoCommandTests {
    @Test func demoSyncsTheChangingCalendarEndToEnd() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try SilentListener().port  // a free port (the listener closes when released)
        let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path
        let config = dir + "/config.json"
        _ = FileManager.default.createFile(atPath: config, contents: Data(#"{"tls": {"dev_cert_dir": "\#(dir)/certs"}}"#.utf8))
        let demo = try CalgateProcess([
            "demo", "--listen", "127.0.0.1:\(port)", "--data-dir", dir + "/data", "--routes", routes, "--config", config,
            "--log-format", "json", "--change-every", "0.3",
        ])
        defer { demo.signal(SIGKILL) }
        _ = try await demo.waitForLine(containing: "demo user connected")
        #expect(demo.output.contains("appointments:"))
        let token = try String(contentsOfFile: dir + "/data/api-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        var body = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while !body.contains("(moved)"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            body = try await curlRequest(
                "https://localhost:\(port)/api/v1/appointments?user=demo-user", caFile: dir + "/certs/dev-ca.pem",
                arguments: ["-H", "Authorization: Bearer \(token)"]
            ).body
        }
        #expect(body.contains("Client call: Smith household (moved)"), "the pushed change never arrived: \(body)")
        #expect(body.contains(#""source":"google""#))
        // The Outlook side: the connected Microsoft account's default calendar, changed and notified by the Graph simulator.
        while !body.contains("Quarterly review (Outlook, moved)"), ContinuousClock.now < deadline + .seconds(10) {
            try await Task.sleep(for: .milliseconds(200))
            body = try await curlRequest(
                "https://localhost:\(port)/api/v1/appointments?user=demo-user", caFile: dir + "/certs/dev-ca.pem",
                arguments: ["-H", "Authorization: Bearer \(token)"]
            ).body
        }
        #expect(body.contains("Quarterly review (Outlook, moved)"), "the Graph notification never arrived: \(body)")
        #expect(body.contains(#""source":"microsoft""#))
        #expect(!body.contains("unselected calendar"), "the unselected Outlook calendar leaked into the store")
        // The demo user's Redtail account (polled, no webhooks) is connected too.
        #expect(body.contains("Annual review: Smith household (Redtail"), "the Redtail activity is missing: \(body)")
        #expect(body.contains(#""source":"redtail""#))
        demo.signal(SIGTERM)
        #expect(await demo.waitForExit() == 0)
    }
}

/// The gateway killed with SIGKILL while pushes and syncs are in flight, then restarted on the same data.
@Suite("calgate crash safety")
struct CrashRecoveryTests {
    @Test func sigkillMidSyncLosesNothingAcknowledgedAndAppliesNothingTwice() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/certs"]).status == 0)
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = dir + "/certs/dev-ca.pem"
        let pushClient = try CurlHTTPClient(configuration: pushConfiguration)
        let simulator = GoogleSimulator(refreshTokens: ["1//crash-refresh"], pushClient: pushClient)
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let port = try SilentListener().port
        let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path
        let config = dir + "/config.json"
        _ = FileManager.default.createFile(
            atPath: config,
            contents: Data(
                """
                {"listen": "127.0.0.1:\(port)", "data_dir": "\(dir)/data", "routes_dir": "\(routes)",
                 "tls": {"dev_cert_dir": "\(dir)/certs"}, "public_url": "https://localhost:\(port)",
                 "google": {"token_url": "\(server.baseURL)/token", "api_base_url": "\(server.baseURL)/calendar/v3"}}
                """.utf8))
        func start() async throws -> CalgateProcess {
            let gateway = try CalgateProcess(["serve", "--config", config, "--log-format", "json"])
            _ = try await gateway.waitUntilReady()
            return gateway
        }
        var gateway = try await start()
        let apiToken = try String(contentsOfFile: dir + "/data/api-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let adminToken = try String(contentsOfFile: dir + "/data/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let connect = try await curlRequest(
            "https://localhost:\(port)/api/v1/connections", caFile: dir + "/certs/dev-ca.pem",
            arguments: [
                "-X", "POST", "-H", "Authorization: Bearer \(apiToken)", "--data-binary",
                #"{"user_id":"u1","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//crash-refresh"}"#,
            ])
        #expect(connect.status == 201)

        // Changes (each pushed by the simulator) before, during and after a SIGKILL.
        for round in 0..<30 {
            let id = "ev\(round % 12)"
            if round % 5 == 4 {
                simulator.deleteEvent(calendar: "primary", id: "ev\((round + 3) % 12)")
            } else {
                simulator.upsertEvent(
                    calendar: "primary",
                    [
                        "id": .string(id), "summary": .string("\(id) v\(round)"),
                        "start": .object(["dateTime": .string("2026-12-01T10:00:00Z")]), "end": .object(["dateTime": .string("2026-12-01T11:00:00Z")]),
                    ])
            }
            if round == 12 {
                gateway.signal(SIGKILL)
                _ = await gateway.waitForExit()
                gateway = try await start()
            }
            try await Task.sleep(for: .milliseconds(40))
        }

        // Converges to the simulator's truth, with nothing left in the inbox.
        let truth = simulator.liveEvents(calendar: "primary")
        var stored: [String: String] = [:]
        var ids: [String] = []
        let deadline = ContinuousClock.now + .seconds(40)
        repeat {
            try await Task.sleep(for: .milliseconds(300))
            let body = try await curlRequest(
                "https://localhost:\(port)/api/v1/appointments?user=u1", caFile: dir + "/certs/dev-ca.pem",
                arguments: ["-H", "Authorization: Bearer \(apiToken)"]
            ).body
            let items = ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any])?["appointments"] as? [[String: Any]] ?? []
            ids = items.compactMap { $0["id"] as? String }
            stored = Dictionary(items.compactMap { item in (item["id"] as? String).map { ($0, item["title"] as? String ?? "") } }, uniquingKeysWith: { a, _ in a })
        } while stored != truth && ContinuousClock.now < deadline
        #expect(stored == truth, "store \(stored) differs from the simulator's \(truth)")
        #expect(ids.count == Set(ids).count, "an appointment exists twice")
        // Pushes retried after the restart may still be arriving; every one must be processed.
        var health = ""
        let drained = ContinuousClock.now + .seconds(20)
        repeat {
            health = try await curlRequest(
                "https://localhost:\(port)/admin/health", caFile: dir + "/certs/dev-ca.pem", arguments: ["-H", "Authorization: Bearer \(adminToken)"]
            ).body
            if health.contains(#""backlog":0"#) { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < drained
        #expect(health.contains(#""backlog":0"#), "acknowledged notifications left unprocessed: \(health)")
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit() == 0)
        await server.stop()
        await pushClient.shutdown()
    }
}

/// The same for Microsoft Graph: notifications acknowledged before a SIGKILL are synced after the restart.
@Suite("calgate crash safety (Graph)")
struct GraphCrashRecoveryTests {
    @Test func sigkillMidSyncLosesNothingAcknowledged() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/certs"]).status == 0)
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = dir + "/certs/dev-ca.pem"
        let pushClient = try CurlHTTPClient(configuration: pushConfiguration)
        // Graph retries undelivered notifications for hours; compressed here to cover a restart.
        let simulator = GraphSimulator(
            refreshTokens: ["0.AAAA-crash"], pushClient: pushClient,
            retryDelays: [.milliseconds(500), .seconds(1), .seconds(2), .seconds(3), .seconds(5), .seconds(8)]
        )
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let port = try SilentListener().port
        let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path
        let config = dir + "/config.json"
        _ = FileManager.default.createFile(
            atPath: config,
            contents: Data(
                """
                {"listen": "127.0.0.1:\(port)", "data_dir": "\(dir)/data", "routes_dir": "\(routes)",
                 "tls": {"dev_cert_dir": "\(dir)/certs"}, "public_url": "https://localhost:\(port)",
                 "microsoft": {"token_url": "\(server.baseURL)/common/oauth2/v2.0/token", "api_base_url": "\(server.baseURL)/v1.0"}}
                """.utf8))
        func start() async throws -> CalgateProcess {
            let gateway = try CalgateProcess(["serve", "--config", config, "--log-format", "json"])
            _ = try await gateway.waitUntilReady()
            return gateway
        }
        var gateway = try await start()
        let apiToken = try String(contentsOfFile: dir + "/data/api-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let adminToken = try String(contentsOfFile: dir + "/data/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let connect = try await curlRequest(
            "https://localhost:\(port)/api/v1/connections", caFile: dir + "/certs/dev-ca.pem",
            arguments: [
                "-X", "POST", "-H", "Authorization: Bearer \(apiToken)", "--data-binary",
                #"{"user_id":"u1","provider":"microsoft","client_id":"c","client_secret":"s","refresh_token":"0.AAAA-crash"}"#,
            ])
        #expect(connect.status == 201, "\(connect.body)")
        let calendar = GraphSimulator.defaultCalendarID
        for round in 0..<30 {
            let id = "ev\(round % 12)"
            if round % 5 == 4 {
                simulator.deleteEvent(calendar: calendar, id: "ev\((round + 3) % 12)")
            } else {
                simulator.upsertEvent(
                    calendar: calendar,
                    [
                        "id": .string(id), "subject": .string("\(id) v\(round)"),
                        "start": .object(["dateTime": .string("2026-12-01T10:00:00.0000000"), "timeZone": .string("UTC")]),
                        "end": .object(["dateTime": .string("2026-12-01T11:00:00.0000000"), "timeZone": .string("UTC")]),
                    ])
            }
            if round == 12 {
                gateway.signal(SIGKILL)
                _ = await gateway.waitForExit()
                gateway = try await start()
            }
            try await Task.sleep(for: .milliseconds(40))
        }
        let truth = simulator.liveEvents(calendar: calendar)
        var stored: [String: String] = [:]
        var ids: [String] = []
        let deadline = ContinuousClock.now + .seconds(40)
        repeat {
            try await Task.sleep(for: .milliseconds(300))
            let body = try await curlRequest(
                "https://localhost:\(port)/api/v1/appointments?user=u1", caFile: dir + "/certs/dev-ca.pem",
                arguments: ["-H", "Authorization: Bearer \(apiToken)"]
            ).body
            let items = ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any])?["appointments"] as? [[String: Any]] ?? []
            ids = items.compactMap { $0["id"] as? String }
            stored = Dictionary(items.compactMap { item in (item["id"] as? String).map { ($0, item["title"] as? String ?? "") } }, uniquingKeysWith: { a, _ in a })
        } while stored != truth && ContinuousClock.now < deadline
        #expect(stored == truth, "store \(stored) differs from the simulator's \(truth)")
        #expect(ids.count == Set(ids).count, "an appointment exists twice")
        var health = ""
        let drained = ContinuousClock.now + .seconds(30)
        repeat {
            health = try await curlRequest(
                "https://localhost:\(port)/admin/health", caFile: dir + "/certs/dev-ca.pem", arguments: ["-H", "Authorization: Bearer \(adminToken)"]
            ).body
            if health.contains(#""backlog":0"#) { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < drained
        #expect(health.contains(#""backlog":0"#), "acknowledged notifications left unprocessed: \(health)")
        simulator.setPushClient(nil)
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit() == 0)
        await server.stop()
        await pushClient.shutdown()
    }
}

/// "Add to calendar" survives a provider outage and a SIGKILL: the push job is durable and runs after the restart.
@Suite("calgate push-out restart")
struct PushOutRestartTests {
    @Test func aPushQueuedBeforeASigkillIsDeliveredAfterTheRestart() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try await CalgateProcess.run(["certs", "dev", "--dir", dir + "/certs"]).status == 0)
        let simulator = GoogleSimulator(refreshTokens: ["1//push-refresh"])
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let port = try SilentListener().port
        let routes = CalgateProcess.repositoryRoot.appendingPathComponent("routes").path
        let config = dir + "/config.json"
        _ = FileManager.default.createFile(
            atPath: config,
            contents: Data(
                """
                {"listen": "127.0.0.1:\(port)", "data_dir": "\(dir)/data", "routes_dir": "\(routes)",
                 "tls": {"dev_cert_dir": "\(dir)/certs"}, "public_url": "https://localhost:\(port)",
                 "google": {"token_url": "\(server.baseURL)/token", "api_base_url": "\(server.baseURL)/calendar/v3"}}
                """.utf8))
        func start() async throws -> CalgateProcess {
            let gateway = try CalgateProcess(["serve", "--config", config, "--log-format", "json"])
            _ = try await gateway.waitUntilReady()
            return gateway
        }
        var gateway = try await start()
        let token = try String(contentsOfFile: dir + "/data/api-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        func call(_ path: String, _ arguments: [String] = []) async throws -> (status: Int, json: [String: Any]) {
            let response = try await curlRequest(
                "https://localhost:\(port)\(path)", caFile: dir + "/certs/dev-ca.pem",
                arguments: ["-H", "Authorization: Bearer \(token)", "-H", "Content-Type: application/json"] + arguments)
            return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:])
        }
        let connection = try #require(
            try await call(
                "/api/v1/connections",
                [
                    "-X", "POST", "--data-binary",
                    #"{"user_id":"u1","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//push-refresh"}"#,
                ]
            ).json["id"] as? String)
        #expect(try await call("/api/v1/users/u1/push-target", ["-X", "PUT", "--data-binary", #"{"connection_id":"\#(connection)","calendar_id":"primary"}"#]).status == 200)

        // Google is down: the push fails and stays queued.
        simulator.chaos.configure(failureRate: 1, dropRate: 0, timeoutDelay: .milliseconds(1), seed: 3)
        let made = try await call(
            "/api/v1/appointments",
            [
                "-X", "POST", "--data-binary",
                #"{"user_id":"u1","title":"Survives a crash","start":"2026-12-09T10:00:00Z","end":"2026-12-09T11:00:00Z"}"#,
            ])
        let id = try #require(made.json["id"] as? String)
        var failedOnce = false
        let deadline = ContinuousClock.now + .seconds(15)
        while !failedOnce, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            let items = try await call("/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
            failedOnce = items.first { $0["id"] as? String == id }?["push_error"] is String
        }
        #expect(failedOnce, "the first attempt met the outage")
        gateway.signal(SIGKILL)
        _ = await gateway.waitForExit()

        // Google is back; the restarted gateway delivers the queued push.
        simulator.chaos.configure(failureRate: 0, dropRate: 0, seed: 3)
        gateway = try await start()
        var pushed = false
        let after = ContinuousClock.now + .seconds(40)
        while !pushed, ContinuousClock.now < after {
            try await Task.sleep(for: .milliseconds(250))
            pushed = simulator.liveEvents(calendar: "primary").values.contains("Survives a crash")
        }
        #expect(pushed, "the queued push was delivered after the restart")
        let items = try await call("/api/v1/appointments?user=u1").json["appointments"] as? [[String: Any]] ?? []
        #expect(items.first { $0["id"] as? String == id }?["push_status"] as? String == "pushed")
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit() == 0)
        await server.stop()
    }
}
