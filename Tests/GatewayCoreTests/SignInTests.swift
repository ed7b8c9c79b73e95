import Foundation
import Testing

@testable import GatewayCore

/// A deterministic generator (SplitMix64) so generated states and verifiers can be pinned.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Sign-in: SHA-256, PKCE and state")
struct SignInPrimitivesTests {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func sha256MatchesTheFIPSVectors() {
        #expect(hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(SHA256.hash([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // A million 'a's crosses many blocks.
        #expect(hex(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func pkceS256MatchesRFC7636AppendixB() throws {
        let pkce = try #require(PKCE(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
        #expect(pkce.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        #expect(PKCE.method == "S256")
    }

    @Test func generatedVerifiersAreLongUnreservedAndFresh() throws {
        var generator = SeededGenerator(state: 1)
        let first = PKCE(using: &generator)
        let second = PKCE(using: &generator)
        #expect(first.verifier.utf8.count == 43 && second.verifier.utf8.count == 43)
        #expect(first.verifier != second.verifier)
        #expect(first.verifier.utf8.allSatisfy(Base64URL.isUnreserved))
        #expect(PKCE(verifier: first.verifier) != nil)
        #expect(PKCE(verifier: "too-short") == nil)
        #expect(PKCE(verifier: String(repeating: "a", count: 129)) == nil)
        #expect(PKCE(verifier: String(repeating: "a", count: 42) + "+") == nil)
        #expect(PKCE().verifier != PKCE().verifier, "the system generator gives a new verifier each time")
    }

    @Test func stateAndIdsAreRandomAndURLSafe() {
        var generator = SeededGenerator(state: 7)
        let state = SignInRandom.state(using: &generator)
        #expect(state.utf8.count == 43 && state.utf8.allSatisfy(Base64URL.isUnreserved))
        #expect(SignInRandom.state(using: &generator) != state)
        let id = SignInRandom.authorizationID(using: &generator)
        #expect(id.hasPrefix("au_") && id.count == 35 && id.dropFirst(3).allSatisfy(\.isHexDigit))
    }

    @Test func base64URLHasNoPadding() {
        #expect(Base64URL.encode(Array("f".utf8)) == "Zg")
        #expect(Base64URL.encode(Array("fo".utf8)) == "Zm8")
        #expect(Base64URL.encode(Array("foo".utf8)) == "Zm9v")
        #expect(Base64URL.encode([0xfb, 0xff]) == "-_8")
    }
}

@Suite("Sign-in: the OAuth description")
struct OAuthSignInTests {
    let signIn = OAuthSignIn(
        provider: .google, clientID: "client 1", clientSecret: "s&cret", authorizeURL: "https://accounts.example/auth",
        tokenURL: "https://oauth.example/token", redirectURI: "https://gw.example/oauth/google/callback",
        scopes: ["https://www.googleapis.com/auth/calendar.events", "https://www.googleapis.com/auth/calendar.calendarlist.readonly"],
        extraParameters: ["access_type": "offline", "prompt": "consent"],
        requiredScopes: [
            ["https://www.googleapis.com/auth/calendar.events", "https://www.googleapis.com/auth/calendar"],
            ["https://www.googleapis.com/auth/calendar.calendarlist.readonly", "https://www.googleapis.com/auth/calendar"],
        ]
    )

    @Test func consentURLCarriesEveryParameterEncoded() throws {
        let url = signIn.consentURL(state: "st-1", codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuDUVMcJ4aI")
        let components = try #require(URLComponents(string: url))
        let items = Dictionary(uniqueKeysWithValues: (components.queryItems ?? []).map { ($0.name, $0.value ?? "") })
        #expect(url.hasPrefix("https://accounts.example/auth?response_type=code&"))
        #expect(items["client_id"] == "client 1")
        #expect(items["redirect_uri"] == "https://gw.example/oauth/google/callback")
        #expect(items["scope"] == signIn.scopes.joined(separator: " "))
        #expect(items["state"] == "st-1")
        #expect(items["code_challenge"] == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuDUVMcJ4aI")
        #expect(items["code_challenge_method"] == "S256")
        #expect(items["access_type"] == "offline" && items["prompt"] == "consent")
        #expect(!url.contains(" ") && !url.contains("s&cret"), "spaces encoded; the secret never in the consent URL")
    }

    @Test func tokenRequestIsTheAuthorizationCodeGrantWithTheVerifier() {
        let body = signIn.tokenRequestBody(code: "4/0Ab+c", codeVerifier: "v" + String(repeating: "x", count: 42))
        #expect(body.hasPrefix("grant_type=authorization_code&code=4%2F0Ab%2Bc&redirect_uri=https%3A%2F%2Fgw.example%2Foauth%2Fgoogle%2Fcallback"))
        #expect(body.contains("&client_id=client%201&client_secret=s%26cret&code_verifier=vxxx"))
    }

    func answer(_ object: [String: JSONValue]) -> [UInt8] { JSONValue.object(object).serialized() }

    @Test func aGrantWithARefreshTokenAndTheScopesBecomesTodaysConnectFields() throws {
        let result = signIn.connectFields(
            tokenStatus: 200,
            body: answer([
                "access_token": .string("ya29.x"), "refresh_token": .string("1//r"), "expires_in": .integer(3599),
                "scope": .string("https://www.googleapis.com/auth/calendar.calendarlist.readonly https://www.googleapis.com/auth/calendar.events"),
            ]))
        #expect(try result.get() == ["client_id": "client 1", "client_secret": "s&cret", "refresh_token": "1//r"])
        // The broad `calendar` scope satisfies both needs.
        let broad = signIn.connectFields(
            tokenStatus: 200,
            body: answer(["access_token": .string("a"), "refresh_token": .string("r"), "scope": .string("https://www.googleapis.com/auth/calendar")]))
        #expect((try? broad.get()) != nil)
    }

    @Test func aRefusalAMissingScopeAndAMissingRefreshTokenAreClearFailures() {
        func failure(_ status: Int, _ object: [String: JSONValue]) -> SignInFailure? {
            if case .failure(let failure) = signIn.connectFields(tokenStatus: status, body: answer(object)) { return failure }
            return nil
        }
        let refused = failure(400, ["error": .string("invalid_grant"), "error_description": .string("Malformed auth code.")])
        #expect(refused?.code == .tokenRefused)
        #expect(refused?.message.contains("(invalid_grant)") == true)
        #expect(refused?.message.contains("Malformed") == false, "the provider's description is not repeated")
        #expect(failure(400, ["error": .string("<script>")])?.message.contains("HTTP 400") == true, "a malformed error code is not repeated")
        #expect(failure(500, [:])?.message.contains("HTTP 500") == true)
        let narrow = failure(200, ["access_token": .string("a"), "refresh_token": .string("r"), "scope": .string("https://www.googleapis.com/auth/calendar.events")])
        #expect(narrow?.code == .missingScope)
        #expect(narrow?.message.contains("calendar.calendarlist.readonly") == true)
        let noRefresh = failure(200, ["access_token": .string("a"), "scope": .string(signIn.scopes.joined(separator: " "))])
        #expect(noRefresh?.code == .noRefreshToken)
        #expect(failure(200, ["refresh_token": .string("r")])?.code == .tokenRefused, "no access token: not a grant")
    }

    @Test func prefixedGrantedScopesCompareWithoutThePrefixAndCase() {
        var graph = signIn
        graph.requiredScopes = [["Calendars.ReadWrite"]]
        graph.grantedScopePrefix = "https://graph.microsoft.com/"
        #expect(graph.missingScopes(granted: ["https://graph.microsoft.com/calendars.readwrite"]).isEmpty)
        #expect(graph.missingScopes(granted: ["https://graph.microsoft.com/Calendars.Read"]) == ["Calendars.ReadWrite"])
    }

    @Test func redirectURIIsUnderThePublicURL() {
        #expect(OAuthSignIn.redirectURI(publicURL: "https://gw.example", provider: .microsoft) == "https://gw.example/oauth/microsoft/callback")
    }
}

@Suite("Sign-in: the pending authorization, step by step")
struct SignInAuthorizationTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func pending(_ clock: ManualGatewayClock) -> SignInAuthorization {
        SignInAuthorization(id: "au_1", provider: .google, userID: "u1", state: "st", sealedVerifier: [1, 2, 3], now: clock.now())
    }

    @Test func approvedCodeExchangedAndConnected() {
        let clock = ManualGatewayClock(start: start)
        var authorization = pending(clock)
        #expect(authorization.status == .pending && authorization.expiresAt == start.addingTimeInterval(600))
        clock.advance(by: 30)
        #expect(authorization.callback(claimed: true, code: "c1", error: nil, errorDescription: nil, now: clock.now()) == .exchange(code: "c1"))
        #expect(authorization.status == .pending, "nothing is recorded before the exchange")
        let fields = ["client_id": "c", "client_secret": "s", "refresh_token": "r"]
        #expect(authorization.exchanged(.success(fields), now: clock.now()) == .connect(fields: fields))
        authorization.connected(connectionID: "gc_1", now: clock.now())
        #expect(authorization.status == .connected && authorization.connectionID == "gc_1" && authorization.finishedAt == clock.now())
        // Finished is final: a later failure does not overwrite it.
        authorization.fail(SignInFailure(.connectFailed, "late"), now: clock.now())
        #expect(authorization.status == .connected && authorization.failure == nil)
    }

    @Test func expiryAtTenMinutesWithTheTestClock() {
        let clock = ManualGatewayClock(start: start)
        var authorization = pending(clock)
        clock.advance(by: 599)
        #expect(authorization.current(now: clock.now()).status == .pending)
        clock.advance(by: 1)
        let current = authorization.current(now: clock.now())
        #expect(current.status == .failed && current.failure?.code == .expired, "read as expired without a write")
        #expect(authorization.callback(claimed: true, code: "c1", error: nil, errorDescription: nil, now: clock.now()) == .finished)
        #expect(authorization.status == .failed && authorization.failure?.code == .expired)
    }

    @Test func deniedMissingCodeAndProviderErrorsFail() {
        let clock = ManualGatewayClock(start: start)
        var denied = pending(clock)
        #expect(denied.callback(claimed: true, code: nil, error: "access_denied", errorDescription: "The user denied", now: clock.now()) == .finished)
        #expect(denied.failure?.code == .accessDenied && denied.failure?.message.contains("declined") == true)
        var missing = pending(clock)
        #expect(missing.callback(claimed: true, code: "", error: nil, errorDescription: nil, now: clock.now()) == .finished)
        #expect(missing.failure?.code == .missingCode)
        var other = pending(clock)
        #expect(other.callback(claimed: true, code: nil, error: "server_error", errorDescription: nil, now: clock.now()) == .finished)
        #expect(other.failure?.code == .providerError && other.failure?.message.contains("server_error") == true)
        var hostile = pending(clock)
        _ = hostile.callback(claimed: true, code: nil, error: "<b>x</b>", errorDescription: "<script>", now: clock.now())
        #expect(hostile.failure?.code == .providerError && hostile.failure?.message.contains("<") == false)
    }

    @Test func aStateClaimedBeforeIsRefusedAndChangesNothing() {
        let clock = ManualGatewayClock(start: start)
        var authorization = pending(clock)
        let before = authorization
        #expect(authorization.callback(claimed: false, code: "c1", error: nil, errorDescription: nil, now: clock.now()) == .refuseReplay)
        #expect(authorization == before)
        authorization.fail(SignInFailure(.accessDenied, "no"), now: clock.now())
        let failed = authorization
        #expect(authorization.callback(claimed: true, code: "c1", error: nil, errorDescription: nil, now: clock.now()) == .refuseReplay)
        #expect(authorization == failed)
    }

    @Test func aRefusedExchangeFails() {
        let clock = ManualGatewayClock(start: start)
        var authorization = pending(clock)
        _ = authorization.callback(claimed: true, code: "c1", error: nil, errorDescription: nil, now: clock.now())
        #expect(authorization.exchanged(.failure(SignInFailure(.tokenRefused, "invalid_grant")), now: clock.now()) == .finished)
        #expect(authorization.status == .failed && authorization.failure?.code == .tokenRefused)
    }

    @Test func theVerifierIsSealedForThisAuthorizationAndState() {
        #expect(SignInAuthorization.sealingContext(id: "au_1", state: "st") == "sign_in:au_1:st:code_verifier")
        #expect(pending(ManualGatewayClock(start: start)).sealingContext == "sign_in:au_1:st:code_verifier")
    }
}

@Suite("Sign-in: configuration")
struct SignInConfigurationTests {
    @Test func clientsScopesAndResultPageLoad() throws {
        let config = try GatewayConfiguration.parse(
            Data(
                #"""
                {"google": {"client_id": "g-id", "client_secret": "g-secret", "authorize_url": "http://127.0.0.1:9/auth",
                            "scopes": ["https://www.googleapis.com/auth/calendar"]},
                 "microsoft": {"client_id": "m-id", "client_secret": "m-secret"},
                 "sign_in_result_url": "https://leadcenter.example/calendar/connected?tab=1"}
                """#.utf8), file: "c.json")
        #expect(config.google.signInConfigured && config.microsoft.signInConfigured)
        #expect(config.google.authorizeURL == "http://127.0.0.1:9/auth")
        #expect(config.google.scopes == ["https://www.googleapis.com/auth/calendar"])
        #expect(config.microsoft.scopes == ["Calendars.ReadWrite", "offline_access"])
        #expect(config.signInResultURL == "https://leadcenter.example/calendar/connected?tab=1")
        #expect(!GatewayConfiguration().google.signInConfigured)
    }

    @Test func aHalfConfiguredProviderStopsStartUpWithAClearMessage() {
        let file = #expect(throws: ConfigurationError.self) {
            _ = try GatewayConfiguration.parse(Data(#"{"google": {"client_id": "g-id"}}"#.utf8), file: "c.json")
        }
        let text = "\(file.map { "\($0)" } ?? "")"
        #expect(text.contains("google.client_secret") && text.contains("half configured") && text.contains("CALGATE_GOOGLE_CLIENT_SECRET"), "\(text)")
        let environment = #expect(throws: ConfigurationError.self) {
            _ = try GatewayConfiguration().applying(environment: ["CALGATE_MICROSOFT_CLIENT_SECRET": "x"])
        }
        let envText = environment.map { "\($0)" } ?? ""
        #expect(envText.contains("microsoft.client_id") && envText.contains("half configured"), "\(envText)")
        #expect(throws: ConfigurationError.self) {
            _ = try GatewayConfiguration.parse(Data(#"{"google": {"scopes": []}}"#.utf8), file: "c.json")
        }
        #expect(throws: ConfigurationError.self) {
            _ = try GatewayConfiguration.parse(Data(#"{"sign_in_result_url": "leadcenter/page"}"#.utf8), file: "c.json")
        }
    }

    @Test func environmentSetsTheClients() throws {
        let config = try GatewayConfiguration().applying(environment: [
            "CALGATE_GOOGLE_CLIENT_ID": "g", "CALGATE_GOOGLE_CLIENT_SECRET": "gs", "CALGATE_SIGN_IN_RESULT_URL": "https://lc.example/done",
        ])
        #expect(config.google.clientID == "g" && config.google.clientSecret == "gs" && config.signInResultURL == "https://lc.example/done")
    }
}
