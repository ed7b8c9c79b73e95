import Foundation
import GatewayCore
import GoogleCalendar
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Redtail

/// The `/api/v1` routes LeadCenter calls: connections and imported appointments.
public struct ConnectionsController: Sendable {
    let apiToken: String
    let store: any GatewayStore
    let connectors: [Provider: any ConnectionManaging]
    let logger: Logger

    /// Creates the controller; a provider without a connector answers 503 when asked to connect.
    public init(apiToken: String, store: any GatewayStore, connectors: [any ConnectionManaging], logger: Logger) {
        self.apiToken = apiToken
        self.store = store
        self.connectors = Dictionary(connectors.map { ($0.provider, $0) }, uniquingKeysWith: { first, _ in first })
        self.logger = logger
    }

    /// Registers the `api_token` verifier and the API handlers.
    public func register(into registry: inout RouteRegistry) {
        registry.register(RouteVerifier(key: "api_token") { request, _ in
            guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
                  ConstantTime.equals(header.dropFirst(7).utf8, apiToken.utf8)
            else { return .rejected(.unauthorized("this endpoint needs Authorization: Bearer <API token>"), reason: "bad_api_token") }
            return .accepted(.anonymous)
        })
        registry.register(RouteHandler(key: "api.connections.create", spec: Self.spec(["POST"], body: 16_384)) { call in
            try await create(call)
        })
        registry.register(RouteHandler(key: "api.connections.list", spec: Self.spec(["GET"])) { call in
            let user = call.request.uri.queryParameters.get("user")
            var items: [JSONValue] = []
            for connection in try await store.connections(userID: user) { items.append(try await representation(connection)) }
            return Self.json(.object(["connections": .array(items)]))
        })
        registry.register(RouteHandler(key: "api.connections.get", spec: Self.spec(["GET"])) { call in
            guard let id = call.parameters["id"], let connection = try await store.connection(id: id) else {
                throw GatewayHTTPError.notFound("no connection with this id")
            }
            return Self.json(try await representation(connection))
        })
        registry.register(RouteHandler(key: "api.connections.calendars.list", spec: Self.spec(["GET"])) { call in
            let connection = try await existing(call)
            return Self.json(.object(["calendars": .array(try await store.calendars(connectionID: connection.id).map(Self.representation))]))
        })
        registry.register(RouteHandler(key: "api.connections.calendars.refresh", spec: Self.spec(["POST"])) { call in
            let connection = try await existing(call)
            let calendars = try await providerCall(connection.provider) { try await $0.refreshCalendars(connectionID: connection.id) }
            return Self.json(.object(["calendars": .array(calendars.map(Self.representation))]))
        })
        registry.register(RouteHandler(key: "api.connections.calendars.select", spec: Self.spec(["PUT"], body: 65_536)) { call in
            let connection = try await existing(call)
            let selected = try Self.selection(call.body)
            let calendars = try await providerCall(connection.provider) {
                try await $0.selectCalendars(connectionID: connection.id, calendarIDs: selected)
            }
            return Self.json(.object(["calendars": .array(calendars.map(Self.representation))]))
        })
        registry.register(RouteHandler(key: "api.appointments.list", spec: Self.spec(["GET"])) { call in
            try await appointments(call)
        })
    }

    /// Handler keys and what they serve (kept in step with `GatewayServer.catalog` by a test).
    static func spec(_ methods: Set<String>, body: Int = 0) -> RouteHandlerSpec {
        RouteHandlerSpec(kind: .api, defaultBodyLimit: body, methods: methods)
    }

    func create(_ call: RouteCall) async throws -> Response {
        let object: StrictJSONObject
        do {
            object = try StrictJSONObject(try JSONValue.parse(Data(buffer: call.body)), path: "")
            if case .string("redtail")? = object.value("provider") {
                try object.requireOnlyKeys(["user_id", "provider", "account_type", "api_key", "username", "password"])
            } else {
                try object.requireOnlyKeys(["user_id", "provider", "client_id", "client_secret", "refresh_token"])
            }
        } catch let error as JSONDocumentError {
            throw GatewayHTTPError.badRequest("body \(error.message)")
        } catch let error as StrictJSONError {
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
        guard let provider = Provider(rawValue: name) else {
            throw GatewayHTTPError.badRequest("provider \"\(name)\" is not one calgate connects (google, microsoft, redtail)")
        }
        if provider == .redtail {
            let (user, accountType, apiKey, username, password) = (
                try field("user_id"), try field("account_type"), try field("api_key"), try field("username"), try field("password")
            )
            let connection = try await providerCall(.redtail, connecting: true) { connector in
                guard let redtail = connector as? RedtailConnector else { throw GatewayHTTPError.unavailable("Redtail is not configured on this gateway") }
                return try await redtail.connect(userID: user, accountType: accountType, apiKey: apiKey, username: username, password: password)
            }
            var response = Self.json(try await representation(connection))
            response.status = .created
            return response
        }
        let (user, client, secret, refresh) = (try field("user_id"), try field("client_id"), try field("client_secret"), try field("refresh_token"))
        let connection = try await providerCall(provider, connecting: true) {
            try await $0.connect(userID: user, clientID: client, clientSecret: secret, refreshToken: refresh)
        }
        var response = Self.json(try await representation(connection))
        response.status = .created
        return response
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
        guard let connector = connectors[provider] else {
            throw GatewayHTTPError.unavailable("\(Self.displayName(provider)) is not configured on this gateway")
        }
        do {
            return try await body(connector)
        } catch let error as ConnectionInputError {
            throw error.connectionNotFound ? GatewayHTTPError.notFound(error.description) : GatewayHTTPError.badRequest(error.description)
        } catch let failure as SyncFailure {
            if failure.kind == .needsReconnect {
                throw connecting ? GatewayHTTPError.unprocessable(failure.message) : GatewayHTTPError.conflict(failure.message)
            }
            throw GatewayHTTPError.badGateway("\(Self.displayName(provider)) could not complete the request: \(failure.message)")
        } catch let error as GatewayHTTPError {
            throw error
        } catch {
            logger.error("provider request failed", metadata: ["provider": "\(provider.rawValue)", "error": "\(error)"])
            throw GatewayHTTPError.badGateway("\(Self.displayName(provider)) could not complete the request: \(error)")
        }
    }

    static func displayName(_ provider: Provider) -> String {
        switch provider {
        case .google: "Google"
        case .microsoft: "Microsoft"
        case .redtail: "Redtail"
        }
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
        return .object([
            "id": .string(connection.id), "user_id": .string(connection.userID), "provider": .string(connection.provider.rawValue),
            "state": .string(connection.state.rawValue), "state_reason": connection.stateReason.map(JSONValue.string) ?? .null,
            "created_at": .string(ISO8601DateFormatter().string(from: connection.createdAt)), "calendars": .array(calendars),
            "next_retry_at": connection.nextRetryAt.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null,
            "failing_since": connection.failingSince.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null,
            "account_type": connection.accountType.map(JSONValue.string) ?? .null,
        ])
    }

    func appointments(_ call: RouteCall) async throws -> Response {
        let query = call.request.uri.queryParameters
        guard let user = query.get("user"), !user.isEmpty else { throw GatewayHTTPError.badRequest("user is required") }
        func instant(_ name: String) throws -> Date? {
            guard let text = query.get(name) else { return nil }
            guard let date = GoogleEventMapper.parseInstant(text) else {
                throw GatewayHTTPError.badRequest("\(name) must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
            }
            return date
        }
        let from = try instant("from") ?? .distantPast
        let to = try instant("to") ?? .distantFuture
        guard from <= to else { throw GatewayHTTPError.badRequest("from must not be after to") }
        var items: [JSONValue] = []
        for connection in try await store.connections(userID: user) {
            for calendar in try await store.calendars(connectionID: connection.id) where calendar.selected {
                for appointment in try await store.appointments(calendarKey: calendar.calendarKey)
                where appointment.status != "cancelled" && Self.overlaps(appointment.time, from: from, to: to) {
                    items.append(Self.representation(appointment, connection: connection, calendar: calendar))
                }
            }
        }
        return Self.json(.object(["appointments": .array(items)]))
    }

    static func overlaps(_ time: AppointmentTime, from: Date, to: Date) -> Bool {
        switch time {
        case .timed(let start, let end, _):
            return start < to && end > from
        case .allDay(let startDate, let endDate):
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd"
            guard let start = formatter.date(from: startDate), let end = formatter.date(from: endDate) else { return true }
            return start < to && max(end, start.addingTimeInterval(86_400)) > from
        }
    }

    static func representation(_ appointment: Appointment, connection: Connection, calendar: ConnectionCalendar) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(appointment.externalID), "source": .string(appointment.source.rawValue),
            "connection_id": .string(connection.id), "calendar_id": .string(calendar.calendarID),
            "title": .string(appointment.title), "status": .string(appointment.status),
            "series_id": appointment.seriesID.map(JSONValue.string) ?? .null,
            "original_start": appointment.originalStart.map(JSONValue.string) ?? .null,
            "recurrence": .array(appointment.recurrence.map(JSONValue.string)),
        ]
        let iso = ISO8601DateFormatter()
        switch appointment.time {
        case .timed(let start, let end, let zone):
            object["all_day"] = .bool(false)
            object["start"] = .string(iso.string(from: start))
            object["end"] = .string(iso.string(from: end))
            object["time_zone"] = zone.map(JSONValue.string) ?? .null
        case .allDay(let startDate, let endDate):
            object["all_day"] = .bool(true)
            object["start_date"] = .string(startDate)
            object["end_date"] = .string(endDate)
        }
        return .object(object)
    }

    static func json(_ value: JSONValue) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }
}
