import CalgateMacros
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// A loopback stand-in for Redtail's public v1 API as calgate uses it (PROVIDERS.md §5): `GET /authentication` with
/// the 3-part Basic credential returning a UserKey, `GET /activities` with UserKey auth, 1-based pages with
/// `meta.total_pages`, `updated_since` and `start_date`/`end_date` filters, no tombstones (deleted activities
/// simply vanish), faults, locked accounts and a control API.
public final class RedtailSimulator: Sendable {
    /// A fault the next API calls answer with.
    public enum Fault: String, Sendable, CaseIterable {
        /// 429 with `Retry-After: 1`.
        case rateLimit = "rate_limit"
        /// 503.
        case serverError = "server_error"
        /// 401 "Gateway Time-out" (Redtail's front end reports upstream timeouts this way).
        case gatewayTimeout = "gateway_timeout"
        /// The answer comes two seconds late.
        case slow
    }

    /// A Redtail user.
    @MemberwiseInit
    public struct User: Sendable, Hashable {
        /// Partner API key.
        public var apiKey: String
        /// Login.
        public var username: String
        /// Password.
        public var password: String
        /// The UserKey `GET /authentication` returns.
        public var userKey: String
        /// Redtail's user id.
        public var id: Int
        /// Locked accounts answer 401 "Account Locked".
        public var locked: Bool = false
    }

    struct Activity {
        var json: [String: JSONValue]
        var owner: String
        var updatedAt: Date
    }

    struct State {
        var users: [String: User] = [:]
        var activities: [Int64: Activity] = [:]
        var nextID: Int64 = 555_000
        var faults: [Fault] = []
        var calls = 0
        var enforceLimits = false
        var perUser = WindowQuota(limit: PublishedLimits.redtailPerUserPerMinute, window: 60)
        var concurrent = ConcurrencyQuota(limit: PublishedLimits.redtailConcurrentPerUser)
    }

    private let state = Mutex(State())
    let clock: @Sendable () -> Date
    /// Random failures for long runs.
    public let chaos = SimulatorChaos()

    /// Creates a simulator with the given users.
    public init(users: [User] = [], clock: @escaping @Sendable () -> Date = { Date() }) {
        self.clock = clock
        state.withLock { state in for user in users { state.users[user.username] = user } }
    }

    /// A user with a fresh UserKey and id.
    public static func user(apiKey: String, username: String, password: String) -> User {
        User(apiKey: apiKey, username: username, password: password, userKey: UUID().uuidString.uppercased(), id: Int.random(in: 10_000...99_999), locked: false)
    }

    // MARK: Control

    /// Adds (or replaces) a user.
    public func addUser(_ user: User) {
        state.withLock { $0.users[user.username] = user }
    }

    /// Locks or unlocks an account.
    public func setLocked(_ locked: Bool, username: String) {
        state.withLock { $0.users[username]?.locked = locked }
    }

    /// Creates or replaces an activity for `username` (fields as public v1 names them); returns its id.
    @discardableResult
    public func upsertActivity(username: String, _ fields: [String: JSONValue]) -> Int64 {
        state.withLock { state in
            let id: Int64
            if case .integer(let given)? = fields["id"] {
                id = given
            } else {
                state.nextID += 1
                id = state.nextID
            }
            // updated_at has whole-second precision, like the watermark problem it models.
            let now = Date(timeIntervalSince1970: clock().timeIntervalSince1970.rounded(.down))
            var json = fields
            json["id"] = .integer(id)
            json["updated_at"] = .string(Self.iso(now))
            if json["all_day"] == nil { json["all_day"] = .bool(false) }
            if json["completed"] == nil { json["completed"] = .bool(false) }
            if json["activity_code_id"] == nil { json["activity_code_id"] = .integer(2) }
            if json["linked_contacts"] == nil { json["linked_contacts"] = .array([]) }
            state.activities[id] = Activity(json: json, owner: username, updatedAt: now)
            return id
        }
    }

    /// Deletes an activity (it disappears; Redtail keeps no tombstones).
    public func deleteActivity(id: Int64) {
        _ = state.withLock { $0.activities.removeValue(forKey: id) }
    }

    /// A user's activities: id → subject (the truth a synced store must equal).
    public func liveActivities(username: String) -> [String: String] {
        state.withLock { state in
            var result: [String: String] = [:]
            for (id, activity) in state.activities where activity.owner == username {
                if case .string(let subject)? = activity.json["subject"] { result[String(id)] = subject } else { result[String(id)] = "" }
            }
            return result
        }
    }

    /// Queues faults for the next API calls.
    public func inject(_ fault: Fault, count: Int = 1) {
        state.withLock { $0.faults += Array(repeating: fault, count: count) }
    }

    /// API calls answered so far.
    public var calls: Int { state.withLock { $0.calls } }

    // MARK: HTTP

    /// The router: `/api/public/v1/...` and `/control/...`.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/api/public/v1/authentication") { request, _ in
            try await self.faulted(request) {
                guard let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
                    let decoded = Data(base64Encoded: String(header.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) })
                else { return Self.message(401, "Authorization header missing") }
                let parts = decoded.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 3, let user = self.state.withLock({ $0.users[parts[1]] }), user.apiKey == parts[0], user.password == parts[2] else {
                    return Self.message(401, "Invalid credentials")
                }
                guard !user.locked else { return Self.message(401, "Account Locked") }
                return GoogleSimulator.json(
                    .object([
                        "authenticated_user": .object([
                            "id": .integer(Int64(user.id)), "user_key": .string(user.userKey), "redtail_database_id": .integer(99_999),
                        ])
                    ]))
            }
        }
        router.get("/api/public/v1/activities") { request, _ in
            try await self.faulted(request) {
                guard let user = self.user(for: request) else { return Self.message(401, "Authorization header missing") }
                guard !user.locked else { return Self.message(401, "Account Locked") }
                let query = request.uri.queryParameters
                let page = query.get("page").flatMap { Int($0) } ?? 1
                let size = min(max(query.get("page_size").flatMap { Int($0) } ?? 50, 1), 200)
                guard page >= 1 else { return Self.message(400, "page must be 1 or more") }
                var since: Date?
                if let text = query.get("updated_since") {
                    guard let date = Self.parse(String(text)) else { return Self.message(400, "updated_since must be ISO 8601") }
                    since = date
                }
                var window: (Date, Date)?
                if let start = query.get("start_date"), let end = query.get("end_date") {
                    guard let from = Self.parse(String(start)), let to = Self.parse(String(end)), from <= to else {
                        return Self.message(400, "start_date and end_date must be ISO 8601, start before end")
                    }
                    window = (from, to)
                }
                let matching = self.state.withLock { state in
                    state.activities.filter { _, activity in
                        guard activity.owner == user.username else { return false }
                        if let since, activity.updatedAt < since { return false }
                        if let (from, to) = window {
                            guard case .string(let s)? = activity.json["start_date"], let start = Self.parse(s) else { return false }
                            var end = start
                            if case .string(let e)? = activity.json["end_date"], let parsed = Self.parse(e) { end = parsed }
                            return start <= to && end >= from
                        }
                        return true
                    }.sorted { $0.key < $1.key }.map { JSONValue.object($0.value.json) }
                }
                let pages = max(1, (matching.count + size - 1) / size)
                let slice = Array(matching.dropFirst((page - 1) * size).prefix(size))
                return GoogleSimulator.json(
                    .object([
                        "activities": .array(slice),
                        "meta": .object(["total_records": .integer(Int64(matching.count)), "total_pages": .integer(Int64(pages))]),
                    ]))
            }
        }
        router.post("/control/users") { request, context in
            let fields = try await GoogleSimulator.jsonObject(request, context: context)
            guard case .string(let apiKey)? = fields["api_key"], case .string(let username)? = fields["username"],
                case .string(let password)? = fields["password"]
            else { return Self.message(400, "api_key, username and password are required") }
            self.addUser(Self.user(apiKey: apiKey, username: username, password: password))
            return Response(status: .created)
        }
        router.post("/control/users/:username/activities") { request, context in
            let username = context.parameters.get("username") ?? ""
            guard self.state.withLock({ $0.users[username] != nil }) else { return Self.message(404, "no such user") }
            let fields = try await GoogleSimulator.jsonObject(request, context: context)
            guard case .string? = fields["start_date"] else { return Self.message(400, "start_date is required") }
            return GoogleSimulator.json(.object(["id": .integer(self.upsertActivity(username: username, fields))]), status: .created)
        }
        router.patch("/control/activities/:id") { request, context in
            guard let id = context.parameters.get("id").flatMap({ Int64($0) }),
                let current = self.state.withLock({ $0.activities[id] })
            else { return Self.message(404, "no such activity") }
            var json = current.json
            for (key, value) in try await GoogleSimulator.jsonObject(request, context: context) where key != "id" { json[key] = value }
            self.upsertActivity(username: current.owner, json)
            return Response(status: .noContent)
        }
        router.delete("/control/activities/:id") { _, context in
            guard let id = context.parameters.get("id").flatMap({ Int64($0) }) else { return Self.message(400, "id must be a number") }
            self.deleteActivity(id: id)
            return Response(status: .noContent)
        }
        router.post("/control/users/:username/:action") { _, context in
            let username = context.parameters.get("username") ?? ""
            switch context.parameters.get("action") {
            case "lock": self.setLocked(true, username: username)
            case "unlock": self.setLocked(false, username: username)
            default: return Self.message(400, "action must be lock or unlock")
            }
            return Response(status: .noContent)
        }
        router.post("/control/faults/:fault") { request, context in
            guard let fault = Fault(rawValue: context.parameters.get("fault") ?? "") else {
                return Self.message(400, "unknown fault; use one of \(Fault.allCases.map(\.rawValue))")
            }
            self.inject(fault, count: min(max(request.uri.queryParameters.get("count").flatMap { Int($0) } ?? 1, 1), 1000))
            return Response(status: .noContent)
        }
        return router
    }

    /// Throttling answers (quota and chaos) per minute of the simulator's clock.
    public let throttles = ThrottleLedger()

    /// Turns the assumed per-credential limits on or off (off by default). Redtail publishes no rate limit
    /// (PROVIDERS.md §5.4); the simulator assumes `PublishedLimits.redtailPerUserPerMinute` requests per minute and
    /// `redtailConcurrentPerUser` at once per credential (the Authorization header), answering 429 with `Retry-After`.
    public func enforcePublishedLimits(_ enforce: Bool) {
        state.withLock { $0.enforceLimits = enforce }
    }

    func faulted(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        let now = clock()
        let credential = request.headers[.authorization] ?? ""
        let (fault, refused, entered) = state.withLock { state -> (Fault?, TimeInterval?, Bool) in
            state.calls += 1
            if state.enforceLimits {
                if let wait = state.perUser.admit(credential, now: now) { return (nil, wait, false) }
                guard state.concurrent.enter(credential) else { return (nil, 1, false) }
            }
            return (state.faults.isEmpty ? nil : state.faults.removeFirst(), nil, state.enforceLimits)
        }
        if let refused {
            throttles.record(.quota, at: now)
            var response = Self.message(429, "Too Many Requests")
            response.headers[.retryAfter] = String(Int(refused))
            return response
        }
        defer { if entered { state.withLock { $0.concurrent.leave(credential) } } }
        switch chaos.nextFailure() {
        case .rateLimit?:
            throttles.record(.chaos, at: now)
            return Self.message(429, "Too Many Requests")
        case .serverError?: return Self.message(503, "Service Unavailable")
        case .timeout?:
            try? await Task.sleep(for: chaos.timeoutDelay)
            return Self.message(401, "Gateway Time-out")
        case nil: break
        }
        switch fault {
        case .rateLimit?:
            var response = Self.message(429, "Too Many Requests")
            response.headers[.retryAfter] = "1"
            return response
        case .serverError?: return Self.message(503, "Service Unavailable")
        case .gatewayTimeout?: return Self.message(401, "Gateway Time-out")
        case .slow?: try await Task.sleep(for: .seconds(2))
        case nil: break
        }
        return try await body()
    }

    /// The user a UserKey-authenticated request belongs to (`Userkeyauth base64(APIKey:UserKey)`, or Basic plus a
    /// `userkey` header).
    func user(for request: Request) -> User? {
        guard let header = request.headers[.authorization] else { return nil }
        let lowered = header.lowercased()
        var apiKey: String?
        var userKey: String?
        if lowered.hasPrefix("userkeyauth "), let data = Data(base64Encoded: String(header.dropFirst(12))) {
            let parts = String(decoding: data, as: UTF8.self).split(separator: ":", maxSplits: 1).map(String.init)
            if parts.count == 2 { (apiKey, userKey) = (parts[0], parts[1]) }
        } else if lowered.hasPrefix("basic "), let data = Data(base64Encoded: String(header.dropFirst(6))),
            let key = request.headers[HTTPField.Name("userkey")!]
        {
            apiKey = String(decoding: data, as: UTF8.self).split(separator: ":", omittingEmptySubsequences: false).first.map(String.init)
            userKey = key
        }
        guard let apiKey, let userKey else { return nil }
        return state.withLock { $0.users.values.first { $0.apiKey == apiKey && $0.userKey == userKey } }
    }

    static func message(_ status: Int, _ text: String) -> Response {
        GoogleSimulator.json(.object(["message": .string(text)]), status: HTTPResponse.Status(code: status))
    }

    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    static func parse(_ text: String) -> Date? {
        RFC3339.parse(text)
    }
}
