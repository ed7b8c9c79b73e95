import GatewayCore

/// The OpenAPI 3.1 description of the whole `/api/v1` surface, served at `/api/v1/openapi.json` and committed as
/// `docs/openapi.json` (a test keeps the two equal and checks live responses against it).
public enum OpenAPIDocument {
    typealias J = JSONValue

    static func ref(_ name: String) -> J { .object(["$ref": .string("#/components/schemas/\(name)")]) }
    static func string(_ description: String? = nil, format: String? = nil, values: [String]? = nil) -> J {
        var object: [String: J] = ["type": .string("string")]
        if let description { object["description"] = .string(description) }
        if let format { object["format"] = .string(format) }
        if let values { object["enum"] = .array(values.map(J.string)) }
        return .object(object)
    }
    static func nullable(_ schema: J) -> J {
        guard case .object(var object) = schema, case .string(let type)? = object["type"] else {
            return .object(["oneOf": .array([schema, .object(["type": .string("null")])])])
        }
        object["type"] = .array([.string(type), .string("null")])
        if case .array(var values)? = object["enum"] {
            values.append(.null)
            object["enum"] = .array(values)
        }
        return .object(object)
    }
    static func object(_ properties: [String: J], required: [String], additional: Bool = false, description: String? = nil) -> J {
        var schema: [String: J] = [
            "type": .string("object"), "properties": .object(properties), "required": .array(required.sorted().map(J.string)),
            "additionalProperties": .bool(additional),
        ]
        if let description { schema["description"] = .string(description) }
        return .object(schema)
    }
    static func array(_ items: J) -> J { .object(["type": .string("array"), "items": items]) }
    static let boolean: J = .object(["type": .string("boolean")])
    static let integer: J = .object(["type": .string("integer")])

    static func json(_ schema: J) -> J { .object(["application/json": .object(["schema": schema])]) }
    static func response(_ description: String, _ schema: J?) -> J {
        var object: [String: J] = ["description": .string(description)]
        if let schema { object["content"] = json(schema) }
        return .object(object)
    }
    static func errors(_ statuses: [Int]) -> [String: J] {
        let words = [
            400: "Malformed request (the message names the field)", 401: "Missing or wrong API token", 404: "No such resource",
            409: "Conflicts with the current state (read-only import, plan cap, needs reconnecting, no account integration yet)",
            413: "Body over the route's limit", 422: "The provider refused the credentials", 502: "The provider failed", 503: "Unavailable; retry",
        ]
        var result: [String: J] = [:]
        for status in statuses + [401] { result[String(status)] = response(words[status] ?? "Error", ref("Error")) }
        return result
    }
    static func operation(_ id: String, _ summary: String, parameters: [J] = [], body: J? = nil, responses: [String: J], security: Bool = true) -> J {
        var object: [String: J] = ["operationId": .string(id), "summary": .string(summary), "responses": .object(responses)]
        if !parameters.isEmpty { object["parameters"] = .array(parameters) }
        if let body { object["requestBody"] = .object(["required": .bool(true), "content": json(body)]) }
        if !security { object["security"] = .array([]) }
        return .object(object)
    }
    static func path(_ name: String, _ description: String) -> J {
        .object(["name": .string(name), "in": .string("path"), "required": .bool(true), "description": .string(description), "schema": string()])
    }
    static func query(_ name: String, _ description: String, required: Bool = false, format: String? = nil) -> J {
        .object(["name": .string(name), "in": .string("query"), "required": .bool(required), "description": .string(description), "schema": string(format: format)])
    }

    /// The document for a gateway with these provider plugins: their ids, connect fields and account-integration
    /// routes come from the plugins (the committed `docs/openapi.json` is the built-in providers').
    public static func document(plugins: [ProviderPlugin]) -> JSONValue {
        let providers = plugins.map(\.provider.rawValue)
        let connectable = plugins.filter { $0.connectShape != nil }
        let states = ["active", "degraded", "needs_reconnect", "disconnected"]
        let calendar = object(["id": string(), "name": string(), "selected": boolean], required: ["id", "name", "selected"])
        let connection = object(
            [
                "id": string("calgate's connection id"), "user_id": string(), "provider": string(values: providers),
                "state": string(values: states), "state_reason": nullable(string()), "created_at": string(format: "date-time"),
                "calendars": array(ref("Calendar")), "next_retry_at": nullable(string(format: "date-time")),
                "failing_since": nullable(string(format: "date-time")), "account_type": nullable(string()), "account_id": string(),
                "visibility": string(values: ["only_me", "everyone"]),
                "progress": array(ref("SyncProgress")),
            ], required: ["id", "user_id", "provider", "state", "state_reason", "created_at", "calendars", "next_retry_at", "failing_since", "account_type", "account_id", "visibility", "progress"])
        let progress = object(
            [
                "calendar_id": string(), "phase": string(values: ["fetching", "applying", "done", "failed"]),
                "pages_fetched": integer, "appointments_fetched": integer,
                "appointments_applied": integer, "started_at": string(format: "date-time"), "updated_at": string(format: "date-time"),
            ], required: ["calendar_id", "phase", "pages_fetched", "appointments_fetched", "appointments_applied", "started_at", "updated_at"],
            description: "The latest full sync of one calendar since the gateway started: pages and appointment changes fetched as it goes; changes are applied in one commit with the new cursor, so appointments_applied stays 0 until phase is done")
        let reference = object(
            ["id": nullable(string()), "source": nullable(string()), "connection_id": nullable(string()), "calendar_id": nullable(string())],
            required: ["id", "source", "connection_id", "calendar_id"])
        let appointment = object(
            [
                "id": string(), "source": string(values: providers + ["leadcenter"]),
                "connection_id": nullable(string()), "calendar_id": nullable(string()), "title": string(), "status": string(),
                "series_id": nullable(string()), "original_start": nullable(string()), "recurrence": array(string()),
                "category": nullable(string()), "read_only": boolean, "editable_fields": array(string()), "owner_user_id": string(),
                "visibility": string(values: ["only_me", "everyone"]), "all_day": boolean,
                "start": string(format: "date-time"), "end": string(format: "date-time"), "time_zone": nullable(string()),
                "start_date": string(format: "date"), "end_date": string(format: "date"), "attendees": array(string()),
                "occurrence": boolean, "also_in": array(ref("AppointmentReference")),
                "push_status": string(values: ["no_target", "pending", "pushed", "failed"]),
                "pushed_to": nullable(object(["connection_id": string(), "calendar_id": string()], required: ["connection_id", "calendar_id"])),
                "push_error": nullable(string()),
            ], required: ["id", "source", "connection_id", "calendar_id", "title", "status", "recurrence", "category", "read_only", "all_day", "owner_user_id"])
        let appointmentInput = object(
            [
                "user_id": string(), "account_id": string(), "title": string(), "start": string(format: "date-time"), "end": string(format: "date-time"),
                "start_date": string(format: "date"), "end_date": string(format: "date"), "time_zone": string("IANA zone"),
                "category": nullable(string()), "recurrence": array(string("RRULE, EXDATE or RDATE line")),
            ], required: ["user_id", "title"])
        let appointmentPatch = object(
            [
                "title": string(), "start": string(format: "date-time"), "end": string(format: "date-time"),
                "start_date": string(format: "date"), "end_date": string(format: "date"), "time_zone": string(),
                "category": nullable(string()), "recurrence": array(string()),
            ], required: [])
        var connectProperties: [String: J] = [
            "user_id": string(), "provider": string(values: connectable.map(\.provider.rawValue)), "account_id": string(),
            "visibility": string(values: ["only_me", "everyone"]),
        ]
        var reconnectProperties: [String: J] = [:]
        for plugin in connectable {
            for field in plugin.connectShape?.connectFields ?? [] { connectProperties[field] = string() }
            for field in plugin.connectShape?.reconnectFields ?? [] { reconnectProperties[field] = string() }
        }
        let connectDescription = connectable.map { plugin -> String in
            let shape = plugin.connectShape ?? .refreshToken
            let fields = shape.connectFields + (shape.requiresAccount ? ["account_id (its account integration must exist)"] : [])
            return "\(plugin.provider.displayName): \(fields.joined(separator: ", "))."
        }.joined(separator: " ")
        let connect = object(
            connectProperties, required: ["user_id", "provider"],
            description: connectDescription + " Users normally connect by signing in (POST /api/v1/connections/authorizations); this form stays for migration.")
        let error = object(["error": object(["code": string(), "message": string()], required: ["code", "message"])], required: ["error"])
        var schemas: [String: J] = [
            "Calendar": calendar, "Connection": connection, "SyncProgress": progress, "Appointment": appointment, "AppointmentReference": reference,
            "AppointmentInput": appointmentInput, "AppointmentPatch": appointmentPatch, "Connect": connect, "Error": error,
            "Availability": object(
                [
                    "user": string(), "from": string(format: "date-time"), "to": string(format: "date-time"),
                    "busy": array(object(["start": string(format: "date-time"), "end": string(format: "date-time")], required: ["start", "end"])),
                ], required: ["user", "from", "to", "busy"]),
            "PushTarget": object(
                ["user_id": string(), "connection_id": nullable(string()), "calendar_id": nullable(string())],
                required: ["user_id", "connection_id", "calendar_id"]),
        ]
        // Sign-in is offered for the OAuth providers (their client configured on the gateway; 503 otherwise).
        let signInProviders = connectable.filter { $0.connectShape == .refreshToken }.map(\.provider.rawValue)
        schemas["AuthorizationRequest"] = object(
            [
                "user_id": string(), "provider": string(values: signInProviders), "visibility": string(values: ["only_me", "everyone"]),
                "account_id": string(), "connection_id": string("Reconnect this connection (e.g. one in needs_reconnect) instead of making a new one"),
            ], required: ["user_id", "provider"])
        schemas["Authorization"] = object(
            [
                "id": string("The sign-in's id"), "provider": string(values: signInProviders), "user_id": string(),
                "status": string(values: SignInAuthorization.Status.allCases.map(\.rawValue)),
                "reason": nullable(string(values: SignInFailure.Code.allCases.map(\.rawValue))), "message": nullable(string()),
                "reconnect_connection_id": nullable(string()), "created_at": string(format: "date-time"),
                "expires_at": string(format: "date-time"), "connection": nullable(ref("Connection")),
                "authorization_url": string("The consent URL to send the user's browser to (only in the answer that creates the sign-in)"),
            ],
            required: ["id", "provider", "user_id", "status", "reason", "message", "reconnect_connection_id", "created_at", "expires_at", "connection"],
            description: "A sign-in: pending until the provider's callback, then connected (with the connection) or failed (with the reason); a pending sign-in older than 10 minutes reads as failed (expired)")
        let id = path("id", "Connection id")
        let calendars = object(["calendars": array(ref("Calendar"))], required: ["calendars"])
        var paths: [String: J] = [
            "/api/v1/connections": .object([
                "post": operation(
                    "connect", "Connect an account", body: ref("Connect"),
                    responses: ["201": response("Connected", ref("Connection"))].merging(errors([400, 409, 422, 502, 503])) { a, _ in a }),
                "get": operation(
                    "listConnections", "List connections", parameters: [query("user", "Only this user's")],
                    responses: ["200": response("Connections", object(["connections": array(ref("Connection"))], required: ["connections"]))].merging(errors([])) { a, _ in a }),
            ]),
            "/api/v1/connections/authorizations": .object([
                "post": operation(
                    "startSignIn", "Start a sign-in: the consent URL to send the user to (valid once, for 10 minutes)", body: ref("AuthorizationRequest"),
                    responses: ["201": response("Pending sign-in with its authorization_url", ref("Authorization"))].merging(errors([400, 404, 409, 503])) { a, _ in a })
            ]),
            "/api/v1/connections/authorizations/{id}": .object([
                "get": operation(
                    "getSignIn", "A sign-in's status: pending, connected (with the connection) or failed (with the reason)",
                    parameters: [path("id", "Sign-in id")], responses: ["200": response("The sign-in", ref("Authorization"))].merging(errors([404])) { a, _ in a })
            ]),
            "/oauth/{provider}/callback": .object([
                "get": operation(
                    "signInCallback",
                    "Where the provider sends the user's browser back: claims state (once), exchanges the code with the PKCE verifier, connects, then redirects to sign_in_result_url with authorization_id, status and reason (or answers a small HTML page)",
                    parameters: [
                        path("provider", "The provider signed in to"), query("state", "The sign-in's single-use state", required: true), query("code", "The authorization code"),
                        query("error", "The provider's error, e.g. access_denied"), query("error_description", "Its description"),
                    ],
                    responses: [
                        "200": .object(["description": .string("Connected (HTML page)")]), "303": .object(["description": .string("To LeadCenter's result page")]),
                        "400": .object(["description": .string("Failed, or an unknown state (HTML page)")]),
                        "409": .object(["description": .string("The state was used before; nothing changed (HTML page)")]),
                    ], security: false)
            ]),
            "/api/v1/connections/{id}": .object([
                "get": operation("getConnection", "One connection", parameters: [id], responses: ["200": response("The connection", ref("Connection"))].merging(errors([404])) { a, _ in a }),
                "patch": operation(
                    "updateConnection", "Change visibility", parameters: [id],
                    body: object(["visibility": string(values: ["only_me", "everyone"])], required: ["visibility"]),
                    responses: ["200": response("Updated", ref("Connection"))].merging(errors([400, 404])) { a, _ in a }),
                "delete": operation(
                    "disconnect", "Disconnect: stop channels, remove imports", parameters: [id],
                    responses: ["200": response("Disconnected", ref("Connection"))].merging(errors([404, 502])) { a, _ in a }),
            ]),
            "/api/v1/connections/{id}/reconnect": .object([
                "post": operation(
                    "reconnect", "New credentials and a full re-sync", parameters: [id],
                    body: object(reconnectProperties, required: []),
                    responses: ["200": response("Reconnected", ref("Connection"))].merging(errors([400, 404, 422, 502])) { a, _ in a })
            ]),
            "/api/v1/connections/{id}/calendars": .object([
                "get": operation("listCalendars", "The account's calendars", parameters: [id], responses: ["200": response("Calendars", calendars)].merging(errors([404])) { a, _ in a }),
                "put": operation(
                    "selectCalendars", "Choose the synced calendars", parameters: [id],
                    body: object(["selected": array(string())], required: ["selected"]),
                    responses: ["200": response("Calendars", calendars)].merging(errors([400, 404, 409, 502])) { a, _ in a }),
            ]),
            "/api/v1/connections/{id}/calendars/refresh": .object([
                "post": operation("refreshCalendars", "Re-read the calendar list", parameters: [id], responses: ["200": response("Calendars", calendars)].merging(errors([404, 409, 502])) { a, _ in a })
            ]),
            "/api/v1/connections/{id}/calendars/{calendar}/appointments/{appointment}": .object([
                "patch": operation(
                    "categoriseImport", "Set the category of an imported appointment (nothing else may change)",
                    parameters: [id, path("calendar", "Calendar id"), path("appointment", "Appointment id")],
                    body: object(["category": nullable(string())], required: ["category"]),
                    responses: ["200": response("Updated", ref("Appointment"))].merging(errors([400, 404, 409])) { a, _ in a }),
                "delete": operation(
                    "deleteImport", "Refused: imports are deleted in their calendar",
                    parameters: [id, path("calendar", "Calendar id"), path("appointment", "Appointment id")], responses: errors([404, 409])),
            ]),
            "/api/v1/appointments": .object([
                "get": operation(
                    "listAppointments", "Appointments a viewer may see; a bounded range expands series",
                    parameters: [
                        query("user", "Whose appointments", required: true), query("viewer", "Who is looking (default: user)"),
                        query("account", "The viewer's account"), query("from", "Range start", format: "date-time"), query("to", "Range end", format: "date-time"),
                    ], responses: ["200": response("Appointments", object(["appointments": array(ref("Appointment"))], required: ["appointments"]))].merging(errors([400])) { a, _ in a }),
                "post": operation(
                    "createAppointment", "Create a LeadCenter appointment (pushed to the user's target)", body: ref("AppointmentInput"),
                    responses: ["201": response("Created", ref("Appointment"))].merging(errors([400])) { a, _ in a }),
            ]),
            "/api/v1/appointments/{id}": .object([
                "patch": operation(
                    "updateAppointment", "Change a LeadCenter appointment", parameters: [path("id", "Appointment id")], body: ref("AppointmentPatch"),
                    responses: ["200": response("Updated", ref("Appointment"))].merging(errors([400, 404, 409])) { a, _ in a }),
                "delete": operation(
                    "deleteAppointment", "Delete a LeadCenter appointment", parameters: [path("id", "Appointment id")],
                    responses: ["204": response("Deleted", nil)].merging(errors([404, 409])) { a, _ in a }),
            ]),
            "/api/v1/availability": .object([
                "get": operation(
                    "availability", "Merged busy intervals, no details",
                    parameters: [
                        query("user", "Whose time", required: true), query("from", "Range start", required: true, format: "date-time"),
                        query("to", "Range end (at most 366 days later)", required: true, format: "date-time"),
                    ], responses: ["200": response("Busy time", ref("Availability"))].merging(errors([400])) { a, _ in a })
            ]),
            "/api/v1/users/{user}/push-target": .object([
                "get": operation(
                    "getPushTarget", "The \"Add to calendar\" target", parameters: [path("user", "User id")],
                    responses: ["200": response("Target", ref("PushTarget"))].merging(errors([400])) { a, _ in a }),
                "put": operation(
                    "setPushTarget", "Choose (or clear with connection_id null) the target", parameters: [path("user", "User id")],
                    body: object(["connection_id": nullable(string()), "calendar_id": string()], required: ["connection_id"]),
                    responses: ["200": response("Target", ref("PushTarget"))].merging(errors([400, 404, 409])) { a, _ in a }),
            ]),
            "/api/v1/openapi.json": .object([
                "get": operation("openapi", "This document", responses: ["200": response("OpenAPI 3.1", .object(["type": .string("object")]))], security: false)
            ]),
        ]
        for plugin in plugins where !plugin.accountIntegrationFields.isEmpty {
            let name = plugin.provider.displayName
            let schema = "\(name)Integration"
            schemas[schema] = object(
                [
                    "account_id": string(), "account_type": string(), "connected": boolean, "redtail_user_id": nullable(string()),
                    "connected_at": string(format: "date-time"),
                ], required: ["account_id", "account_type", "connected", "redtail_user_id", "connected_at"])
            let fields = plugin.accountIntegrationFields
            paths["/api/v1/accounts/{account}/\(plugin.provider.rawValue)"] = .object([
                "get": operation(
                    "get\(schema)", "The account's main \(name) integration", parameters: [path("account", "Account id")],
                    responses: ["200": response("Integration", ref(schema))].merging(errors([404, 503])) { a, _ in a }),
                "put": operation(
                    "connect\(schema)", "Connect it (the provider decides which accounts qualify: 409 otherwise)", parameters: [path("account", "Account id")],
                    body: object(Dictionary(uniqueKeysWithValues: fields.map { ($0, string()) }), required: fields),
                    responses: ["200": response("Integration", ref(schema))].merging(errors([400, 409, 422, 502, 503])) { a, _ in a }),
                "delete": operation(
                    "delete\(schema)", "Remove it", parameters: [path("account", "Account id")],
                    responses: ["204": response("Removed", nil)].merging(errors([404, 503])) { a, _ in a }),
            ])
        }
        return .object([
            "openapi": .string("3.1.0"),
            "info": .object([
                "title": .string("calgate LeadCenter API"), "version": .string("1"),
                "description": .string("Connections, imported and LeadCenter appointments, availability and \"Add to calendar\". Errors share one shape: {\"error\": {\"code\", \"message\"}}."),
            ]),
            "servers": .array([.object(["url": .string("/")])]),
            "security": .array([.object(["bearer": .array([])])]),
            "paths": .object(paths),
            "components": .object([
                "schemas": .object(schemas),
                "securitySchemes": .object(["bearer": .object(["type": .string("http"), "scheme": .string("bearer")])]),
            ]),
        ])
    }
}
