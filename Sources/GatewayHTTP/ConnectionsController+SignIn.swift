import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore

/// Sign-in: a user connects a calendar by consenting at the provider (OAuth authorization code with PKCE and
/// `state`) instead of LeadCenter pasting a refresh token. Everything provider-specific comes from the plugins'
/// `OAuthSignIn` descriptions.
extension ConnectionsController {
    /// Handler keys and what they serve.
    static let signInSpecs: [String: RouteHandlerSpec] = [
        "api.connections.authorizations.create": spec(["POST"], body: 4096),
        "api.connections.authorizations.get": spec(["GET"]),
        "oauth.callback": spec(["GET"]),
    ]

    func registerSignIn(into registry: inout RouteRegistry) {
        registry.register(
            RouteHandler(key: "api.connections.authorizations.create", spec: Self.signInSpecs["api.connections.authorizations.create"]!) { call in
                try await beginSignIn(call)
            })
        registry.register(
            RouteHandler(key: "api.connections.authorizations.get", spec: Self.signInSpecs["api.connections.authorizations.get"]!) { call in
                guard let id = call.parameters["id"], let authorization = try await store.signInAuthorization(id: id) else {
                    throw GatewayHTTPError.notFound("no sign-in with this id")
                }
                return Self.json(try await representation(authorization, consentURL: nil))
            })
        registry.register(
            RouteHandler(key: "oauth.callback", spec: Self.signInSpecs["oauth.callback"]!) { call in
                try await signInCallback(call)
            })
    }

    /// `POST /api/v1/connections/authorizations`: a pending sign-in and the consent URL to send the user to.
    func beginSignIn(_ call: RouteCall) async throws -> Response {
        let object = try Self.strictObject(call.body, allowed: ["user_id", "provider", "visibility", "account_id", "connection_id"])
        let name = try Self.required(object, "provider", max: 64)
        let userID = try Self.required(object, "user_id", max: 256)
        guard let provider = Provider(rawValue: name), knownProviders.contains(provider) else {
            throw GatewayHTTPError.badRequest(
                "provider \"\(name)\" is not one calgate connects (\(knownProviders.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        guard let signIn = signIns[provider], let sealer, codeExchanger != nil, connectors[provider] != nil else {
            if shapes.first(where: { $0.provider == provider })?.shape != .refreshToken {
                throw GatewayHTTPError.badRequest(
                    "\(provider.displayName) connections are not made by signing in; connect them with POST /api/v1/connections"
                )
            }
            throw GatewayHTTPError.unavailable(
                "\(provider.displayName) sign-in is not configured on this gateway: set \(provider.rawValue).client_id and \(provider.rawValue).client_secret"
            )
        }
        let (visibility, accountID) = try Self.visibilityAndAccount(object)
        let reconnecting = try Self.string(object, "connection_id")
        if let reconnecting {
            // A reconnect: the connection must be this user's, with this provider.
            guard let connection = try await store.connection(id: reconnecting) else {
                throw GatewayHTTPError.notFound("no connection with id \(reconnecting)")
            }
            guard connection.provider == provider, connection.userID == userID else {
                throw GatewayHTTPError.badRequest("connection \(reconnecting) is not user \(userID)'s \(provider.displayName) connection")
            }
        } else {
            // Refused now rather than after the user consented.
            try await checkCap(userID: userID)
        }
        var random = SystemRandomNumberGenerator()
        let id = SignInRandom.authorizationID(using: &random)
        let state = SignInRandom.state(using: &random)
        let pkce = PKCE(using: &random)
        let authorization = SignInAuthorization(
            id: id, provider: provider, userID: userID, accountID: accountID, visibility: visibility, reconnectConnectionID: reconnecting,
            state: state,
            sealedVerifier: try sealer.seal(Array(pkce.verifier.utf8), context: SignInAuthorization.sealingContext(id: id, state: state)),
            now: clock.now()
        )
        try await store.createSignInAuthorization(authorization)
        // Old sign-ins go as new ones start (their result was LeadCenter's to read within the retention).
        do {
            _ = try await store.deleteSignInAuthorizations(createdBefore: authorization.createdAt.addingTimeInterval(-SignInAuthorization.retention))
        } catch {
            logger.warning("removing old sign-ins failed", metadata: ["error": "\(error)"])
        }
        logger.info("sign-in started", metadata: ["provider": "\(provider.rawValue)", "authorization.id": "\(id)"])
        var response = Self.json(
            try await representation(authorization, consentURL: signIn.consentURL(state: state, codeChallenge: pkce.challenge))
        )
        response.status = .created
        return response
    }

    /// `GET /oauth/{provider}/callback`: claims `state` (once), exchanges the code with the verifier, runs today's
    /// connect (or reconnect) path and reports the result (a redirect to LeadCenter's page, or a small page).
    func signInCallback(_ call: RouteCall) async throws -> Response {
        let query = call.request.uri.queryParameters
        func parameter(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : String($0.prefix(2048)) } }
        guard let state = parameter("state") else {
            return Self.resultPage(
                status: .badRequest, title: "Sign-in failed",
                message: "The sign-in link carried no state; start the sign-in again from LeadCenter.")
        }
        let now = clock.now()
        var authorization: SignInAuthorization
        switch try await store.claimSignInState(state, at: now) {
        case .unknown:
            logger.notice("sign-in callback with an unknown state", metadata: ["provider": "\(call.parameters["provider"] ?? "")"])
            return Self.resultPage(
                status: .badRequest, title: "Sign-in failed",
                message: "This sign-in is unknown to calgate (the link is wrong or from another gateway); start the sign-in again from LeadCenter.")
        case .alreadyClaimed(let used):
            logger.notice("sign-in callback replayed", metadata: ["provider": "\(used.provider.rawValue)", "authorization.id": "\(used.id)"])
            return Self.resultPage(
                status: .conflict, title: "Sign-in link already used",
                message: "This sign-in was already completed or refused; nothing was changed. Start a new sign-in from LeadCenter if needed.")
        case .claimed(let claimed):
            authorization = claimed
        }
        if call.parameters["provider"] != authorization.provider.rawValue {
            authorization.fail(
                SignInFailure(.providerError, "the callback arrived at another provider's address; start a new sign-in"), now: now)
            return try await finish(authorization)
        }
        switch authorization.callback(
            claimed: true, code: parameter("code"), error: parameter("error"), errorDescription: parameter("error_description"), now: now
        ) {
        case .refuseReplay:
            return Self.resultPage(
                status: .conflict, title: "Sign-in link already used",
                message: "This sign-in was already completed or refused; nothing was changed.")
        case .finished:
            return try await finish(authorization)
        case .exchange(let code):
            let result = await exchange(authorization, code: code)
            switch authorization.exchanged(result, now: clock.now()) {
            case .finished:
                return try await finish(authorization)
            case .connect(let fields):
                do {
                    let connection: Connection
                    if let existing = authorization.reconnectConnectionID {
                        connection = try await providerCall(authorization.provider, connecting: true) {
                            try await $0.reconnect(connectionID: existing, fields: fields)
                        }
                    } else {
                        connection = try await connect(
                            authorization.provider,
                            request: ConnectRequest(userID: authorization.userID, accountID: authorization.accountID, fields: fields),
                            visibility: authorization.visibility
                        )
                    }
                    authorization.connected(connectionID: connection.id, now: clock.now())
                } catch let error as GatewayHTTPError {
                    authorization.fail(SignInFailure(.connectFailed, error.message), now: clock.now())
                } catch {
                    authorization.fail(SignInFailure(.connectFailed, "connecting failed: \(error)"), now: clock.now())
                }
                return try await finish(authorization)
            }
        }
    }

    /// Opens the verifier and exchanges the code; never logs either.
    func exchange(_ authorization: SignInAuthorization, code: String) async -> Result<[String: String], SignInFailure> {
        guard let signIn = signIns[authorization.provider], let sealer, let codeExchanger else {
            return .failure(SignInFailure(.tokenUnreachable, "\(authorization.provider.displayName) sign-in is no longer configured on this gateway"))
        }
        let verifier: String
        do {
            verifier = String(decoding: try sealer.open(authorization.sealedVerifier, context: authorization.sealingContext), as: UTF8.self)
        } catch {
            return .failure(SignInFailure(.tokenRefused, "the sign-in's stored verifier could not be opened (was the secret key changed?); start a new sign-in"))
        }
        do {
            let answer = try await codeExchanger.postTokenRequest(tokenURL: signIn.tokenURL, body: signIn.tokenRequestBody(code: code, codeVerifier: verifier))
            return signIn.connectFields(tokenStatus: answer.status, body: answer.body)
        } catch {
            logger.warning("sign-in token endpoint unreachable", metadata: ["provider": "\(authorization.provider.rawValue)", "error": "\(error)"])
            return .failure(
                SignInFailure(.tokenUnreachable, "\(authorization.provider.displayName)'s token endpoint could not be reached; start a new sign-in"))
        }
    }

    /// Records the end of a sign-in and answers the browser.
    func finish(_ authorization: SignInAuthorization) async throws -> Response {
        _ = try await store.finishSignInAuthorization(authorization)
        logger.info(
            "sign-in finished",
            metadata: [
                "provider": "\(authorization.provider.rawValue)", "authorization.id": "\(authorization.id)", "status": "\(authorization.status.rawValue)",
                "reason": "\(authorization.failure?.code.rawValue ?? "")", "connection.id": "\(authorization.connectionID ?? "")",
            ])
        if let page = signInResultURL {
            var pairs = [("authorization_id", authorization.id), ("status", authorization.status.rawValue)]
            if let failure = authorization.failure { pairs.append(("reason", failure.code.rawValue)) }
            let location = page + (page.contains("?") ? "&" : "?") + OAuthSignIn.form(pairs)
            return Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
        }
        if authorization.status == .connected {
            return Self.resultPage(
                status: .ok, title: "\(authorization.provider.calendarName) connected",
                message: "Your calendar is connected and synced. You can close this window.",
                authorization: authorization)
        }
        return Self.resultPage(
            status: .badRequest, title: "\(authorization.provider.displayName) sign-in failed",
            message: authorization.failure?.message ?? "The sign-in did not finish.", authorization: authorization)
    }

    /// A sign-in as LeadCenter sees it (never its state or verifier); `consentURL` only when it was just created.
    func representation(_ authorization: SignInAuthorization, consentURL: String?) async throws -> JSONValue {
        let formatter = ISO8601DateFormatter()
        let (status, failure) = authorization.current(now: clock.now())
        var object: [String: JSONValue] = [
            "id": .string(authorization.id), "provider": .string(authorization.provider.rawValue), "user_id": .string(authorization.userID),
            "status": .string(status.rawValue), "reason": failure.map { .string($0.code.rawValue) } ?? .null,
            "message": failure.map { .string($0.message) } ?? .null,
            "reconnect_connection_id": authorization.reconnectConnectionID.map(JSONValue.string) ?? .null,
            "created_at": .string(formatter.string(from: authorization.createdAt)),
            "expires_at": .string(formatter.string(from: authorization.expiresAt)),
            "connection": .null,
        ]
        if let consentURL { object["authorization_url"] = .string(consentURL) }
        if status == .connected, let id = authorization.connectionID, let connection = try await store.connection(id: id) {
            object["connection"] = try await representation(connection)
        }
        return .object(object)
    }

    /// The small HTML page the callback answers when LeadCenter has no result page configured.
    static func resultPage(status: HTTPResponse.Status, title: String, message: String, authorization: SignInAuthorization? = nil) -> Response {
        var details = ""
        if let authorization {
            details = """
                <p id="authorization" data-status="\(authorization.status.rawValue)" data-reason="\(authorization.failure?.code.rawValue ?? "")">\
                Sign-in \(escape(authorization.id)): \(authorization.status.rawValue)</p>
                """
        }
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <meta name="viewport" content="width=device-width, initial-scale=1"></head>
            <body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem">
            <h1>\(escape(title))</h1>
            <p id="message">\(escape(message))</p>
            \(details)
            </body></html>
            """
        return Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
