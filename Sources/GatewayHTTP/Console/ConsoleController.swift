import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import Mustache
import NIOCore

/// The operator console under `/admin`: server-rendered pages behind a login with the admin token, and the JSON
/// endpoints `calgate status` and the login-code exchange use.
///
/// Browser security: the session is a `__Host-` cookie (`Secure; HttpOnly; SameSite=Strict; Path=/`, with an expiry)
/// naming a server-side session; every state-changing form carries the session's CSRF token (the login form a
/// pre-login one, double-submitted with a short-lived cookie); cross-site form posts are refused by
/// `Sec-Fetch-Site` as well; every page is sent with a strict Content-Security-Policy (no scripts at all, styles only
/// from `/admin/console.css`), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.
public struct ConsoleController: Sendable {
    static let sessionCookie = "__Host-calgate_session"
    static let loginCookie = "__Host-calgate_login"
    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    let admin: AdminController
    let store: any GatewayStore
    let connectors: [Provider: any ConnectionManaging]
    let operations: (any ConsoleOperations)?
    let activity: GatewayActivity
    let progress: SyncProgressBoard?
    let sessions: ConsoleSessions
    let renewal: RenewalPolicy
    let clock: any GatewayClock
    let version: String
    let logger: Logger

    /// Creates the controller.
    public init(
        admin: AdminController, store: any GatewayStore, connectors: [any ConnectionManaging], operations: (any ConsoleOperations)?,
        activity: GatewayActivity, progress: SyncProgressBoard?, sessions: ConsoleSessions, renewal: RenewalPolicy,
        clock: any GatewayClock, version: String, logger: Logger
    ) {
        self.admin = admin
        self.store = store
        self.connectors = Dictionary(connectors.map { ($0.provider, $0) }, uniquingKeysWith: { first, _ in first })
        self.operations = operations
        self.activity = activity
        self.progress = progress
        self.sessions = sessions
        self.renewal = renewal
        self.clock = clock
        self.version = version
        self.logger = logger
    }

    /// Handler keys and what they serve (kept in step with `GatewayServer.catalog` by a test).
    static func spec(_methods methods: Set<String>, body: Int = 0) -> RouteHandlerSpec {
        RouteHandlerSpec(kind: .admin, defaultBodyLimit: body, methods: methods)
    }

    /// Every console handler key with its spec.
    static let specs: [String: RouteHandlerSpec] = [
        "console.stylesheet": spec(_methods: ["GET"]),
        "console.login.form": spec(_methods: ["GET"]),
        "console.login": spec(_methods: ["POST"], body: 4096),
        "console.logout": spec(_methods: ["POST"], body: 1024),
        "console.overview": spec(_methods: ["GET"]),
        "console.connection": spec(_methods: ["GET"]),
        "console.connection.disconnect.confirm": spec(_methods: ["GET"]),
        "console.connection.resync": spec(_methods: ["POST"], body: 1024),
        "console.connection.renew": spec(_methods: ["POST"], body: 1024),
        "console.connection.disconnect": spec(_methods: ["POST"], body: 1024),
        "admin.overview": spec(_methods: ["GET"]),
        "admin.login_codes": spec(_methods: ["POST"]),
    ]

    /// Registers the `admin_session` verifier and the console handlers.
    public func register(into registry: inout RouteRegistry) {
        let sessions = self.sessions
        // Never refuses by itself: pages send a browser without a session to the login form, actions answer 401.
        registry.register(
            RouteVerifier(key: "admin_session") { request, _ in
                guard let id = request.cookies[Self.sessionCookie]?.value, let session = sessions.session(id: id) else { return .accepted(.anonymous) }
                return .accepted(VerifiedCaller(isAdmin: true, evidence: session))
            })
        func handler(_ key: String, _ handle: @escaping @Sendable (RouteCall) async throws -> Response) {
            registry.register(key, Self.specs[key]!, handle)
        }
        // A page: a browser without a session is sent to the login form.
        func page(_ key: String, _ render: @escaping @Sendable (RouteCall, ConsoleSessions.Session) async throws -> Response) {
            handler(key) { call in
                guard let session = Self.session(call) else { return Self.redirect("/admin/login") }
                return try await render(call, session)
            }
        }
        handler("console.stylesheet") { _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "no-cache", .xContentTypeOptions: "nosniff"],
                body: .init(byteBuffer: ByteBuffer(string: ConsoleTemplates.stylesheet))
            )
        }
        handler("console.login.form") { call in try await loginForm(call) }
        handler("console.login") { call in try await login(call) }
        handler("console.logout") { call in
            let session = try requireSession(call)
            _ = try requireForm(call, session: session)
            sessions.end(id: session.id)
            var response = Self.redirect("/admin/login")
            response.headers.append(HTTPField(name: .setCookie, value: Self.expiredCookie(Self.sessionCookie)))
            return response
        }
        page("console.overview") { _, session in
            let overview = try await gatherOverview()
            var context = ConsolePages.common(title: "Overview", session: session, version: version, now: overview.generatedAt, autoRefresh: true)
            context.merge(ConsolePages.overview(overview)) { _, new in new }
            return Self.page("overview", context)
        }
        page("console.connection") { call, session in
            let connection = try await existing(call)
            let now = clock.now()
            var context = ConsolePages.common(title: "Connection \(connection.id)", session: session, version: version, now: now, autoRefresh: true)
            context.merge(ConsolePages.connection(try await connectionData(connection), now: now)) { _, new in new }
            if let notice = Self.notices[call.request.uri.queryParameters.get("done") ?? ""] {
                context["hasNotice"] = true
                context["notice"] = notice.text
                context["noticeClass"] = notice.error ? "error" : ""
            }
            return Self.page("connection", context)
        }
        page("console.connection.disconnect.confirm") { call, session in
            let connection = try await existing(call)
            let now = clock.now()
            var context = ConsolePages.common(title: "Disconnect \(connection.id)", session: session, version: version, now: now, autoRefresh: false)
            context["connection"] = ConsolePages.connectionSummary(connection, now: now)
            return Self.page("confirm_disconnect", context)
        }
        handler("console.connection.resync") { call in
            let session = try requireSession(call)
            let form = try requireForm(call, session: session)
            let connection = try await existing(call)
            let full = form["mode"] == "full"
            guard let operations else { throw GatewayHTTPError.unavailable("this gateway runs without a sync scheduler") }
            guard connection.state.syncs else { throw GatewayHTTPError.conflict("the connection is \(connection.state.rawValue); nothing syncs until it is reconnected") }
            let count = try await operations.resync(connection, full: full)
            logger.notice("console: sync requested", metadata: ["connection.id": "\(connection.id)", "sync.full": "\(full)", "calendars": "\(count)"])
            return Self.redirect("/admin/connections/\(Self.pathSegment(connection.id))?done=\(full ? "full" : "delta")")
        }
        handler("console.connection.renew") { call in
            let session = try requireSession(call)
            _ = try requireForm(call, session: session)
            let connection = try await existing(call)
            guard let operations else { throw GatewayHTTPError.unavailable("this gateway runs without a renewal service") }
            guard connection.provider != .redtail else { throw GatewayHTTPError.conflict("Redtail has no push subscriptions to renew") }
            let location = "/admin/connections/\(Self.pathSegment(connection.id))"
            do {
                let result = try await operations.renew(connection)
                logger.notice(
                    "console: renewal requested",
                    metadata: [
                        "connection.id": "\(connection.id)", "renewed": "\(result.renewed)", "created": "\(result.created)",
                    ])
                return Self.redirect(location + "?done=renewed")
            } catch {
                logger.warning("console: renewal failed", metadata: ["connection.id": "\(connection.id)", "error": "\(error)"])
                return Self.redirect(location + "?done=renew_failed")
            }
        }
        handler("console.connection.disconnect") { call in
            let session = try requireSession(call)
            let form = try requireForm(call, session: session)
            let connection = try await existing(call)
            guard form["confirm"] == "yes" else { throw GatewayHTTPError.badRequest("disconnecting needs confirm=yes (use the confirmation page)") }
            if connection.state != .disconnected {
                guard let connector = connectors[connection.provider] else {
                    throw GatewayHTTPError.unavailable("\(ConsolePages.providerName(connection.provider)) is not configured on this gateway")
                }
                do {
                    _ = try await connector.disconnect(connectionID: connection.id)
                } catch {
                    logger.warning("console: disconnect failed", metadata: ["connection.id": "\(connection.id)", "error": "\(error)"])
                    return Self.redirect("/admin/connections/\(Self.pathSegment(connection.id))?done=disconnect_failed")
                }
                logger.notice("console: connection disconnected", metadata: ["connection.id": "\(connection.id)"])
            }
            return Self.redirect("/admin/connections/\(Self.pathSegment(connection.id))?done=disconnected")
        }
        handler("admin.overview") { call in
            guard call.caller.isAdmin else { throw GatewayHTTPError.unauthorized() }
            return Self.json(try await gatherOverview().json)
        }
        handler("admin.login_codes") { call in
            guard call.caller.isAdmin else { throw GatewayHTTPError.unauthorized() }
            let (code, expiry) = sessions.issueCode()
            var response = Self.json(
                .object([
                    "code": .string(code), "expires_at": .string(ISO8601DateFormatter().string(from: expiry)),
                    "path": .string("/admin/login?code=\(code)"),
                ]))
            response.status = .created
            return response
        }
    }

    // MARK: Login

    func loginForm(_ call: RouteCall) async throws -> Response {
        if let code = call.request.uri.queryParameters.get("code") {
            guard sessions.redeem(code: String(code)) else {
                return loginPage(error: "That login code is unknown, used or expired (codes last \(Int(sessions.codeLifetime)) s and work once).", status: .unauthorized)
            }
            logger.notice("console: logged in with a one-time code")
            return startSession(then: Self.consolePath(call.request.uri.queryParameters.get("next").map { String($0) }) ?? "/admin")
        }
        if Self.session(call) != nil { return Self.redirect("/admin") }
        return loginPage(error: nil, status: .ok)
    }

    func login(_ call: RouteCall) async throws -> Response {
        try Self.refuseCrossSite(call.request)
        let form = try Self.form(call)
        // Double-submit: the form's value must equal the short-lived cookie the login page set.
        guard let expected = call.request.cookies[Self.loginCookie]?.value, let given = form["csrf"],
            !expected.isEmpty, ConstantTime.equals(given.utf8, expected.utf8)
        else {
            return loginPage(error: "The login form expired; try again.", status: .forbidden)
        }
        guard let token = form["token"], admin.matchesAdminToken(token) else {
            logger.notice("console: login refused (wrong admin token)")
            return loginPage(error: "That is not the admin token.", status: .unauthorized)
        }
        logger.notice("console: logged in")
        return startSession()
    }

    func startSession(then location: String = "/admin") -> Response {
        let session = sessions.create()
        var response = Self.redirect(location)
        response.headers.append(HTTPField(name: .setCookie, value: Self.cookie(Self.sessionCookie, session.id, maxAge: Int(sessions.sessionLifetime))))
        response.headers.append(HTTPField(name: .setCookie, value: Self.expiredCookie(Self.loginCookie)))
        return response
    }

    func loginPage(error: String?, status: HTTPResponse.Status) -> Response {
        let nonce = ConsoleSessions.randomToken()
        var context = ConsolePages.common(title: "Log in", session: nil, version: version, now: clock.now(), autoRefresh: false)
        context["loginCSRF"] = nonce
        context["hasError"] = error != nil
        context["error"] = error ?? ""
        context["sessionHours"] = Int(sessions.sessionLifetime / 3600)
        var response = Self.page("login", context)
        response.status = status
        response.headers.append(HTTPField(name: .setCookie, value: Self.cookie(Self.loginCookie, nonce, maxAge: 600)))
        return response
    }

    // MARK: Data

    func gatherOverview() async throws -> ConsoleOverview {
        let status = await admin.currentReport().status
        do {
            return try await ConsoleOverview.gather(
                store: store, activity: activity, operations: operations, renewal: renewal, status: status, now: clock.now()
            )
        } catch {
            logger.warning("console: cannot read the store", metadata: ["error": "\(error)"])
            throw GatewayHTTPError.unavailable("the store cannot be read right now; retry")
        }
    }

    func connectionData(_ connection: Connection) async throws -> ConsolePages.ConnectionData {
        let calendars = try await store.calendars(connectionID: connection.id)
        var cursors: [String: Date] = [:]
        var lastSyncs: [String: GatewayActivity.SyncRecord] = [:]
        var subscriptions: [ConsoleOverview.Subscription] = []
        let now = clock.now()
        for calendar in calendars {
            let key = calendar.calendarKey
            cursors[key] = try await store.syncCursorUpdatedAt(calendarKey: key)
            lastSyncs[key] = activity.lastSync(calendarKey: key)
            func add(_ provider: Provider, _ id: String, _ createdAt: Date?, _ expiresAt: Date) {
                subscriptions.append(
                    ConsoleOverview.Subscription(
                        provider: provider, id: id, calendarKey: key, calendarName: calendar.name, userID: "", expiresAt: expiresAt,
                        renewAt: expiresAt.addingTimeInterval(-renewal.lead(id: id, createdAt: createdAt, expiresAt: expiresAt)), lapsed: expiresAt <= now
                    ))
            }
            // Every provider's channels and subscriptions live in one store; a polled provider simply has none.
            for row in try await store.livePushSubscriptions(provider: connection.provider, calendarKey: key) {
                add(row.provider, row.id, row.createdAt, row.expiresAt)
            }
        }
        return ConsolePages.ConnectionData(
            connection: connection, calendars: calendars, cursorUpdatedAt: cursors, progress: progress?.progress(connectionID: connection.id) ?? [],
            notifications: activity.recentNotifications(connectionID: connection.id), lastSyncs: lastSyncs, subscriptions: subscriptions
        )
    }

    func existing(_ call: RouteCall) async throws -> Connection {
        guard let id = call.parameters["id"], let connection = try await store.connection(id: id) else {
            throw GatewayHTTPError.notFound("no connection with this id")
        }
        return connection
    }

    // MARK: Sessions, CSRF, forms

    static func session(_ call: RouteCall) -> ConsoleSessions.Session? {
        call.caller.evidence as? ConsoleSessions.Session
    }

    func requireSession(_ call: RouteCall) throws -> ConsoleSessions.Session {
        guard let session = Self.session(call) else {
            throw GatewayHTTPError.unauthorized("log in to the console first (/admin/login)")
        }
        return session
    }

    /// The form of a state-changing request whose CSRF token matches the session.
    func requireForm(_ call: RouteCall, session: ConsoleSessions.Session) throws -> [String: String] {
        try Self.refuseCrossSite(call.request)
        let form = try Self.form(call)
        guard let given = form["csrf"], ConstantTime.equals(given.utf8, session.csrfToken.utf8) else {
            throw GatewayHTTPError.forbidden("the form's CSRF token is missing or does not belong to this session; reload the page and try again")
        }
        return form
    }

    /// Browsers say where a request came from; a form posted from another site is refused outright.
    static func refuseCrossSite(_ request: Request) throws {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site == "cross-site" || site == "same-site" {
            throw GatewayHTTPError.forbidden("console forms can only be posted from the console itself")
        }
    }

    /// An `application/x-www-form-urlencoded` body.
    static func form(_ call: RouteCall) throws -> [String: String] {
        let type = call.request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard type == "application/x-www-form-urlencoded" else {
            throw GatewayHTTPError.unsupportedMediaType("console forms are sent as application/x-www-form-urlencoded")
        }
        return parseForm(String(buffer: call.body))
    }

    static func parseForm(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String? { text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = decode(parts[0]), fields[name] == nil else { continue }
            fields[name] = parts.count > 1 ? decode(parts[1]) ?? "" : ""
        }
        return fields
    }

    static func cookie(_ name: String, _ value: String, maxAge: Int) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let expires = formatter.string(from: Date().addingTimeInterval(TimeInterval(maxAge)))
        return "\(name)=\(value); Path=/; Max-Age=\(maxAge); Expires=\(expires); Secure; HttpOnly; SameSite=Strict"
    }

    static func expiredCookie(_ name: String) -> String {
        "\(name)=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; HttpOnly; SameSite=Strict"
    }

    /// `next` after a code login: only a console page path (`/admin` or below it, plain characters), so the code link
    /// cannot send the browser anywhere else.
    static func consolePath(_ path: String?) -> String? {
        guard let path, path == "/admin" || path.hasPrefix("/admin/"), !path.contains("//"), !path.contains(".."),
            path.utf8.allSatisfy({ ConsolePathBytes.isPathByte($0) })
        else { return nil }
        return path
    }

    /// Connection ids are path-safe, but nothing reaches a Location header unencoded.
    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? ""
    }

    /// What `?done=` may show after an action: fixed texts only, nothing from the request is reflected.
    static let notices: [String: (text: String, error: Bool)] = [
        "delta": ("A delta sync of every synced calendar was requested.", false),
        "full": ("A full re-sync of every synced calendar was requested; its progress shows below.", false),
        "renewed": ("Channels and subscriptions were renewed.", false),
        "renew_failed": ("Renewal failed; the gateway log has the provider's answer. The renewal service keeps retrying.", true),
        "disconnected": ("The connection is disconnected.", false),
        "disconnect_failed": ("Disconnecting failed; see the gateway log.", true),
    ]

    // MARK: Responses

    static var securityHeaders: HTTPFields {
        [
            .contentSecurityPolicy: contentSecurityPolicy, HTTPField.Name("X-Frame-Options")!: "DENY", .xContentTypeOptions: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer", .cacheControl: "no-store",
        ]
    }

    static func page(_ template: String, _ context: [String: Any]) -> Response {
        let html = ConsoleTemplates.library.render(context, withTemplate: template) ?? ""
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func redirect(_ location: String) -> Response {
        var headers = securityHeaders
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    static func json(_ value: JSONValue) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }
}
