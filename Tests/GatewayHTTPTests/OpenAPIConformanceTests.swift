import CurlHTTP
import Foundation
import GatewayCore
import GatewayHTTP
import GoogleCalendar
import ProviderSimulators
import TestSupport
import Testing

/// A JSON Schema validator for the subset the OpenAPI document uses: `$ref`, `type` (or a list of types),
/// `properties`, `required`, `additionalProperties: false`, `items`, `enum`, `oneOf`, formats `date-time` and `date`.
struct SchemaValidator {
    let document: JSONValue

    func resolve(_ schema: JSONValue) -> JSONValue {
        guard case .object(let fields) = schema, case .string(let reference)? = fields["$ref"] else { return schema }
        var node = document
        for part in reference.dropFirst(2).split(separator: "/") {
            guard case .object(let object) = node, let next = object[String(part)] else { return .null }
            node = next
        }
        return node
    }

    func errors(_ value: JSONValue, against raw: JSONValue, at path: String = "$") -> [String] {
        let schema = resolve(raw)
        guard case .object(let rules) = schema else { return ["\(path): schema is not an object"] }
        if case .array(let options)? = rules["oneOf"] {
            return options.contains { errors(value, against: $0, at: path).isEmpty } ? [] : ["\(path): matches no oneOf option"]
        }
        var problems: [String] = []
        var types: [String] = []
        switch rules["type"] {
        case .string(let type)?: types = [type]
        case .array(let list)?: types = list.compactMap { if case .string(let t) = $0 { return t } else { return nil } }
        default: break
        }
        if !types.isEmpty && !types.contains(Self.kind(value)) && !(types.contains("number") && Self.kind(value) == "integer") {
            return ["\(path): is \(Self.kind(value)), schema wants \(types)"]
        }
        if case .array(let allowed)? = rules["enum"], !allowed.contains(value) { problems.append("\(path): \(value) is not one of \(allowed)") }
        if case .string(let text) = value, case .string(let format)? = rules["format"] {
            if format == "date-time", ISO8601DateFormatter().date(from: text) == nil { problems.append("\(path): \(text) is not a date-time") }
            if format == "date", text.count != 10 { problems.append("\(path): \(text) is not a date") }
        }
        if case .object(let fields) = value {
            let properties: [String: JSONValue]
            if case .object(let declared)? = rules["properties"] { properties = declared } else { properties = [:] }
            if case .array(let required)? = rules["required"] {
                for case .string(let name) in required where fields[name] == nil { problems.append("\(path).\(name): required but missing") }
            }
            for (name, field) in fields {
                if let schema = properties[name] {
                    problems += errors(field, against: schema, at: "\(path).\(name)")
                } else if rules["additionalProperties"] == .bool(false) {
                    problems.append("\(path).\(name): not in the schema")
                }
            }
        }
        if case .array(let items) = value, let itemSchema = rules["items"] {
            for (index, item) in items.enumerated() { problems += errors(item, against: itemSchema, at: "\(path)[\(index)]") }
        }
        return problems
    }

    static func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .integer: "integer"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// The response schema of an operation and status; nil when the status is not documented for it.
    func responseSchema(_ template: String, _ method: String, _ status: Int) -> JSONValue?? {
        guard case .object(let top) = document, case .object(let paths)? = top["paths"], case .object(let item)? = paths[template],
            case .object(let operation)? = item[method.lowercased()], case .object(let responses)? = operation["responses"],
            case .object(let response)? = responses[String(status)]
        else { return nil }
        guard case .object(let content)? = response["content"], case .object(let media)? = content["application/json"] else { return .some(nil) }
        return .some(media["schema"])
    }
}

/// The OpenAPI document: committed copy equals the served one, every route is documented, and live responses —
/// from a scripted session and from seeded random request bodies — match it.
@Suite("OpenAPI conformance", .serialized)
struct OpenAPIConformanceTests {
    static var repositoryRoot: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized }

    @Test func theCommittedDocumentIsTheServedOneAndCoversEveryRoute() throws {
        let committed = try JSONValue.parse(Data(contentsOf: Self.repositoryRoot.appendingPathComponent("docs/openapi.json")))
        #expect(committed == OpenAPIDocument.document(plugins: GatewayHarness.plugins()), "docs/openapi.json is stale: regenerate it with `calgate openapi`")
        guard case .object(let top) = OpenAPIDocument.document(plugins: GatewayHarness.plugins()), case .object(let paths)? = top["paths"] else { Issue.record("no paths"); return }
        #expect(top["openapi"] == .string("3.1.0"))
        // The validator itself catches what it should: wrong types, missing and unknown fields, bad enums and formats.
        let validator = SchemaValidator(document: OpenAPIDocument.document(plugins: GatewayHarness.plugins()))
        let error = JSONValue.object(["$ref": .string("#/components/schemas/Error")])
        #expect(validator.errors(.object(["error": .object(["code": .string("c"), "message": .string("m")])]), against: error).isEmpty)
        #expect(!validator.errors(.object(["error": .string("c")]), against: error).isEmpty)
        #expect(!validator.errors(.object(["error": .object(["code": .string("c")])]), against: error).isEmpty)
        #expect(!validator.errors(.object(["error": .object(["code": .string("c"), "message": .string("m"), "extra": .null])]), against: error).isEmpty)
        let target = JSONValue.object(["$ref": .string("#/components/schemas/PushTarget")])
        #expect(validator.errors(.object(["user_id": .string("u"), "connection_id": .null, "calendar_id": .null]), against: target).isEmpty)
        #expect(!validator.errors(.object(["user_id": .integer(1), "connection_id": .null, "calendar_id": .null]), against: target).isEmpty)
        let availability = JSONValue.object(["$ref": .string("#/components/schemas/Availability")])
        #expect(!validator.errors(.object(["user": .string("u"), "from": .string("yesterday"), "to": .string("2026-12-01T00:00:00Z"), "busy": .array([])]), against: availability).isEmpty)
        let routes = try JSONValue.parse(Data(contentsOf: Self.repositoryRoot.appendingPathComponent("routes/api.json")))
        guard case .object(let table) = routes, case .array(let entries)? = table["routes"] else { Issue.record("no routes"); return }
        var routed: Set<String> = []
        for case .object(let entry) in entries {
            guard case .string(let method)? = entry["method"], case .string(let path)? = entry["path"] else { continue }
            routed.insert("\(method.lowercased()) \(path)")
            guard case .object(let item)? = paths[path] else { Issue.record("\(path) is routed but not documented"); continue }
            #expect(item[method.lowercased()] != nil, "\(method) \(path) is routed but not documented")
        }
        for (path, item) in paths {
            guard case .object(let operations) = item else { continue }
            for method in operations.keys { #expect(routed.contains("\(method) \(path)"), "\(method) \(path) is documented but not routed") }
        }
    }

    @Test func liveResponsesMatchTheDocument() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//ok"])
        simulator.addCalendar(id: "team", name: "Team")
        simulator.upsertEvent(
            calendar: "primary",
            timed(
                "Kickoff", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z",
                extra: [
                    "id": .string("k1"), "attendees": .array([.object(["email": .string("a@example.com")])]),
                ]))
        simulator.upsertEvent(
            calendar: "primary",
            [
                "id": .string("wk"), "summary": .string("Weekly"), "recurrence": .array([.string("RRULE:FREQ=WEEKLY;COUNT=3")]),
                "start": .object(["dateTime": .string("2026-12-02T09:00:00Z")]), "end": .object(["dateTime": .string("2026-12-02T09:30:00Z")]),
            ])
        let server = try await SimulatorServer(router: simulator.makeRouter())
        let gateway = try await GatewayHarness(google: { store, sealer, config in
            GoogleConnectionSyncer(
                client: GoogleCalendarClient(http: try CurlHTTPClient(), endpoints: GoogleEndpoints(tokenURL: server.baseURL + "/token", apiBaseURL: server.baseURL + "/calendar/v3")),
                store: store, sealer: sealer, clock: SystemGatewayClock(), webhookAddress: "https://localhost:\(config.listen.port)/webhooks/google"
            )
        })
        let validator = SchemaValidator(document: OpenAPIDocument.document(plugins: GatewayHarness.plugins()))
        var checked = 0
        func check(_ method: String, _ template: String, _ path: String, body: String? = nil, token: Bool = true) async throws -> JSONValue? {
            var arguments = ["-X", method]
            if token { arguments += ["-H", "Authorization: Bearer \(gateway.apiToken)"] }
            if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
            let response = try await curlRequest("https://127.0.0.1:\(gateway.port)\(path)", caFile: gateway.certificates.caCertificate, arguments: arguments)
            guard let documented = validator.responseSchema(template, method, response.status) else {
                Issue.record("\(method) \(path) answered \(response.status), which the document does not list: \(response.body)")
                return nil
            }
            checked += 1
            guard let schema = documented else {
                #expect(response.body.isEmpty, "\(method) \(path) \(response.status) should have no body")
                return nil
            }
            let value = try JSONValue.parse(Data(response.body.utf8))
            let problems = validator.errors(value, against: schema)
            #expect(problems.isEmpty, "\(method) \(path) \(response.status): \(problems)")
            return value
        }
        func field(_ value: JSONValue?, _ name: String) -> String? {
            if case .object(let object)? = value, case .string(let text)? = object[name] { return text }
            return nil
        }

        let created = try await check(
            "POST", "/api/v1/connections", "/api/v1/connections",
            body: #"{"user_id":"u1","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//ok","visibility":"everyone"}"#)
        let id = try #require(field(created, "id"))
        _ = try await check("POST", "/api/v1/connections", "/api/v1/connections", body: #"{"user_id":"u1","provider":"google"}"#)
        _ = try await check("POST", "/api/v1/connections", "/api/v1/connections", body: #"{"user_id":"u1","provider":"google","client_id":"c","client_secret":"s","refresh_token":"1//bad"}"#)
        _ = try await check("GET", "/api/v1/connections", "/api/v1/connections?user=u1")
        _ = try await check("GET", "/api/v1/connections", "/api/v1/connections", token: false)
        _ = try await check("GET", "/api/v1/connections/{id}", "/api/v1/connections/\(id)")
        _ = try await check("GET", "/api/v1/connections/{id}", "/api/v1/connections/nope")
        _ = try await check("PATCH", "/api/v1/connections/{id}", "/api/v1/connections/\(id)", body: #"{"visibility":"only_me"}"#)
        _ = try await check("GET", "/api/v1/connections/{id}/calendars", "/api/v1/connections/\(id)/calendars")
        _ = try await check("PUT", "/api/v1/connections/{id}/calendars", "/api/v1/connections/\(id)/calendars", body: #"{"selected":["primary","team"]}"#)
        _ = try await check("PUT", "/api/v1/connections/{id}/calendars", "/api/v1/connections/\(id)/calendars", body: #"{"selected":["nope"]}"#)
        _ = try await check("POST", "/api/v1/connections/{id}/calendars/refresh", "/api/v1/connections/\(id)/calendars/refresh")
        let template = "/api/v1/connections/{id}/calendars/{calendar}/appointments/{appointment}"
        _ = try await check("PATCH", template, "/api/v1/connections/\(id)/calendars/primary/appointments/k1", body: #"{"category":"Client"}"#)
        _ = try await check("PATCH", template, "/api/v1/connections/\(id)/calendars/primary/appointments/k1", body: #"{"title":"x"}"#)
        _ = try await check("DELETE", template, "/api/v1/connections/\(id)/calendars/primary/appointments/k1")
        _ = try await check("GET", "/api/v1/appointments", "/api/v1/appointments?user=u1")
        _ = try await check("GET", "/api/v1/appointments", "/api/v1/appointments?user=u1&from=2026-12-01T00:00:00Z&to=2026-12-31T00:00:00Z")
        _ = try await check("GET", "/api/v1/appointments", "/api/v1/appointments?user=u1&from=soon")
        _ = try await check("PUT", "/api/v1/users/{user}/push-target", "/api/v1/users/u1/push-target", body: #"{"connection_id":"\#(id)","calendar_id":"team"}"#)
        _ = try await check("GET", "/api/v1/users/{user}/push-target", "/api/v1/users/u1/push-target")
        let appointment = try await check(
            "POST", "/api/v1/appointments", "/api/v1/appointments",
            body: #"{"user_id":"u1","title":"Lunch","start":"2026-12-03T12:00:00Z","end":"2026-12-03T13:00:00Z"}"#)
        let lc = try #require(field(appointment, "id"))
        _ = try await check("PATCH", "/api/v1/appointments/{id}", "/api/v1/appointments/\(lc)", body: #"{"category":"Food"}"#)
        _ = try await check("PATCH", "/api/v1/appointments/{id}", "/api/v1/appointments/k1", body: #"{"title":"x"}"#)
        _ = try await check("GET", "/api/v1/availability", "/api/v1/availability?user=u1&from=2026-12-01T00:00:00Z&to=2026-12-31T00:00:00Z")
        _ = try await check("GET", "/api/v1/availability", "/api/v1/availability?user=u1")
        _ = try await check("GET", "/api/v1/accounts/{account}/redtail", "/api/v1/accounts/a1/redtail")
        _ = try await check("DELETE", "/api/v1/appointments/{id}", "/api/v1/appointments/\(lc)")
        _ = try await check("DELETE", "/api/v1/connections/{id}", "/api/v1/connections/\(id)")
        _ = try await check("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", token: false)

        // Property-based: seeded random bodies for creating appointments, valid and broken; every answer must be a
        // documented status with a body matching its schema, and a 201 must echo what was sent.
        var generator = SeededGenerator(seed: 20261125)
        let titles = ["Call", "", String(repeating: "x", count: 1100), "Ünïcødé ✓", "line\nbreak"]
        let instants = ["2026-12-05T10:00:00Z", "2026-12-05T11:00:00Z", "2026-12-05T09:00:00+01:00", "not-a-time", "2026-13-01T00:00:00Z"]
        let zones = ["Europe/Berlin", "UTC", "Mars/Olympus", ""]
        var created201 = 0
        for round in 0..<60 {
            var fields: [String: JSONValue] = ["user_id": .string("u\(round % 3)")]
            if Bool.random(using: &generator) || round % 7 != 0 { fields["title"] = .string(titles.randomElement(using: &generator)!) }
            switch Int.random(in: 0..<4, using: &generator) {
            case 0:
                fields["start"] = .string(instants.randomElement(using: &generator)!)
                fields["end"] = .string(instants.randomElement(using: &generator)!)
            case 1:
                fields["start_date"] = .string(["2026-12-05", "2026-12-06", "2026-02-30"].randomElement(using: &generator)!)
                fields["end_date"] = .string(["2026-12-06", "2026-12-05", "soon"].randomElement(using: &generator)!)
            case 2: fields["start"] = .integer(Int64.random(in: 0...100, using: &generator))
            default: break
            }
            if Bool.random(using: &generator) { fields["time_zone"] = .string(zones.randomElement(using: &generator)!) }
            if Int.random(in: 0..<5, using: &generator) == 0 { fields["category"] = [.null, .integer(3), .string("VIP")].randomElement(using: &generator)! }
            if Int.random(in: 0..<6, using: &generator) == 0 { fields["surprise"] = .bool(true) }
            let body = String(decoding: JSONValue.object(fields).serialized(), as: UTF8.self)
            if let answer = try await check("POST", "/api/v1/appointments", "/api/v1/appointments", body: body), field(answer, "source") == "leadcenter" {
                created201 += 1
                #expect(field(answer, "title") == { if case .string(let t)? = fields["title"] { return t } else { return nil } }())
            }
        }
        #expect(created201 > 0 && created201 < 60, "the random bodies include both valid and invalid ones (\(created201) created)")
        #expect(checked > 80)
        await server.stop()
        await gateway.shutdown()
    }
}

/// A small seeded generator so the property run is repeatable.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
