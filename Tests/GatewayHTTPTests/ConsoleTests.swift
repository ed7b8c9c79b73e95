import CurlHTTP
import Foundation
import GatewayCore
@testable import GatewayHTTP
import GoogleCalendar
import ProviderSimulators
import Synchronization
import TestSupport
import Testing

/// Records what the console asked of the sync services.
final class RecordingConsoleOperations: ConsoleOperations {
    let calls = Mutex<[String]>([])

    func resync(_ connection: Connection, full: Bool) async throws -> Int {
        calls.withLock { $0.append("resync \(connection.id) \(full ? "full" : "delta")") }
        return 1
    }

    func renew(_ connection: Connection) async throws -> (renewed: Int, created: Int) {
        calls.withLock { $0.append("renew \(connection.id)") }
        return (1, 0)
    }

    func missedByPush() -> [Provider: Int] { [.google: 7] }

    func runningSyncs() -> Int { 0 }
}

/// A browser's view of the console: a cookie jar and the last CSRF token seen, over real TLS with curl.
struct ConsoleBrowser {
    let gateway: GatewayHarness
    let jar: String

    init(_ gateway: GatewayHarness) {
        self.gateway = gateway
        jar = gateway.directory + "/jar-\(UUID().uuidString)"
    }

    var base: String { "https://127.0.0.1:\(gateway.port)" }

    func get(_ path: String, _ arguments: [String] = []) async throws -> (status: Int, body: String, headers: String) {
        try await curlRequest(base + path, caFile: gateway.certificates.caCertificate, arguments: ["-b", jar, "-c", jar] + arguments)
    }

    func post(_ path: String, form: String, _ arguments: [String] = []) async throws -> (status: Int, body: String, headers: String) {
        try await get(path, ["-X", "POST", "-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary", form] + arguments)
    }

    /// The login form, then the admin token with its CSRF value.
    func logIn() async throws -> (status: Int, body: String, headers: String) {
        let form = try await get("/admin/login")
        let csrf = try #require(Self.hidden("csrf", in: form.body))
        return try await post("/admin/login", form: "csrf=\(csrf)&token=\(gateway.adminToken)")
    }

    static func hidden(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: #"name="\#(name)" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    static func header(_ name: String, in headers: String) -> [String] {
        headers.split(whereSeparator: \.isNewline).compactMap { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == name.lowercased() else { return nil }
            return parts[1].trimmingCharacters(in: .whitespaces)
        }
    }
}

@Suite("Operator console", .serialized)
struct ConsoleTests {
    static let hostileName = #"<script>alert("cal")</script> & 'Q'"#

    func start(
        _ simulator: GoogleSimulator, console: (any ConsoleOperations)? = RecordingConsoleOperations(), pageSize: Int = 250
    ) async throws -> (SimulatorServer, GatewayHarness) {
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let gateway = try await GatewayHarness(
            console: console,
            google: { store, sealer, config in
                GoogleConnectionSyncer(
                    client: GoogleCalendarClient(
                        http: try CurlHTTPClient(),
                        endpoints: GoogleEndpoints(
                            tokenURL: server.baseURL + "/token", apiBaseURL: server.baseURL + "/calendar/v3"
                        )),
                    store: store, sealer: sealer, clock: SystemGatewayClock(), webhookAddress: "https://localhost:\(config.listen.port)/webhooks/google",
                    pageSize: pageSize
                )
            })
        return (server, gateway)
    }

    func connect(_ gateway: GatewayHarness, user: String = "u1") async throws -> String {
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/api/v1/connections", caFile: gateway.certificates.caCertificate,
            arguments: [
                "-H", "Authorization: Bearer \(gateway.apiToken)", "-H", "Content-Type: application/json", "-X", "POST", "--data-binary",
                #"{"user_id":"\#(user)","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//ok"}"#,
            ]
        )
        #expect(response.status == 201, "\(response.body)")
        let json = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        return try #require(json?["id"] as? String)
    }

    @Test func loginSetsAStrictSessionCookieAndLogoutEndsIt() async throws {
        let (server, gateway) = try await start(GoogleSimulator(refreshTokens: ["1//ok"]))
        let browser = ConsoleBrowser(gateway)

        let anonymous = try await browser.get("/admin")
        #expect(anonymous.status == 303)
        #expect(ConsoleBrowser.header("location", in: anonymous.headers) == ["/admin/login"])

        let form = try await browser.get("/admin/login")
        #expect(form.status == 200)
        #expect(form.body.contains(#"type="password""#))
        let csp = ConsoleBrowser.header("content-security-policy", in: form.headers).first ?? ""
        for directive in ["default-src 'none'", "style-src 'self'", "img-src 'self' data:", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"] {
            #expect(csp.contains(directive), "CSP lacks \(directive): \(csp)")
        }
        #expect(!csp.contains("unsafe-inline") && !csp.contains("script-src"))
        #expect(ConsoleBrowser.header("x-frame-options", in: form.headers) == ["DENY"])
        #expect(ConsoleBrowser.header("referrer-policy", in: form.headers) == ["no-referrer"])
        let csrf = try #require(ConsoleBrowser.hidden("csrf", in: form.body))

        // Wrong token, a missing or forged login CSRF value, a cross-site post: no session.
        let wrong = try await browser.post("/admin/login", form: "csrf=\(csrf)&token=not-the-token")
        #expect(wrong.status == 401)
        #expect(wrong.body.contains("That is not the admin token."))
        for bad in ["token=\(gateway.adminToken)", "csrf=0000&token=\(gateway.adminToken)"] {
            let refused = try await browser.post("/admin/login", form: bad)
            #expect(refused.status == 403, "\(bad)")
            #expect(!refused.headers.contains("__Host-calgate_session="), "\(bad)")
        }
        let fresh = try #require(ConsoleBrowser.hidden("csrf", in: try await browser.get("/admin/login").body))
        let crossSite = try await browser.post("/admin/login", form: "csrf=\(fresh)&token=\(gateway.adminToken)", ["-H", "Sec-Fetch-Site: cross-site"])
        #expect(crossSite.status == 403)

        let login = try await browser.logIn()
        #expect(login.status == 303, "\(login.body)")
        #expect(ConsoleBrowser.header("location", in: login.headers) == ["/admin"])
        let cookie = try #require(ConsoleBrowser.header("set-cookie", in: login.headers).first { $0.hasPrefix("__Host-calgate_session=") })
        for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800", "Expires="] {
            #expect(cookie.contains(flag), "session cookie lacks \(flag): \(cookie)")
        }
        #expect(!cookie.contains("Domain="), "a __Host- cookie must not name a domain")
        let value = cookie.dropFirst("__Host-calgate_session=".count).prefix { $0 != ";" }
        #expect(value.count == 64 && value.allSatisfy(\.isHexDigit))

        let overview = try await browser.get("/admin")
        #expect(overview.status == 200)
        #expect(overview.body.contains(#"id="inbox-backlog""#))
        let sessionCSRF = try #require(ConsoleBrowser.hidden("csrf", in: overview.body))
        #expect(sessionCSRF.count == 64 && sessionCSRF != String(value), "the CSRF token is its own secret, not the session id")
        #expect(try await browser.get("/admin/login").status == 303, "a logged-in browser skips the form")

        #expect(try await browser.post("/admin/logout", form: "csrf=wrong").status == 403)
        let logout = try await browser.post("/admin/logout", form: "csrf=\(sessionCSRF)")
        #expect(logout.status == 303)
        #expect(ConsoleBrowser.header("set-cookie", in: logout.headers).contains { $0.hasPrefix("__Host-calgate_session=;") && $0.contains("Max-Age=0") })
        // The old cookie value no longer opens anything, even if a browser kept it.
        let replay = try await curlRequest(
            browser.base + "/admin", caFile: gateway.certificates.caCertificate, arguments: ["-H", "Cookie: __Host-calgate_session=\(value)"]
        )
        #expect(replay.status == 303)
        await server.stop()
        await gateway.shutdown()
    }

    @Test func loginCodesNeedTheAdminTokenAndWorkOnce() async throws {
        let (server, gateway) = try await start(GoogleSimulator(refreshTokens: ["1//ok"]))
        let base = "https://127.0.0.1:\(gateway.port)"
        let ca = gateway.certificates.caCertificate
        #expect(try await curlRequest(base + "/admin/api/login-codes", caFile: ca, arguments: ["-X", "POST"]).status == 401)
        #expect(try await curlRequest(base + "/admin/api/login-codes", caFile: ca, arguments: ["-X", "POST", "-H", "Authorization: Bearer \(gateway.apiToken)"]).status == 401)
        let minted = try await curlRequest(base + "/admin/api/login-codes", caFile: ca, arguments: ["-X", "POST", "-H", "Authorization: Bearer \(gateway.adminToken)"])
        #expect(minted.status == 201)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(minted.body.utf8)) as? [String: Any])
        let path = try #require(json["path"] as? String)
        #expect(!minted.body.contains(gateway.adminToken))

        let first = try await curlRequest(base + path + "&next=/admin/connections/x1", caFile: ca)
        #expect(first.status == 303)
        #expect(ConsoleBrowser.header("location", in: first.headers) == ["/admin/connections/x1"])
        #expect(first.headers.contains("__Host-calgate_session="))
        let again = try await curlRequest(base + path, caFile: ca)
        #expect(again.status == 401, "a code works once")
        #expect(!again.headers.contains("__Host-calgate_session=") || again.headers.contains("__Host-calgate_session=;"))
        #expect(try await curlRequest(base + "/admin/login?code=0123", caFile: ca).status == 401)

        for next in ["https://evil.example/", "//evil.example/admin", "/admin/../api/v1/connections", "/elsewhere", "/admin/%2e%2e"] {
            let code = try #require(
                (try JSONSerialization.jsonObject(
                    with: Data(
                        try await curlRequest(
                            base + "/admin/api/login-codes", caFile: ca, arguments: ["-X", "POST", "-H", "Authorization: Bearer \(gateway.adminToken)"]
                        ).body.utf8)) as? [String: Any])?["code"] as? String
            )
            let encoded = next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let response = try await curlRequest(base + "/admin/login?code=\(code)&next=\(encoded)", caFile: ca)
            #expect(ConsoleBrowser.header("location", in: response.headers) == ["/admin"], "next=\(next) must not be followed")
        }
        await server.stop()
        await gateway.shutdown()
    }

    @Test func pagesEscapeEveryProviderAndUserString() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        simulator.addCalendar(id: "primary", name: Self.hostileName)
        simulator.addCalendar(id: "other", name: #"Other "><img src=x onerror=alert(1)>"#)
        simulator.upsertEvent(calendar: "primary", timed(#"<b>Title</b> "quoted" & 'single'"#, "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"))
        let (server, gateway) = try await start(simulator)
        let id = try await connect(gateway, user: "u<1>&'x'")
        // A provider error message as the connection's reason, with something shaped like a credential in it.
        try await gateway.store.setConnectionState(
            id: id, state: .degraded, reason: #"Google said <script>x()</script> (Authorization: Bearer ya29.SECRETSECRET, refresh_token=1//SECRET)"#
        )
        let browser = ConsoleBrowser(gateway)
        #expect(try await browser.logIn().status == 303)
        for path in ["/admin", "/admin/connections/\(id)", "/admin/connections/\(id)/disconnect"] {
            let page = try await browser.get(path)
            #expect(page.status == 200, "\(path)")
            for raw in ["<script>", "<img", "<b>", #"u<1>"#, "SECRETSECRET", "1//SECRET", gateway.adminToken, gateway.apiToken] {
                #expect(!page.body.contains(raw), "\(path) shows \(raw) unescaped")
            }
            #expect(page.body.contains("u&lt;1&gt;&amp;&#39;x&#39;"), "\(path) lacks the escaped user id")
        }
        let connection = try await browser.get("/admin/connections/\(id)").body
        #expect(connection.contains("&lt;script&gt;alert(&quot;cal&quot;)&lt;/script&gt; &amp; &#39;Q&#39;"), "escaped calendar name")
        #expect(connection.contains("Other &quot;&gt;&lt;img src=x onerror=alert(1)&gt;"))
        #expect(connection.contains("Bearer [redacted]") && connection.contains("refresh_token=[redacted]"))
        let overview = try await browser.get("/admin").body
        #expect(overview.contains("&lt;script&gt;alert(&quot;cal&quot;)"), "the timeline label is escaped too")
        #expect(!overview.contains("Title</b>"))
        await server.stop()
        await gateway.shutdown()
    }

    @Test func templatesNeverRenderUnescaped() {
        for (name, source) in ConsoleTemplates.sources {
            #expect(!source.contains("{{{") && !source.contains("{{&"), "template \(name) has an unescaped tag")
            #expect(!source.lowercased().contains("<script") && !source.contains("style=\""), "template \(name) needs script or inline style")
        }
        #expect(ConsoleText.redacted("Bearer abc.DEF-1 then clientState: s3cr3t and password=hunter2") == "Bearer [redacted] then clientState: [redacted] and password=[redacted]")
    }

    @Test func actionsNeedASessionAndItsCSRFToken() async throws {
        let operations = RecordingConsoleOperations()
        let (server, gateway) = try await start(GoogleSimulator(refreshTokens: ["1//ok"]), console: operations)
        let id = try await connect(gateway)
        let browser = ConsoleBrowser(gateway)

        // No session: refused before anything runs.
        #expect(try await browser.post("/admin/connections/\(id)/resync", form: "csrf=x&mode=full").status == 401)
        #expect(try await browser.get("/admin/connections/\(id)").status == 303)
        #expect(try await browser.logIn().status == 303)
        let page = try await browser.get("/admin/connections/\(id)")
        let csrf = try #require(ConsoleBrowser.hidden("csrf", in: page.body))
        for action in ["resync", "renew", "disconnect"] {
            #expect(page.body.contains(#"action="/admin/connections/\#(id)/\#(action)""#) || action == "disconnect")
            #expect(try await browser.post("/admin/connections/\(id)/\(action)", form: "mode=full&confirm=yes").status == 403, "\(action) without CSRF")
            #expect(try await browser.post("/admin/connections/\(id)/\(action)", form: "csrf=\(String(repeating: "0", count: 64))&confirm=yes").status == 403)
            #expect(
                try await browser.post("/admin/connections/\(id)/\(action)", form: "csrf=\(csrf)&confirm=yes", ["-H", "Sec-Fetch-Site: cross-site"]).status == 403
            )
            #expect(
                try await browser.get("/admin/connections/\(id)/\(action)", ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "{}"]).status == 415
            )
        }
        #expect(operations.calls.withLock { $0 }.isEmpty, "nothing ran without a valid CSRF token")

        let full = try await browser.post("/admin/connections/\(id)/resync", form: "csrf=\(csrf)&mode=full")
        #expect(full.status == 303)
        #expect(ConsoleBrowser.header("location", in: full.headers) == ["/admin/connections/\(id)?done=full"])
        #expect(try await browser.post("/admin/connections/\(id)/resync", form: "csrf=\(csrf)&mode=delta").status == 303)
        #expect(try await browser.post("/admin/connections/\(id)/renew", form: "csrf=\(csrf)").status == 303)
        #expect(operations.calls.withLock { $0 } == ["resync \(id) full", "resync \(id) delta", "renew \(id)"])
        let notice = try await browser.get("/admin/connections/\(id)?done=full")
        #expect(notice.body.contains("A full re-sync of every synced calendar was requested"))
        #expect(!(try await browser.get("/admin/connections/\(id)?done=%3Cscript%3E").body.contains("<script")))

        // Disconnect: a confirmation page first, then the same path DELETE /api/v1/connections/{id} takes.
        let confirm = try await browser.get("/admin/connections/\(id)/disconnect")
        #expect(confirm.status == 200)
        #expect(confirm.body.contains(#"name="confirm" value="yes""#))
        #expect(try await browser.post("/admin/connections/\(id)/disconnect", form: "csrf=\(csrf)").status == 400, "no confirm=yes")
        #expect(try await gateway.store.connection(id: id)?.state == .active)
        let done = try await browser.post("/admin/connections/\(id)/disconnect", form: "csrf=\(csrf)&confirm=yes")
        #expect(done.status == 303)
        #expect(try await gateway.store.connection(id: id)?.state == .disconnected)
        #expect(try await gateway.store.appointments(calendarKey: "\(id)/primary").isEmpty)
        #expect(try await browser.post("/admin/connections/\(id)/resync", form: "csrf=\(csrf)&mode=delta").status == 409)
        #expect(try await browser.get("/admin/connections/nope").status == 404)
        await server.stop()
        await gateway.shutdown()
    }

    @Test func overviewShowsFiguresTimelineAndJSONForStatus() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        let (server, gateway) = try await start(simulator)
        let id = try await connect(gateway)
        let base = "https://127.0.0.1:\(gateway.port)"
        let ca = gateway.certificates.caCertificate
        // Forged pushes are refused and counted by reason.
        for number in 1...3 {
            let refused = try await curlRequest(
                base + "/webhooks/google", caFile: ca,
                arguments: [
                    "-X", "POST", "-H", "X-Goog-Channel-ID: no-such-channel", "-H", "X-Goog-Resource-State: exists",
                    "-H", "X-Goog-Message-Number: \(number)", "-H", "X-Goog-Resource-ID: r", "-H", "X-Goog-Channel-Token: t", "--data-binary", "",
                ])
            #expect(refused.status >= 400)
        }
        #expect(try await curlRequest(base + "/admin/api/overview", caFile: ca).status == 401)
        let response = try await curlRequest(base + "/admin/api/overview", caFile: ca, arguments: ["-H", "Authorization: Bearer \(gateway.adminToken)"])
        #expect(response.status == 200)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        #expect((json["connections"] as? [String: Any]).flatMap { $0["google"] as? [String: Any] }?["active"] as? Int == 1)
        #expect((json["missed_by_push"] as? [String: Any])?["google"] as? Int == 7)
        let rejected = (json["last_minute"] as? [String: Any])?["notifications_rejected"] as? [String: Any]
        #expect(rejected?["google/unknown_channel"] as? Int == 3, "\(String(describing: rejected))")
        let subscriptions = try #require(json["subscriptions"] as? [[String: Any]])
        #expect(subscriptions.count == 1)
        #expect(subscriptions.first?["connection_id"] as? String == id)
        #expect(subscriptions.first?["lapsed"] as? Bool == false)
        // One process on SQLite owns every partition.
        let partitions = try #require(json["partitions"] as? [String: Any])
        #expect(partitions["count"] as? Int == 256)
        let owners = try #require(partitions["owners"] as? [[String: Any]])
        #expect(owners.count == 1 && owners.first?["partitions"] as? Int == 256 && owners.first?["instance"] as? String == partitions["this_instance"] as? String)
        #expect(!response.body.contains("token") || !response.body.contains(gateway.adminToken))

        // A channel that expired before renewal is drawn red.
        let live = try #require(try await gateway.store.liveGoogleChannels(calendarKey: "\(id)/primary").first)
        var lapsed = live
        lapsed.id = "lapsed-channel"
        lapsed.expiresAt = Date().addingTimeInterval(-600)
        try await gateway.store.saveGoogleChannel(lapsed)

        let browser = ConsoleBrowser(gateway)
        #expect(try await browser.logIn().status == 303)
        let page = try await browser.get("/admin")
        #expect(page.status == 200)
        #expect(page.body.contains(#"<svg class="timeline" id="subscription-timeline""#))
        #expect(page.body.contains(#"data-lapsed="true""#) && page.body.contains(#"class="bar lapsed""#))
        #expect(page.body.contains(#"class="renew""#), "the planned renewal is marked")
        #expect(page.body.contains(#"<p class="big" id="notifications-rejected">"#) || page.body.contains(#"<span id="notifications-rejected">3</span>"#))
        #expect(page.body.contains("unknown_channel"))
        #expect(page.body.contains(#"<p class="big" id="missed-by-push">7</p>"#))
        #expect(page.body.contains(#"href="/admin/connections/\#(id)""#))
        let css = try await browser.get("/admin/console.css")
        #expect(css.status == 200)
        #expect(ConsoleBrowser.header("content-type", in: css.headers).first?.hasPrefix("text/css") == true)
        await server.stop()
        await gateway.shutdown()
    }

    @Test func fullSyncProgressShowsInTheAPIAndTheConsole() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        for index in 0..<7 {
            simulator.upsertEvent(calendar: "primary", timed("Event \(index)", "2026-12-0\(index + 1)T10:00:00Z", "2026-12-0\(index + 1)T11:00:00Z"))
        }
        let (server, gateway) = try await start(simulator, pageSize: 2)
        let id = try await connect(gateway)
        let response = try await curlRequest(
            "https://127.0.0.1:\(gateway.port)/api/v1/connections/\(id)", caFile: gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(gateway.apiToken)"]
        )
        let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        let progress = try #require((json["progress"] as? [[String: Any]])?.first, "\(response.body)")
        #expect(progress["calendar_id"] as? String == "primary")
        #expect(progress["phase"] as? String == "done")
        #expect(progress["pages_fetched"] as? Int == 4, "7 events at 2 a page")
        #expect(progress["appointments_fetched"] as? Int == 7)
        #expect(progress["appointments_applied"] as? Int == 7)
        let browser = ConsoleBrowser(gateway)
        #expect(try await browser.logIn().status == 303)
        let page = try await browser.get("/admin/connections/\(id)").body
        #expect(page.contains(#"<span class="progress done">done</span> 4 pages · 7 fetched · 7 applied"#), "\(page)")
        await server.stop()
        await gateway.shutdown()
    }
}
