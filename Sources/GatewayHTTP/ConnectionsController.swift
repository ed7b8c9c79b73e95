import Foundation
import GatewayCore
import GoogleCalendar
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The `/api/v1` routes LeadCenter calls: connections and imported appointments.
public struct ConnectionsController: Sendable {
    let apiToken: String
    let store: any GatewayStore
    let google: GoogleConnectionSyncer?
    let logger: Logger

    /// Creates the controller; without `google`, connecting a Google account answers 503.
    public init(apiToken: String, store: any GatewayStore, google: GoogleConnectionSyncer?, logger: Logger) {
        self.apiToken = apiToken
        self.store = store
        self.google = google
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
            try object.requireOnlyKeys(["user_id", "provider", "client_id", "client_secret", "refresh_token"])
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
        let provider = try field("provider")
        guard provider == "google" else {
            throw GatewayHTTPError.badRequest("provider \"\(provider)\" cannot be connected yet (supported: google)")
        }
        guard let google else { throw GatewayHTTPError.unavailable("Google is not configured on this gateway") }
        do {
            let connection = try await google.connect(
                userID: try field("user_id"), clientID: try field("client_id"), clientSecret: try field("client_secret"),
                refreshToken: try field("refresh_token")
            )
            var response = Self.json(try await representation(connection))
            response.status = .created
            return response
        } catch let failure as SyncFailure {
            if failure.kind == .needsReconnect { throw GatewayHTTPError.unprocessable(failure.message) }
            throw GatewayHTTPError.badGateway("Google could not complete the connection: \(failure.message)")
        } catch let error as GoogleAPIError {
            throw GatewayHTTPError.badGateway("Google could not complete the connection: \(error.message)")
        }
    }

    func representation(_ connection: Connection) async throws -> JSONValue {
        let calendars = try await store.calendars(connectionID: connection.id).map { calendar -> JSONValue in
            .object(["id": .string(calendar.calendarID), "name": .string(calendar.name), "selected": .bool(calendar.selected)])
        }
        return .object([
            "id": .string(connection.id), "user_id": .string(connection.userID), "provider": .string(connection.provider.rawValue),
            "state": .string(connection.state.rawValue), "state_reason": connection.stateReason.map(JSONValue.string) ?? .null,
            "created_at": .string(ISO8601DateFormatter().string(from: connection.createdAt)), "calendars": .array(calendars),
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
