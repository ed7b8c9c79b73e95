import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The `/api/v1` routes LeadCenter calls: connections and imported appointments.
public struct ConnectionsController: Sendable {
    let apiToken: BearerCredential
    let store: any GatewayStore
    let connectors: [Provider: any ConnectionManaging]
    /// What connect and reconnect take, per provider that can be connected (in the plugins' order), configured or not.
    let shapes: [(provider: Provider, shape: ConnectShape)]
    /// The integration fields of providers whose connections build on an account-level integration (routes
    /// registered even when the provider is not configured here, then answering 503).
    let accountIntegrations: [(provider: Provider, fields: [String])]
    let maxConnectionsPerUser: Int
    let clock: any GatewayClock
    let logger: Logger
    /// Full-sync progress shown as `progress` (empty when nil).
    let progress: SyncProgressBoard?
    /// Sign-in (OAuth authorization code with PKCE) per provider whose client is configured.
    let signIns: [Provider: OAuthSignIn]
    /// Seals the PKCE verifiers of pending sign-ins (nil: sign-in answers 503).
    let sealer: (any SecretSealer)?
    /// Exchanges sign-in codes at the providers' token endpoints (nil: sign-in answers 503).
    let codeExchanger: (any OAuthCodeExchanging)?
    /// LeadCenter's sign-in result page; nil: the callback answers its own HTML page.
    let signInResultURL: String?

    /// Creates the controller; a provider without a connector answers 503 when asked to connect.
    public init(
        apiToken: String, store: any GatewayStore, plugins: [ProviderPlugin], maxConnectionsPerUser: Int = 10,
        clock: any GatewayClock = SystemGatewayClock(), progress: SyncProgressBoard? = nil, logger: Logger,
        apiTokenExpiresAt: Date? = nil, sealer: (any SecretSealer)? = nil, codeExchanger: (any OAuthCodeExchanging)? = nil,
        signInResultURL: String? = nil
    ) {
        self.progress = progress
        self.signIns = Dictionary(plugins.compactMap { plugin in plugin.signIn.map { (plugin.provider, $0) } }, uniquingKeysWith: { first, _ in first })
        self.sealer = sealer
        self.codeExchanger = codeExchanger
        self.signInResultURL = signInResultURL
        self.apiToken = BearerCredential(token: apiToken, expiresAt: apiTokenExpiresAt)
        self.store = store
        self.connectors = Dictionary(plugins.compactMap(\.connector).map { ($0.provider, $0) }, uniquingKeysWith: { first, _ in first })
        self.shapes = plugins.compactMap { plugin in plugin.connectShape.map { (plugin.provider, $0) } }
        self.accountIntegrations = plugins.filter { !$0.accountIntegrationFields.isEmpty }.map { ($0.provider, $0.accountIntegrationFields) }
        self.maxConnectionsPerUser = maxConnectionsPerUser
        self.clock = clock
        self.logger = logger
    }

    /// Registers the `api_token` verifier and the API handlers.
    public func register(into registry: inout RouteRegistry) {
        registry.register(
            RouteVerifier(key: "api_token") { request, _ in
                switch apiToken.check(authorization: request.headers[.authorization], now: clock.now()) {
                case .accepted:
                    return .accepted(.anonymous)
                case .expired:
                    return .rejected(.unauthorized("the API token has expired; configure a new one (api_token, api_token_expires_at)"), reason: "expired_api_token")
                case .missing, .wrong:
                    return .rejected(.unauthorized("this endpoint needs Authorization: Bearer <API token>"), reason: "bad_api_token")
                }
            })
        registry.register("api.connections.create", Self.spec(["POST"], body: 16_384)) { try await create($0) }
        registry.register("api.connections.list", Self.spec(["GET"])) { call in
            let user = call.request.uri.queryParameters.get("user")
            var items: [JSONValue] = []
            for connection in try await store.connections(userID: user) { items.append(try await representation(connection)) }
            return Self.json(.object(["connections": .array(items)]))
        }
        registry.register("api.connections.get", Self.spec(["GET"])) { call in
            guard let id = call.parameters["id"], let connection = try await store.connection(id: id) else {
                throw GatewayHTTPError.notFound("no connection with this id")
            }
            return Self.json(try await representation(connection))
        }
        registry.register("api.connections.calendars.list", Self.spec(["GET"])) { call in
            let connection = try await existing(call)
            return Self.json(.object(["calendars": .array(try await store.calendars(connectionID: connection.id).map(Self.representation))]))
        }
        registry.register("api.connections.calendars.refresh", Self.spec(["POST"])) { call in
            let connection = try await existing(call)
            let calendars = try await providerCall(connection.provider) { try await $0.refreshCalendars(connectionID: connection.id) }
            return Self.json(.object(["calendars": .array(calendars.map(Self.representation))]))
        }
        registry.register("api.connections.calendars.select", Self.spec(["PUT"], body: 65_536)) { call in
            let connection = try await existing(call)
            let selected = try Self.selection(call.body)
            let calendars = try await providerCall(connection.provider) {
                try await $0.selectCalendars(connectionID: connection.id, calendarIDs: selected)
            }
            return Self.json(.object(["calendars": .array(calendars.map(Self.representation))]))
        }
        registry.register("api.connections.update", Self.spec(["PATCH"], body: 4096)) { call in
            let connection = try await existing(call)
            let object = try Self.strictObject(call.body, allowed: ["visibility"])
            guard let name = try Self.string(object, "visibility"), let visibility = Connection.Visibility(rawValue: name) else {
                throw GatewayHTTPError.badRequest("visibility is required: one of \(Connection.Visibility.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            try await store.setConnectionVisibility(id: connection.id, visibility)
            return Self.json(try await representation(try await store.connection(id: connection.id) ?? connection))
        }
        registry.register("api.connections.disconnect", Self.spec(["DELETE"])) { call in
            let connection = try await existing(call)
            guard connection.state != .disconnected else { return Self.json(try await representation(connection)) }
            let disconnected = try await providerCall(connection.provider) { try await $0.disconnect(connectionID: connection.id) }
            return Self.json(try await representation(disconnected))
        }
        registry.register("api.connections.reconnect", Self.spec(["POST"], body: 16_384)) { try await reconnect($0) }
        for (provider, fields) in accountIntegrations { registerAccountIntegration(of: provider, fields: fields, into: &registry) }
        registerSignIn(into: &registry)
    }

    /// `GET`/`PUT`/`DELETE /api/v1/accounts/{account}/<provider>`: the account-level integration a provider's
    /// connections build on (Redtail's main integration).
    func registerAccountIntegration(of provider: Provider, fields names: [String], into registry: inout RouteRegistry) {
        let keys = Self.accountIntegrationKeys(provider)
        let missing = "this account has no main \(provider.displayName) integration"
        @Sendable func integrations() throws -> any AccountIntegrating {
            guard let integrations = connectors[provider]?.accountIntegration else {
                throw GatewayHTTPError.unavailable("\(provider.displayName) is not configured on this gateway")
            }
            return integrations
        }
        registry.register(keys.get, Self.spec(["GET"])) { call in
            guard let account = call.parameters["account"], let integration = try await integrations().integration(accountID: account) else {
                throw GatewayHTTPError.notFound(missing)
            }
            return Self.json(Self.representation(integration))
        }
        registry.register(keys.put, Self.spec(["PUT"], body: 16_384)) { call in
            guard let account = call.parameters["account"], !account.isEmpty, account.utf8.count <= 256 else {
                throw GatewayHTTPError.badRequest("account id is required")
            }
            let integrations = try integrations()
            let object = try Self.strictObject(call.body, allowed: Set(names))
            var fields: [String: String] = [:]
            for name in names { fields[name] = try Self.required(object, name, max: name == "account_type" ? 64 : 4096) }
            let integration = try await providerCall(provider, connecting: true) { _ in
                try await integrations.registerIntegration(accountID: account, fields: fields)
            }
            return Self.json(Self.representation(integration))
        }
        registry.register(keys.delete, Self.spec(["DELETE"])) { call in
            guard let account = call.parameters["account"], try await integrations().removeIntegration(accountID: account) else {
                throw GatewayHTTPError.notFound(missing)
            }
            return Response(status: .noContent)
        }
    }

    /// Handler keys of a provider's account-integration routes.
    static func accountIntegrationKeys(_ provider: Provider) -> (get: String, put: String, delete: String) {
        ("api.accounts.\(provider.rawValue).get", "api.accounts.\(provider.rawValue).put", "api.accounts.\(provider.rawValue).delete")
    }

    /// The catalog entries of a provider's account-integration routes.
    static func accountIntegrationSpecs(_ provider: Provider) -> [String: RouteHandlerSpec] {
        let keys = accountIntegrationKeys(provider)
        return [keys.get: spec(["GET"]), keys.put: spec(["PUT"], body: 16_384), keys.delete: spec(["DELETE"])]
    }

    /// New credentials for an existing connection (after `needs_reconnect`, or to undo a disconnect): a full re-sync.
    func reconnect(_ call: RouteCall) async throws -> Response {
        let connection = try await existing(call)
        // The body is checked against the provider's shape first; `providerCall` answers 503 when it is not configured.
        guard let shape = shapes.first(where: { $0.provider == connection.provider })?.shape else {
            throw GatewayHTTPError.badRequest("\(connection.provider.displayName) connections cannot be reconnected through the API")
        }
        let object = try Self.strictObject(call.body, allowed: Set(shape.reconnectFields))
        var fields: [String: String] = [:]
        for name in shape.reconnectFields { fields[name] = try Self.required(object, name) }
        let reconnected = try await providerCall(connection.provider, connecting: true) {
            try await $0.reconnect(connectionID: connection.id, fields: fields)
        }
        return Self.json(try await representation(reconnected))
    }

    /// Parses a strict JSON object body with only `allowed` keys.
    static func strictObject(_ body: ByteBuffer, allowed: Set<String>) throws -> StrictJSONObject {
        do {
            let object = try StrictJSONObject(try JSONValue.parse(Data(buffer: body)), path: "")
            try object.requireOnlyKeys(allowed)
            return object
        } catch let error as JSONDocumentError {
            throw GatewayHTTPError.badRequest("body \(error.message)")
        } catch let error as StrictJSONError {
            throw GatewayHTTPError.badRequest(error.description)
        }
    }

    /// A connect or sign-in body's optional `visibility` (default `only_me`) and `account_id` (1 to 256 bytes).
    static func visibilityAndAccount(_ object: StrictJSONObject) throws -> (Connection.Visibility, String?) {
        var visibility = Connection.Visibility.onlyMe
        if let given = try string(object, "visibility") {
            guard let parsed = Connection.Visibility(rawValue: given) else {
                throw GatewayHTTPError.badRequest("visibility must be one of \(Connection.Visibility.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            visibility = parsed
        }
        let accountID = try string(object, "account_id")
        if let accountID, accountID.isEmpty || accountID.utf8.count > 256 { throw GatewayHTTPError.badRequest("account_id must be 1 to 256 bytes") }
        return (visibility, accountID)
    }

    /// An optional string field, as a 400 when it has the wrong type.
    static func string(_ object: StrictJSONObject, _ name: String) throws -> String? {
        do { return try object.string(name) } catch { throw GatewayHTTPError.badRequest(error.description) }
    }

    /// A required, non-empty, bounded string field.
    static func required(_ object: StrictJSONObject, _ name: String, max: Int = 4096) throws -> String {
        guard let value = try string(object, name), !value.isEmpty else { throw GatewayHTTPError.badRequest("\(name) is required") }
        guard value.utf8.count <= max else { throw GatewayHTTPError.badRequest("\(name) is too long (at most \(max) bytes)") }
        return value
    }

    /// Handler keys and what they serve (kept in step with `GatewayServer.catalog` by a test).
    static func spec(_ methods: Set<String>, body: Int = 0) -> RouteHandlerSpec {
        RouteHandlerSpec(kind: .api, defaultBodyLimit: body, methods: methods)
    }

    func create(_ call: RouteCall) async throws -> Response {
        let object: StrictJSONObject
        do {
            object = try StrictJSONObject(try JSONValue.parse(Data(buffer: call.body)), path: "")
        } catch let error as JSONDocumentError {
            throw GatewayHTTPError.badRequest("body \(error.message)")
        } catch let error as StrictJSONError {
            throw GatewayHTTPError.badRequest(error.description)
        }
        // The keys allowed depend on the provider named; an unknown one is refused below by name.
        var shape = ConnectShape.refreshToken
        if case .string(let name)? = object.value("provider"), let known = shapes.first(where: { $0.provider.rawValue == name }) {
            shape = known.shape
        }
        do {
            try object.requireOnlyKeys(Set(["user_id", "provider", "account_id", "visibility"] + shape.connectFields))
        } catch {
            throw GatewayHTTPError.badRequest(error.description)
        }
        func field(_ name: String) throws -> String {
            let value: String?
            do { value = try object.string(name) } catch { throw GatewayHTTPError.badRequest(error.description) }
            guard let value, !value.isEmpty else { throw GatewayHTTPError.badRequest("\(name) is required") }
            guard value.utf8.count <= 4096 else { throw GatewayHTTPError.badRequest("\(name) is too long") }
            return value
        }
        let name = try field("provider")
        guard let provider = Provider(rawValue: name), knownProviders.contains(provider) else {
            throw GatewayHTTPError.badRequest(
                "provider \"\(name)\" is not one calgate connects (\(knownProviders.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        let (visibility, accountID) = try Self.visibilityAndAccount(object)
        let userID = try field("user_id")
        try await checkCap(userID: userID)
        var fields: [String: String] = [:]
        if shape.requiresAccount { _ = try field("account_id") }
        for name in shape.connectFields { fields[name] = try field(name) }
        let connection = try await connect(
            provider, request: ConnectRequest(userID: userID, accountID: accountID, fields: fields), visibility: visibility
        )
        var response = Self.json(try await representation(connection))
        response.status = .created
        return response
    }

    /// The plan's cap: it counts every connection the user has not disconnected (409 when reached).
    func checkCap(userID: String) async throws {
        let existing = try await store.connections(userID: userID).filter { $0.state != .disconnected }
        guard existing.count < maxConnectionsPerUser else {
            throw GatewayHTTPError.conflict(
                "user \(userID) already has \(existing.count) calendar connections, the most this plan allows (\(maxConnectionsPerUser)); disconnect one first"
            )
        }
    }

    /// Today's connect path, shared by the refresh-token form and sign-in: the cap, then the provider's connect
    /// (credentials proven, calendars listed, full sync, subscriptions), then visibility and account.
    func connect(_ provider: Provider, request: ConnectRequest, visibility: Connection.Visibility) async throws -> Connection {
        try await checkCap(userID: request.userID)
        let connection = try await providerCall(provider, connecting: true) { try await $0.connect(request) }
        if visibility != .onlyMe { try await store.setConnectionVisibility(id: connection.id, visibility) }
        if let accountID = request.accountID { try await store.setConnectionAccount(id: connection.id, accountID: accountID) }
        return try await store.connection(id: connection.id) ?? connection
    }

    /// The providers a connect request may name (503 when not configured here).
    var knownProviders: [Provider] { shapes.map(\.provider) }

    /// The provider's connector, or 503 when it is not configured here.
    func connector(_ provider: Provider) throws -> any ConnectionManaging {
        guard let connector = connectors[provider] else {
            throw GatewayHTTPError.unavailable("\(provider.displayName) is not configured on this gateway")
        }
        return connector
    }

    /// The connection named by the `{id}` path parameter.
    func existing(_ call: RouteCall) async throws -> Connection {
        guard let id = call.parameters["id"], let connection = try await store.connection(id: id) else {
            throw GatewayHTTPError.notFound("no connection with this id")
        }
        return connection
    }

    /// Runs a provider operation and maps its failures to answers: bad input 400/404, refused credentials 422 when
    /// connecting (409 for an existing connection that needs reconnecting), provider trouble 502.
    func providerCall<T: Sendable>(
        _ provider: Provider, connecting: Bool = false, _ body: (any ConnectionManaging) async throws -> T
    ) async throws -> T {
        let connector = try connector(provider)
        do {
            return try await body(connector)
        } catch let error as ConnectionConflictError {
            throw GatewayHTTPError.conflict(error.description)
        } catch let error as ConnectionInputError {
            throw error.connectionNotFound ? GatewayHTTPError.notFound(error.description) : GatewayHTTPError.badRequest(error.description)
        } catch let failure as SyncFailure {
            if failure.kind == .needsReconnect {
                throw connecting ? GatewayHTTPError.unprocessable(failure.message) : GatewayHTTPError.conflict(failure.message)
            }
            throw GatewayHTTPError.badGateway("\(provider.displayName) could not complete the request: \(failure.message)")
        } catch let error as GatewayHTTPError {
            throw error
        } catch {
            logger.error("provider request failed", metadata: ["provider": "\(provider.rawValue)", "error": "\(error)"])
            throw GatewayHTTPError.badGateway("\(provider.displayName) could not complete the request: \(error)")
        }
    }

    /// An integration without its secrets.
    static func representation(_ integration: RedtailIntegration) -> JSONValue {
        .object([
            "account_id": .string(integration.accountID), "account_type": .string(integration.accountType), "connected": .bool(true),
            "redtail_user_id": integration.redtailUserID.map(JSONValue.string) ?? .null,
            "connected_at": .string(ISO8601DateFormatter().string(from: integration.createdAt)),
        ])
    }

    /// `{"selected": ["calendar id", ...]}`: strict keys, strings only, no duplicates, at most 200.
    static func selection(_ body: ByteBuffer) throws -> Set<String> {
        do {
            let object = try StrictJSONObject(try JSONValue.parse(Data(buffer: body)), path: "")
            try object.requireOnlyKeys(["selected"])
            guard let items = try object.array("selected") else { throw GatewayHTTPError.badRequest("selected is required (an array of calendar ids)") }
            guard items.count <= 200 else { throw GatewayHTTPError.badRequest("selected has more than 200 calendars") }
            var ids: Set<String> = []
            for (index, item) in items.enumerated() {
                guard case .string(let id) = item, !id.isEmpty, id.utf8.count <= 1024 else {
                    throw GatewayHTTPError.badRequest("selected[\(index)] must be a non-empty calendar id string")
                }
                guard ids.insert(id).inserted else { throw GatewayHTTPError.badRequest("selected names \"\(id)\" twice") }
            }
            return ids
        } catch let error as JSONDocumentError {
            throw GatewayHTTPError.badRequest("body \(error.message)")
        } catch let error as StrictJSONError {
            throw GatewayHTTPError.badRequest(error.description)
        }
    }

    static func representation(_ calendar: ConnectionCalendar) -> JSONValue {
        .object(["id": .string(calendar.calendarID), "name": .string(calendar.name), "selected": .bool(calendar.selected)])
    }

    func representation(_ connection: Connection) async throws -> JSONValue {
        let calendars = try await store.calendars(connectionID: connection.id).map(Self.representation)
        var object: [String: JSONValue] = [
            "id": .string(connection.id), "user_id": .string(connection.userID), "provider": .string(connection.provider.rawValue),
            "state": .string(connection.state.rawValue), "state_reason": connection.stateReason.map(JSONValue.string) ?? .null,
            "created_at": .string(ISO8601DateFormatter().string(from: connection.createdAt)), "calendars": .array(calendars),
            "next_retry_at": connection.nextRetryAt.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null,
            "failing_since": connection.failingSince.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null,
            "account_type": connection.accountType.map(JSONValue.string) ?? .null,
            "account_id": .string(connection.accountID), "visibility": .string(connection.visibility.rawValue),
        ]
        let records = progress?.progress(connectionID: connection.id) ?? []
        object["progress"] = .array(records.map(Self.representation))
        return .object(object)
    }

    /// A full sync's progress; the calendar id is the part of the key after the connection id.
    static func representation(_ progress: SyncProgress) -> JSONValue {
        let formatter = ISO8601DateFormatter()
        return .object([
            "calendar_id": .string(ConnectionCalendar.parts(of: progress.calendarKey)?.calendarID ?? progress.calendarKey),
            "phase": .string(progress.phase.rawValue), "pages_fetched": .integer(Int64(progress.pagesFetched)),
            "appointments_fetched": .integer(Int64(progress.appointmentsFetched)),
            "appointments_applied": .integer(Int64(progress.appointmentsApplied)),
            "started_at": .string(formatter.string(from: progress.startedAt)), "updated_at": .string(formatter.string(from: progress.updatedAt)),
        ])
    }

    static func json(_ value: JSONValue) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }
}
