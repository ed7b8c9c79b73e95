import CurlHTTP
import Foundation
import GatewayCore
import GoogleCalendar
import ProviderSimulators
import TestSupport
import Testing

/// Google sign-in through the API against the simulator's consent page and token endpoint, over real TLS on
/// loopback: the approved flow ends with a synced connection, and every bad input gets a clear answer and changes
/// nothing.
@Suite("Sign-in flow", .serialized)
struct SignInFlowTests {
    struct Setup {
        let simulator: GoogleSimulator
        let server: SimulatorServer
        let gateway: GatewayHarness
        var base: String { "https://127.0.0.1:\(gateway.port)" }

        func stop() async {
            await gateway.shutdown()
            await server.stop()
        }
    }

    func start(
        clock: any GatewayClock = SystemGatewayClock(), configure: @escaping @Sendable (inout GatewayConfiguration) -> Void = { _ in }
    ) async throws -> Setup {
        let simulator = GoogleSimulator()
        simulator.upsertEvent(calendar: "primary", timed("Kickoff", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("k1")]))
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let gateway = try await GatewayHarness(
            configure: { config in
                config.google.clientID = "cid"
                config.google.clientSecret = "csecret"
                config.google.authorizeURL = server.baseURL + "/o/oauth2/v2/auth"
                config.google.tokenURL = server.baseURL + "/token"
                config.publicURL = "https://127.0.0.1:9"
                configure(&config)
            },
            clock: clock,
            google: { store, sealer, config in
                GoogleConnectionSyncer(
                    client: GoogleCalendarClient(
                        http: try CurlHTTPClient(),
                        endpoints: GoogleEndpoints(tokenURL: config.google.tokenURL, apiBaseURL: server.baseURL + "/calendar/v3")),
                    store: store, sealer: sealer, clock: SystemGatewayClock(), webhookAddress: "https://localhost:9/webhooks/google"
                )
            })
        return Setup(simulator: simulator, server: server, gateway: gateway)
    }

    /// Runs `body` against a fresh simulator and gateway, stopping both however it ends.
    func withSetup(
        clock: any GatewayClock = SystemGatewayClock(), configure: @escaping @Sendable (inout GatewayConfiguration) -> Void = { _ in },
        _ body: (Setup) async throws -> Void
    ) async throws {
        let setup = try await start(clock: clock, configure: configure)
        do {
            try await body(setup)
        } catch {
            await setup.stop()
            throw error
        }
        await setup.stop()
    }

    func api(_ setup: Setup, _ path: String, _ arguments: [String] = [], token: String? = nil) async throws -> (status: Int, json: [String: Any]) {
        let response = try await curlRequest(
            setup.base + path, caFile: setup.gateway.certificates.caCertificate,
            arguments: ["-H", "Authorization: Bearer \(token ?? setup.gateway.apiToken)"] + arguments
        )
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
        return (response.status, json)
    }

    func begin(_ setup: Setup, _ body: String = #"{"user_id":"u1","provider":"google"}"#) async throws -> (status: Int, json: [String: Any]) {
        try await api(setup, "/api/v1/connections/authorizations", ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body])
    }

    /// Starts a sign-in and returns its id and consent URL.
    func started(_ setup: Setup, _ body: String = #"{"user_id":"u1","provider":"google"}"#) async throws -> (id: String, url: String) {
        let created = try await begin(setup, body)
        #expect(created.status == 201, "\(created.json)")
        return (try #require(created.json["id"] as? String), try #require(created.json["authorization_url"] as? String))
    }

    /// Opens the consent page and answers it as a person would (the form's own fields), returning where the
    /// simulator redirects the browser: the gateway's callback URL.
    func consent(_ setup: Setup, _ url: String, _ decision: String) async throws -> String {
        let page = try await curlRequest(url, caFile: setup.gateway.certificates.caCertificate)
        #expect(page.status == 200, "\(page.body)")
        let request = try #require(page.body.range(of: #"name="request" value=""#).map { String(page.body[$0.upperBound...].prefix { $0 != "\"" }) })
        let answer = try await curlRequest(
            setup.server.baseURL + "/o/oauth2/v2/auth/decision", caFile: setup.gateway.certificates.caCertificate,
            arguments: ["-X", "POST", "--data-binary", "request=\(request)&decision=\(decision)"]
        )
        #expect(answer.status == 303)
        return try #require(Self.header("location", in: answer.headers))
    }

    /// Follows a callback URL to this gateway (the redirect URI names the configured public URL).
    func callback(_ setup: Setup, _ location: String) async throws -> (status: Int, body: String, headers: String) {
        let path = try #require(location.range(of: "/oauth/").map { String(location[$0.lowerBound...]) })
        return try await curlRequest(setup.base + path, caFile: setup.gateway.certificates.caCertificate)
    }

    static func header(_ name: String, in headers: String) -> String? {
        headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix(name + ":") }.map {
            String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces)
        }
    }

    static func query(_ url: String, _ name: String) -> String? {
        URLComponents(string: url)?.queryItems?.first { $0.name == name }?.value
    }

    func authorization(_ setup: Setup, _ id: String) async throws -> [String: Any] {
        let answer = try await api(setup, "/api/v1/connections/authorizations/\(id)")
        #expect(answer.status == 200)
        return answer.json
    }

    func connectionCount(_ setup: Setup) async throws -> Int {
        try await setup.gateway.store.connections(userID: nil).count
    }

    @Test func approvedConsentEndsWithASyncedConnection() async throws {
        try await withSetup { setup in
            let (id, url) = try await started(setup)
            #expect(id.hasPrefix("au_"))
            #expect(Self.query(url, "access_type") == "offline" && Self.query(url, "prompt") == "consent")
            #expect(Self.query(url, "code_challenge_method") == "S256" && Self.query(url, "code_challenge")?.count == 43)
            #expect(Self.query(url, "redirect_uri") == "https://127.0.0.1:9/oauth/google/callback")
            #expect(Self.query(url, "scope")?.contains("https://www.googleapis.com/auth/calendar.events") == true)
            let pending = try await authorization(setup, id)
            #expect(pending["status"] as? String == "pending" && pending["connection"] is NSNull && pending["authorization_url"] == nil)

            let result = try await callback(setup, try await consent(setup, url, "approve"))
            #expect(result.status == 200 && result.body.contains(#"data-status="connected""#), "\(result.body)")
            let done = try await authorization(setup, id)
            #expect(done["status"] as? String == "connected")
            let connection = try #require(done["connection"] as? [String: Any])
            #expect(connection["state"] as? String == "active" && connection["user_id"] as? String == "u1")
            #expect((connection["calendars"] as? [[String: Any]])?.first?["selected"] as? Bool == true)
            let appointments = try await api(setup, "/api/v1/appointments?user=u1")
            #expect((appointments.json["appointments"] as? [[String: Any]])?.map { $0["id"] as? String } == ["k1"], "the full sync ran")
            #expect(setup.simulator.channels.count == 1, "the calendar is watched")
            // The verifier and refresh token are sealed: neither is in the database file in the clear.
            let database = try Data(contentsOf: URL(fileURLWithPath: setup.gateway.databasePath))
            #expect(database.range(of: Data("1//sim-".utf8)) == nil)
        }
    }

    @Test func aReplayedCallbackIsRefusedAndChangesNothing() async throws {
        try await withSetup { setup in
            let (id, url) = try await started(setup)
            let location = try await consent(setup, url, "approve")
            #expect(try await callback(setup, location).status == 200)
            let replay = try await callback(setup, location)
            #expect(replay.status == 409 && replay.body.contains("already"), "\(replay.body)")
            #expect(try await connectionCount(setup) == 1)
            #expect(try await authorization(setup, id)["status"] as? String == "connected")
        }
    }

    @Test func unknownAndMissingStatesAreRefused() async throws {
        try await withSetup { setup in
            let unknown = try await curlRequest(
                setup.base + "/oauth/google/callback?state=not-a-state&code=c", caFile: setup.gateway.certificates.caCertificate)
            #expect(unknown.status == 400 && unknown.body.contains("unknown to calgate"))
            let missing = try await curlRequest(setup.base + "/oauth/google/callback?code=c", caFile: setup.gateway.certificates.caCertificate)
            #expect(missing.status == 400 && missing.body.contains("no state"))
            #expect(try await connectionCount(setup) == 0)
        }
    }

    @Test func anExpiredStateFailsTheSignIn() async throws {
        let clock = ManualGatewayClock()
        try await withSetup(clock: clock) { setup in
            let (id, url) = try await started(setup)
            let location = try await consent(setup, url, "approve")
            clock.advance(by: 601)
            #expect(try await authorization(setup, id)["reason"] as? String == "expired", "an expired sign-in reads as failed before any callback")
            let result = try await callback(setup, location)
            #expect(result.status == 400 && result.body.contains("10 minutes"), "\(result.body)")
            let failed = try await authorization(setup, id)
            #expect(failed["status"] as? String == "failed" && failed["reason"] as? String == "expired")
            #expect(try await connectionCount(setup) == 0)
            #expect(setup.simulator.consent.outstandingCodes == 1, "the code was never presented")
        }
    }

    @Test func aDeniedConsentFailsWithTheReason() async throws {
        try await withSetup { setup in
            let (id, url) = try await started(setup)
            let location = try await consent(setup, url, "deny")
            #expect(Self.query(location, "error") == "access_denied")
            let result = try await callback(setup, location)
            #expect(result.status == 400 && result.body.contains("declined"), "\(result.body)")
            let failed = try await authorization(setup, id)
            #expect(failed["status"] as? String == "failed" && failed["reason"] as? String == "access_denied")
            #expect((failed["message"] as? String)?.contains("declined") == true)
            #expect(try await connectionCount(setup) == 0)
        }
    }

    @Test func aCallbackWithoutACodeFails() async throws {
        try await withSetup { setup in
            let (id, url) = try await started(setup)
            let state = try #require(Self.query(url, "state"))
            let result = try await callback(setup, "https://127.0.0.1:9/oauth/google/callback?state=\(state)")
            #expect(result.status == 400 && result.body.contains("no authorization code"))
            #expect(try await authorization(setup, id)["reason"] as? String == "missing_code")
            #expect(try await connectionCount(setup) == 0)
        }
    }

    @Test func aReusedCodeOrOneFromAnotherSignInIsRefusedByTheTokenEndpoint() async throws {
        try await withSetup { setup in
            // A's code presented with B's state: B's verifier does not match A's challenge (PKCE), and the code is spent.
            let a = try await started(setup)
            let aLocation = try await consent(setup, a.url, "approve")
            let aCode = try #require(Self.query(aLocation, "code"))
            let b = try await started(setup, #"{"user_id":"u2","provider":"google"}"#)
            let bState = try #require(Self.query(b.url, "state"))
            let crossed = try await callback(setup, "https://127.0.0.1:9/oauth/google/callback?state=\(bState)&code=\(aCode)")
            #expect(crossed.status == 400 && crossed.body.contains("refused the authorization code"), "\(crossed.body)")
            let bFailed = try await authorization(setup, b.id)
            #expect(bFailed["reason"] as? String == "token_refused" && (bFailed["message"] as? String)?.contains("invalid_grant") == true)
            // A's own callback now finds its code used.
            let reused = try await callback(setup, aLocation)
            #expect(reused.status == 400 && reused.body.contains("invalid_grant"), "\(reused.body)")
            #expect(try await authorization(setup, a.id)["reason"] as? String == "token_refused")
            #expect(try await connectionCount(setup) == 0)
        }
    }

    @Test func tooFewGrantedScopesFailWithoutAConnection() async throws {
        try await withSetup { setup in
            setup.simulator.consent.grantScopes(["https://www.googleapis.com/auth/calendar.events"])
            let (id, url) = try await started(setup)
            let result = try await callback(setup, try await consent(setup, url, "approve"))
            #expect(result.status == 400 && result.body.contains("calendar.calendarlist.readonly"), "\(result.body)")
            #expect(try await authorization(setup, id)["reason"] as? String == "missing_scope")
            #expect(try await connectionCount(setup) == 0)
        }
    }

    @Test func aConsentWithoutARefreshTokenIsAClearFailure() async throws {
        try await withSetup { setup in
            setup.simulator.consent.withholdRefreshToken(true)
            let (id, url) = try await started(setup)
            let result = try await callback(setup, try await consent(setup, url, "approve"))
            #expect(result.status == 400 && result.body.contains("no refresh token"), "\(result.body)")
            #expect(try await authorization(setup, id)["reason"] as? String == "no_refresh_token")
            #expect(try await connectionCount(setup) == 0)
        }
    }

    @Test func theCallbackRedirectsToLeadCentersResultPage() async throws {
        let resultPage: @Sendable (inout GatewayConfiguration) -> Void = { $0.signInResultURL = "https://leadcenter.example/calendar/result?tab=calendars" }
        try await withSetup(configure: resultPage) { setup in
            let denied = try await started(setup)
            let failed = try await callback(setup, try await consent(setup, denied.url, "deny"))
            #expect(failed.status == 303)
            let location = try #require(Self.header("location", in: failed.headers))
            #expect(location == "https://leadcenter.example/calendar/result?tab=calendars&authorization_id=\(denied.id)&status=failed&reason=access_denied")
            let approved = try await started(setup)
            let connected = try await callback(setup, try await consent(setup, approved.url, "approve"))
            #expect(Self.header("location", in: connected.headers) == "https://leadcenter.example/calendar/result?tab=calendars&authorization_id=\(approved.id)&status=connected")
        }
    }

    @Test func reconnectGoesThroughTheSameFlow() async throws {
        try await withSetup { setup in
            let first = try await started(setup)
            #expect(try await callback(setup, try await consent(setup, first.url, "approve")).status == 200)
            let connectionID = try #require((try await authorization(setup, first.id)["connection"] as? [String: Any])?["id"] as? String)
            try await setup.gateway.store.setConnectionState(id: connectionID, state: .needsReconnect, reason: "invalid_grant")
            let again = try await started(setup, #"{"user_id":"u1","provider":"google","connection_id":"\#(connectionID)"}"#)
            #expect(try await callback(setup, try await consent(setup, again.url, "approve")).status == 200)
            let done = try await authorization(setup, again.id)
            #expect(done["reconnect_connection_id"] as? String == connectionID)
            let connection = try #require(done["connection"] as? [String: Any])
            #expect(connection["id"] as? String == connectionID && connection["state"] as? String == "active")
            #expect(try await connectionCount(setup) == 1)
        }
    }

    @Test func badRequestsToStartASignInAreRefusedClearly() async throws {
        try await withSetup { setup in
            let cases: [(String, Int, String)] = [
                (#"{"user_id":"u1","provider":"yahoo"}"#, 400, "not one calgate connects"),
                (#"{"provider":"google"}"#, 400, "user_id is required"),
                (#"{"user_id":"u1","provider":"google","refresh_token":"x"}"#, 400, "refresh_token"),
                (#"{"user_id":"u1","provider":"google","visibility":"nobody"}"#, 400, "visibility"),
                (#"{"user_id":"u1","provider":"redtail"}"#, 400, "not made by signing in"),
                (#"{"user_id":"u1","provider":"microsoft"}"#, 503, "microsoft.client_id"),
                (#"{"user_id":"u1","provider":"google","connection_id":"gc_none"}"#, 404, "no connection"),
                ("not json", 400, "body"),
            ]
            for (body, status, message) in cases {
                let answer = try await begin(setup, body)
                let text = ((answer.json["error"] as? [String: Any])?["message"] as? String) ?? ""
                #expect(answer.status == status && text.contains(message), "\(body) → \(answer.status) \(text)")
            }
            let unauthorized = try await api(
                setup, "/api/v1/connections/authorizations", ["-X", "POST", "--data-binary", #"{"user_id":"u1","provider":"google"}"#],
                token: "wrong-token-0123456789abcdef")
            #expect(unauthorized.status == 401)
            #expect(try await api(setup, "/api/v1/connections/authorizations/au_none").status == 404)
        }
    }

    @Test func theConnectionCapIsCheckedBeforeConsent() async throws {
        let capOne: @Sendable (inout GatewayConfiguration) -> Void = { $0.maxConnectionsPerUser = 1 }
        try await withSetup(configure: capOne) { setup in
            let first = try await started(setup)
            #expect(try await callback(setup, try await consent(setup, first.url, "approve")).status == 200)
            let refused = try await begin(setup)
            #expect(refused.status == 409)
        }
    }
}
