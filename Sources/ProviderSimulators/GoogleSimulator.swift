import CurlHTTP
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A loopback stand-in for the parts of Google Calendar calgate uses: OAuth refresh, `events.list` with sync and
/// page tokens exactly as Google hands them out, and a control API to change calendars and inject faults.
///
/// Every change bumps a global version; a sync token names the version it was issued at, so an incremental list
/// returns exactly what changed since (deletions as `cancelled`). Page tokens pin the version of the first page,
/// so a paged listing is one consistent snapshot.
public final class GoogleSimulator: Sendable {
    /// A fault the next API calls answer with.
    public enum Fault: String, Sendable, CaseIterable {
        /// 429 `rateLimitExceeded` with `Retry-After: 1`.
        case rateLimit = "rate_limit"
        /// 403 `rateLimitExceeded`.
        case forbiddenRateLimit = "forbidden_rate_limit"
        /// 503 `backendError`.
        case serverError = "server_error"
        /// 500 `backendError`.
        case internalError = "internal_error"
        /// The answer comes two seconds late.
        case slow = "slow"
        /// The next push notification is never sent.
        case dropPush = "drop_push"
        /// The next push notification is sent twice.
        case duplicatePush = "duplicate_push"
        /// The next push notification is sent three seconds late.
        case delayPush = "delay_push"
    }

    struct StoredEvent {
        /// The event; `serialized` follows every change.
        var json: [String: JSONValue] { didSet { serialized = JSONValue.object(json).serialized() } }
        var version: Int
        var deleted: Bool
        /// `json` as served in listings, encoded once per change rather than once per page served (JSONEncoder was
        /// most of the time of paging a large calendar).
        private(set) var serialized: [UInt8]

        init(json: [String: JSONValue], version: Int, deleted: Bool) {
            self.json = json
            self.version = version
            self.deleted = deleted
            serialized = JSONValue.object(json).serialized()
        }
    }

    struct State {
        var version = 1
        var calendars: [String: [String: StoredEvent]] = [:]
        var refreshTokens: Set<String> = []
        var accessTokens: Set<String> = []
        var tokensValidFrom = 0
        var faults: [Fault] = []
        var pushFaults: [Fault] = []
        var listCalls = 0
        var nextID = 1
        var calendarNames: [String: String] = ["primary": "Primary"]
        var channels: [String: WatchedChannel] = [:]
        var failingStops = 0
        /// The last listing served, valid while `version` is unchanged.
        var listingCache: (listing: Listing, version: Int, events: [StoredEvent])?
        /// Which refresh token (user) each access token was issued for.
        var accessTokenOwner: [String: String] = [:]
        var enforceLimits = false
        var userQuota = WindowQuota(limit: PublishedLimits.googlePerUserPerMinute, window: 60)
        var projectQuota = WindowQuota(limit: PublishedLimits.googlePerProjectPerMinute, window: 60)
        var callsByUser: [String: Int] = [:]
    }

    /// What one `events.list` snapshot is made of.
    struct Listing: Hashable {
        var calendar: String
        var since: Int
        var snapshot: Int
        var showDeleted: Bool
        var property: [String]?
    }

    /// A channel opened with `events.watch`.
    public struct WatchedChannel: Sendable, Hashable {
        /// Channel id the caller chose.
        public var id: String
        /// The resource id the simulator assigned.
        public var resourceID: String
        /// Calendar watched.
        public var calendar: String
        /// Where pushes go.
        public var address: String
        /// The caller's token.
        public var token: String
        /// Whether `channels.stop` was called.
        public var stopped: Bool
        /// When the channel expires.
        public var expiresAt: Date
    }

    private let state = Mutex(State())
    /// The simulator's time (channel expiry, `updated` stamps); the wall clock unless a test injects another.
    let clock: @Sendable () -> Date
    /// Random failures and dropped pushes for long runs.
    public let chaos = SimulatorChaos()
    private let inFlight = Mutex(0)

    /// Pushes still being sent or retried.
    public var pushesInFlight: Int { inFlight.withLock { $0 } }

    /// Throttling answers (quota and chaos) per minute of the simulator's clock.
    public let throttles = ThrottleLedger()

    /// Turns enforcement of Google's published quotas on or off (off by default, so wall-clock benchmarks that
    /// hammer one user are not throttled): 600 requests per minute per user (403 `userRateLimitExceeded`) and 10,000
    /// per minute per project (429 `rateLimitExceeded`), on the simulator's clock, with `Retry-After`.
    public func enforcePublishedLimits(_ enforce: Bool) {
        state.withLock { $0.enforceLimits = enforce }
    }

    /// API calls answered (after quotas, before chaos) per user (the refresh token an access token came from).
    public var callsByUser: [String: Int] { state.withLock { $0.callsByUser } }

    /// The quota answer for an API call, if a published limit is exceeded; counts the call otherwise.
    func quotaResponse(_ request: Request) -> Response? {
        let now = clock()
        let token = request.headers[.authorization].map { String($0.dropFirst(7)) } ?? ""
        let refused: (status: Int, wait: TimeInterval)? = state.withLock { state in
            let user = state.accessTokenOwner[token] ?? "unknown"
            guard state.enforceLimits else {
                state.callsByUser[user, default: 0] += 1
                return nil
            }
            if let wait = state.projectQuota.admit("project", now: now) { return (429, wait) }
            if let wait = state.userQuota.admit(user, now: now) { return (403, wait) }
            state.callsByUser[user, default: 0] += 1
            return nil
        }
        guard let refused else { return nil }
        throttles.record(.quota, at: now)
        var response =
            refused.status == 429
            ? Self.googleError(429, reason: "rateLimitExceeded", message: "Rate Limit Exceeded")
            : Self.googleError(403, reason: "userRateLimitExceeded", message: "User Rate Limit Exceeded")
        response.headers[.retryAfter] = String(Int(refused.wait))
        return response
    }

    /// The quota or chaos answer for an API call, if either strikes.
    func chaosResponse(_ request: Request, allowTimeout: Bool) async -> Response? {
        if let refused = quotaResponse(request) { return refused }
        switch chaos.nextFailure(allowTimeout: allowTimeout) {
        case .rateLimit?:
            throttles.record(.chaos, at: clock())
            return Self.googleError(429, reason: "rateLimitExceeded", message: "Rate Limit Exceeded")
        case .serverError?: return Self.googleError(503, reason: "backendError", message: "Backend Error")
        case .timeout?:
            try? await Task.sleep(for: chaos.timeoutDelay)
            return Self.googleError(504, reason: "backendError", message: "Deadline exceeded")
        case nil: return nil
        }
    }
    private let pushClientBox: Mutex<CurlHTTPClient?>
    private let channelLifetime: TimeInterval
    /// Sign-in: the consent page at `/o/oauth2/v2/auth` and code redemption at `/token`.
    public let consent: SimulatorConsent
    private let pushes = Mutex<(sent: Int, delivered: Int, messageNumber: UInt64)>((0, 0, 1))

    /// Creates an empty simulator that accepts `refreshTokens`. With `pushClient` (trusting the gateway's CA, as
    /// Google trusts only real certificates) it sends push notifications to every watched calendar's channel.
    /// `channelLifetime` is how long `events.watch` channels live (Google: about a week); tests that exercise renewal
    /// shorten it.
    public init(
        refreshTokens: Set<String> = [], pushClient: CurlHTTPClient? = nil, channelLifetime: TimeInterval = 7 * 86_400,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.clock = clock
        self.channelLifetime = channelLifetime
        self.pushClientBox = Mutex(pushClient)
        consent = SimulatorConsent(providerName: "Google", decisionPath: "/o/oauth2/v2/auth/decision", clock: clock)
        state.withLock { $0.refreshTokens = refreshTokens }
    }

    /// Sets (or removes) the client pushes go out with, e.g. once the gateway's CA exists.
    public func setPushClient(_ client: CurlHTTPClient?) {
        pushClientBox.withLock { $0 = client }
    }

    /// Pushes attempted and pushes the receiver acknowledged with 2xx.
    public var pushStatistics: (sent: Int, delivered: Int) { pushes.withLock { ($0.sent, $0.delivered) } }

    /// Sends `state` to every live channel on `calendar`, as Google does: empty body, `X-Goog-*` headers, message
    /// numbers that grow with gaps; 500/502/503/504 are retried with backoff, anything else is dropped.
    func notifyChannels(calendar: String, state resourceState: String = "exists", only channelID: String? = nil) {
        guard let pushClient = pushClientBox.withLock({ $0 }) else { return }
        let now = clock()
        // An expired channel is dead at Google: nothing is sent through it.
        let targets = state.withLock {
            $0.channels.values.filter { $0.calendar == calendar && !$0.stopped && $0.expiresAt > now && (channelID == nil || $0.id == channelID) }
        }
        for channel in targets {
            let number: UInt64 =
                resourceState == "sync"
                ? 1
                : pushes.withLock { counters in
                    counters.messageNumber += UInt64.random(in: 1...3)
                    return counters.messageNumber
                }
            var headers = [
                CurlHTTPHeader("X-Goog-Channel-ID", channel.id), CurlHTTPHeader("X-Goog-Resource-ID", channel.resourceID),
                CurlHTTPHeader("X-Goog-Resource-URI", "https://www.googleapis.com/calendar/v3/calendars/\(calendar)/events?alt=json"),
                CurlHTTPHeader("X-Goog-Resource-State", resourceState), CurlHTTPHeader("X-Goog-Message-Number", String(number)),
                CurlHTTPHeader("User-Agent", "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"),
                CurlHTTPHeader("X-Goog-Channel-Expiration", Self.rfc1123(channel.expiresAt)),
            ]
            if !channel.token.isEmpty { headers.append(CurlHTTPHeader("X-Goog-Channel-Token", channel.token)) }
            let request = CurlHTTPRequest(method: "POST", url: channel.address, headers: headers, body: [], timeout: .seconds(10))
            let fault = state.withLock { $0.pushFaults.isEmpty ? nil : $0.pushFaults.removeFirst() }
            if fault == .dropPush || chaos.dropsNotification() { continue }
            let copies = fault == .duplicatePush ? 2 : 1
            let delay: Duration = fault == .delayPush ? .seconds(3) : .zero
            for _ in 0..<copies { send(request, after: delay, with: pushClient) }
        }
    }

    private func send(_ request: CurlHTTPRequest, after initialDelay: Duration, with pushClient: CurlHTTPClient) {
        inFlight.withLock { $0 += 1 }
        Task {
            defer { self.inFlight.withLock { $0 -= 1 } }
            if initialDelay > .zero { try? await Task.sleep(for: initialDelay) }
            var delay = Duration.milliseconds(200)
            for _ in 0..<6 {
                self.pushes.withLock { $0.sent += 1 }
                let status = (try? await pushClient.execute(request))?.status ?? 503
                if [200, 201, 202, 204, 102].contains(status) {
                    self.pushes.withLock { $0.delivered += 1 }
                    return
                }
                guard [500, 502, 503, 504].contains(status) else { return }
                try? await Task.sleep(for: delay)
                delay *= 2
            }
        }
    }

    /// `events.list` calls answered so far (faults included).
    public var listCalls: Int { state.withLock { $0.listCalls } }

    // MARK: Control (also served over HTTP under /control)

    /// Creates or replaces an event; returns its id.
    @discardableResult
    public func upsertEvent(calendar: String, _ fields: [String: JSONValue]) -> String {
        let id = state.withLock { state in
            state.version += 1
            var json = fields
            let id: String
            if case .string(let given)? = fields["id"] {
                id = given
            } else {
                id = "ev\(state.nextID)"
                state.nextID += 1
            }
            json["id"] = .string(id)
            json["status"] = json["status"] ?? .string("confirmed")
            json["iCalUID"] = json["iCalUID"] ?? .string("\(id)@google.com")
            // FoundationEssentials' ISO 8601 style: about 1 µs, where a new ISO8601DateFormatter costs ~0.2 ms per change.
            json["updated"] = .string(clock().formatted(.iso8601))
            state.calendars[calendar, default: [:]][id] = StoredEvent(json: json, version: state.version, deleted: false)
            return id
        }
        notifyChannels(calendar: calendar)
        return id
    }

    /// Deletes an event (later incremental lists return it as `cancelled`).
    public func deleteEvent(calendar: String, id: String) {
        state.withLock { state in
            guard var event = state.calendars[calendar]?[id] else { return }
            state.version += 1
            event.deleted = true
            event.version = state.version
            event.json = ["id": .string(id), "status": .string("cancelled")]
            state.calendars[calendar]?[id] = event
        }
        notifyChannels(calendar: calendar)
    }

    /// Makes every sync token issued so far answer 410 `fullSyncRequired`.
    public func invalidateSyncTokens() {
        state.withLock {
            $0.tokensValidFrom = $0.version + 1; $0.version += 1
        }
    }

    /// Queues faults for the next API calls (or, for push faults, the next pushes), in order.
    public func inject(_ fault: Fault, count: Int = 1) {
        state.withLock { state in
            switch fault {
            case .dropPush, .duplicatePush, .delayPush: state.pushFaults += Array(repeating: fault, count: count)
            case .rateLimit, .forbiddenRateLimit, .serverError, .internalError, .slow: state.faults += Array(repeating: fault, count: count)
            }
        }
    }

    /// Accepts `refreshToken` from now on (a user who signed in again).
    public func addRefreshToken(_ refreshToken: String) {
        _ = state.withLock { $0.refreshTokens.insert(refreshToken) }
    }

    /// Makes a refresh token answer `invalid_grant` from now on.
    public func revoke(refreshToken: String) {
        _ = state.withLock { $0.refreshTokens.remove(refreshToken) }
    }

    /// A live event's fields, or nil when it does not exist or was deleted.
    public func event(calendar: String, id: String) -> [String: JSONValue]? {
        state.withLock { state in
            guard let event = state.calendars[calendar]?[id], !event.deleted else { return nil }
            return event.json
        }
    }

    /// Every live event of a calendar: id → summary (the truth a synced store must equal).
    public func liveEvents(calendar: String) -> [String: String] {
        state.withLock { state in
            var result: [String: String] = [:]
            for (id, event) in state.calendars[calendar] ?? [:] where !event.deleted {
                if case .string(let summary)? = event.json["summary"] { result[id] = summary } else { result[id] = "" }
            }
            return result
        }
    }

    /// Adds a calendar to the user's calendar list.
    public func addCalendar(id: String, name: String) {
        state.withLock { $0.calendarNames[id] = name }
    }

    /// Makes the next `count` `channels.stop` calls answer 503.
    public func failNextStops(_ count: Int) {
        state.withLock { $0.failingStops += count }
    }

    /// Channels that are neither stopped nor expired, per calendar (more than one means a renewal left a duplicate).
    public func liveChannels(calendar: String) -> [WatchedChannel] {
        let now = clock()
        return state.withLock { $0.channels.values.filter { $0.calendar == calendar && !$0.stopped && $0.expiresAt > now } }
    }

    /// Channels opened so far.
    public var channels: [WatchedChannel] { state.withLock { Array($0.channels.values) } }

    /// Every access token the token endpoint has issued (for tests that check none is stored or logged).
    public var issuedAccessTokens: [String] { state.withLock { Array($0.accessTokens) } }

    // MARK: HTTP

    /// The simulator's router: `/o/oauth2/v2/auth` (consent), `/token`, `/calendar/v3/...` and `/control/...`.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/o/oauth2/v2/auth") { request, _ in self.consent.authorizePage(request) }
        router.post("/o/oauth2/v2/auth/decision") { request, _ in try await self.consent.decide(request) }
        router.post("/token") { request, context in try await self.token(request, context: context) }
        router.get("/calendar/v3/calendars/:calendar/events") { request, context in
            if self.state.withLock({ $0.faults.first == .slow ? $0.faults.removeFirst() : nil }) != nil {
                try await Task.sleep(for: .seconds(2))
            }
            if let failure = await self.chaosResponse(request, allowTimeout: true) { return failure }
            return try self.listEvents(request, calendar: context.parameters.get("calendar") ?? "")
        }
        router.post("/calendar/v3/calendars/:calendar/events") { request, context in
            guard self.authorized(request) else { return Self.googleError(401, reason: "authError", message: "Invalid Credentials") }
            if let failure = await self.chaosResponse(request, allowTimeout: false) { return failure }
            var fields = try await Self.jsonObject(request, context: context)
            fields["id"] = nil
            guard fields["start"] != nil, fields["end"] != nil else { return Self.googleError(400, reason: "required", message: "Missing end time.") }
            let calendar = context.parameters.get("calendar") ?? ""
            let id = self.upsertEvent(calendar: calendar, fields)
            return Self.json(.object(self.event(calendar: calendar, id: id) ?? [:]))
        }
        router.get("/calendar/v3/calendars/:calendar/events/:id") { request, context in
            guard self.authorized(request) else { return Self.googleError(401, reason: "authError", message: "Invalid Credentials") }
            if let failure = await self.chaosResponse(request, allowTimeout: false) { return failure }
            guard let event = self.event(calendar: context.parameters.get("calendar") ?? "", id: context.parameters.get("id") ?? "") else {
                return Self.googleError(404, reason: "notFound", message: "Not Found")
            }
            return Self.json(.object(event))
        }
        router.patch("/calendar/v3/calendars/:calendar/events/:id") { request, context in
            guard self.authorized(request) else { return Self.googleError(401, reason: "authError", message: "Invalid Credentials") }
            if let failure = await self.chaosResponse(request, allowTimeout: false) { return failure }
            let calendar = context.parameters.get("calendar") ?? ""
            let id = context.parameters.get("id") ?? ""
            guard var current = self.event(calendar: calendar, id: id) else { return Self.googleError(404, reason: "notFound", message: "Not Found") }
            for (key, value) in try await Self.jsonObject(request, context: context) where key != "id" { current[key] = value }
            self.upsertEvent(calendar: calendar, current)
            return Self.json(.object(self.event(calendar: calendar, id: id) ?? [:]))
        }
        router.delete("/calendar/v3/calendars/:calendar/events/:id") { request, context in
            guard self.authorized(request) else { return Self.googleError(401, reason: "authError", message: "Invalid Credentials") }
            if let failure = await self.chaosResponse(request, allowTimeout: false) { return failure }
            let calendar = context.parameters.get("calendar") ?? ""
            let id = context.parameters.get("id") ?? ""
            guard self.event(calendar: calendar, id: id) != nil else { return Self.googleError(410, reason: "deleted", message: "Resource has been deleted") }
            self.deleteEvent(calendar: calendar, id: id)
            return Response(status: .noContent)
        }
        router.get("/calendar/v3/users/me/calendarList") { request, _ in
            guard self.authorized(request) else { return Self.googleError(401, reason: "authError", message: "Invalid Credentials") }
            let items = self.state.withLock { state in
                state.calendarNames.sorted { $0.key < $1.key }.map { id, name -> JSONValue in
                    .object(["id": .string(id), "summary": .string(name), "primary": .bool(id == "primary")])
                }
            }
            return Self.json(.object(["kind": .string("calendar#calendarList"), "items": .array(items)]))
        }
        router.post("/calendar/v3/calendars/:calendar/events/watch") { request, context in
            guard self.authorized(request) else { return Self.googleError(401, reason: "authError", message: "Invalid Credentials") }
            if let failure = await self.chaosResponse(request, allowTimeout: false) { return failure }
            let fields = try await Self.jsonObject(request, context: context)
            guard case .string(let id)? = fields["id"], case .string(let address)? = fields["address"], address.hasPrefix("https://") else {
                return Self.googleError(400, reason: "invalid", message: "id and an https address are required")
            }
            var token = ""
            if case .string(let given)? = fields["token"] { token = given }
            let calendar = context.parameters.get("calendar") ?? ""
            let resourceID = "res-\(calendar)-\(id.prefix(8))"
            let expiresAt = self.clock().addingTimeInterval(self.channelLifetime)
            let expiration = Int64((expiresAt.timeIntervalSince1970 * 1000).rounded())
            self.state.withLock {
                $0.channels[id] = WatchedChannel(
                    id: id, resourceID: resourceID, calendar: calendar, address: address, token: token, stopped: false, expiresAt: expiresAt
                )
            }
            // Google announces a new channel with a `sync` message, possibly before the watch response arrives.
            self.notifyChannels(calendar: calendar, state: "sync", only: id)
            return Self.json(
                .object([
                    "kind": .string("api#channel"), "id": .string(id), "resourceId": .string(resourceID),
                    "resourceUri": .string("https://www.googleapis.com/calendar/v3/calendars/\(calendar)/events?alt=json"),
                    "token": .string(token), "expiration": .string(String(expiration)),
                ]))
        }
        router.post("/calendar/v3/channels/stop") { request, context in
            guard self.authorized(request) else { return Self.googleError(401, reason: "authError", message: "Invalid Credentials") }
            if let failure = await self.chaosResponse(request, allowTimeout: false) { return failure }
            let fields = try await Self.jsonObject(request, context: context)
            guard case .string(let id)? = fields["id"], case .string(let resource)? = fields["resourceId"] else {
                return Self.googleError(400, reason: "invalid", message: "id and resourceId are required")
            }
            if self.state.withLock({ state -> Bool in
                guard state.failingStops > 0 else { return false }
                state.failingStops -= 1
                return true
            }) {
                return Self.googleError(503, reason: "backendError", message: "Backend Error")
            }
            let found = self.state.withLock { state -> Bool in
                guard let channel = state.channels[id], channel.resourceID == resource else { return false }
                state.channels[id]?.stopped = true
                return true
            }
            return found ? Response(status: .noContent) : Self.googleError(404, reason: "notFound", message: "Channel not found")
        }
        router.post("/control/calendars") { request, context in
            let fields = try await Self.jsonObject(request, context: context)
            guard case .string(let id)? = fields["id"], case .string(let name)? = fields["name"] else {
                return Self.json(.object(["error": .string("id and name are required")]), status: .badRequest)
            }
            self.addCalendar(id: id, name: name)
            return Response(status: .created)
        }
        router.get("/control/calendars/:calendar/events") { _, context in
            // The truth a synced store must equal (crash test, by hand): live events, id → summary.
            let live = self.liveEvents(calendar: context.parameters.get("calendar") ?? "")
            return Self.json(.object(["events": .object(live.mapValues { .string($0) })]))
        }
        router.post("/control/calendars/:calendar/events") { request, context in
            let fields = try await Self.jsonObject(request, context: context)
            let id = self.upsertEvent(calendar: context.parameters.get("calendar") ?? "", fields)
            return Self.json(.object(["id": .string(id)]), status: .created)
        }
        router.patch("/control/calendars/:calendar/events/:id") { request, context in
            let calendar = context.parameters.get("calendar") ?? ""
            let id = context.parameters.get("id") ?? ""
            guard var current = self.event(calendar: calendar, id: id) else {
                return Self.json(.object(["error": .string("no such event")]), status: .notFound)
            }
            for (key, value) in try await Self.jsonObject(request, context: context) where key != "id" { current[key] = value }
            self.upsertEvent(calendar: calendar, current)
            return Response(status: .noContent)
        }
        router.delete("/control/calendars/:calendar/events/:id") { _, context in
            self.deleteEvent(calendar: context.parameters.get("calendar") ?? "", id: context.parameters.get("id") ?? "")
            return Response(status: .noContent)
        }
        router.post("/control/faults/:fault") { request, context in
            guard let fault = Fault(rawValue: context.parameters.get("fault") ?? "") else {
                return Self.json(.object(["error": .string("unknown fault; use one of \(Fault.allCases.map(\.rawValue))")]), status: .badRequest)
            }
            let count = request.uri.queryParameters.get("count").flatMap(Int.init) ?? 1
            self.inject(fault, count: count)
            return Response(status: .noContent)
        }
        router.get("/control/channels") { _, _ in
            // What Google would put in its pushes: enough to send honest (and, by changing it, forged) ones by hand.
            let channels = self.channels.sorted { $0.id < $1.id }.map { channel -> JSONValue in
                .object([
                    "id": .string(channel.id), "resource_id": .string(channel.resourceID), "calendar": .string(channel.calendar),
                    "address": .string(channel.address), "token": .string(channel.token), "stopped": .bool(channel.stopped),
                    "expiration": .string(Self.rfc1123(channel.expiresAt)),
                ])
            }
            return Self.json(.object(["channels": .array(channels)]))
        }
        router.post("/control/invalidate-sync-tokens") { _, _ in
            self.invalidateSyncTokens()
            return Response(status: .noContent)
        }
        return router
    }

    private func token(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 16_384)
        var form: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            if parts.count == 2 { form[parts[0]] = parts[1] }
        }
        if form["grant_type"] == "authorization_code" { return redeem(form) }
        guard form["grant_type"] == "refresh_token", let refresh = form["refresh_token"] else {
            return Self.json(.object(["error": .string("unsupported_grant_type")]), status: .badRequest)
        }
        let issued: String? = state.withLock { state in
            guard state.refreshTokens.contains(refresh) else { return nil }
            let token = "ya29.sim-\(UUID().uuidString)"
            state.accessTokens.insert(token)
            state.accessTokenOwner[token] = refresh
            return token
        }
        guard let issued else {
            return Self.json(
                .object([
                    "error": .string("invalid_grant"), "error_description": .string("Token has been expired or revoked."),
                ]), status: .badRequest)
        }
        return Self.json(.object(["access_token": .string(issued), "expires_in": .integer(3599), "token_type": .string("Bearer")]))
    }

    /// The authorization-code grant: a refresh token only for `access_type=offline` (Google's rule), the granted
    /// scopes space-joined.
    private func redeem(_ form: [String: String]) -> Response {
        guard let secret = form["client_secret"], !secret.isEmpty else {
            return Self.json(.object(["error": .string("invalid_client"), "error_description": .string("The OAuth client was not found.")]), status: .unauthorized)
        }
        switch consent.redeem(code: form["code"], clientID: form["client_id"], redirectURI: form["redirect_uri"], verifier: form["code_verifier"]) {
        case .failure(.invalidCode):
            return Self.json(.object(["error": .string("invalid_grant"), "error_description": .string("Malformed auth code.")]), status: .badRequest)
        case .failure(.mismatch):
            return Self.json(.object(["error": .string("invalid_grant"), "error_description": .string("Bad Request")]), status: .badRequest)
        case .failure(.badVerifier):
            return Self.json(.object(["error": .string("invalid_grant"), "error_description": .string("Invalid code verifier.")]), status: .badRequest)
        case .success(let redemption):
            let access = "ya29.sim-\(UUID().uuidString)"
            var body: [String: JSONValue] = [
                "access_token": .string(access), "expires_in": .integer(3599), "token_type": .string("Bearer"),
                "scope": .string(redemption.scopes.joined(separator: " ")),
            ]
            let refresh = "1//sim-\(UUID().uuidString.lowercased())"
            let offline = redemption.parameters["access_type"] == "offline" && !redemption.withholdRefreshToken
            state.withLock { state in
                state.accessTokens.insert(access)
                if offline { state.refreshTokens.insert(refresh) }
            }
            if offline { body["refresh_token"] = .string(refresh) }
            return Self.json(.object(body))
        }
    }

    private func authorized(_ request: Request) -> Bool {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
        return state.withLock { $0.accessTokens.contains(String(header.dropFirst(7))) }
    }

    private func listEvents(_ request: Request, calendar: String) throws -> Response {
        let query = request.uri.queryParameters
        state.withLock { $0.listCalls += 1 }
        guard authorized(request) else { return Self.googleError(401, reason: "authError", message: "Invalid Credentials") }
        if let fault = state.withLock({ $0.faults.isEmpty ? nil : $0.faults.removeFirst() }) {
            switch fault {
            case .rateLimit:
                var response = Self.googleError(429, reason: "rateLimitExceeded", message: "Rate Limit Exceeded")
                response.headers[.retryAfter] = "1"
                return response
            case .forbiddenRateLimit: return Self.googleError(403, reason: "rateLimitExceeded", message: "Rate Limit Exceeded")
            case .serverError: return Self.googleError(503, reason: "backendError", message: "Backend Error")
            case .internalError: return Self.googleError(500, reason: "backendError", message: "Backend Error")
            case .slow, .dropPush, .duplicatePush, .delayPush: break
            }
        }
        let syncToken = query.get("syncToken")
        if syncToken != nil {
            for forbidden in ["iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty", "timeMin", "timeMax", "updatedMin"]
            where query.get(forbidden) != nil {
                return Self.googleError(400, reason: "invalid", message: "\(forbidden) cannot be used with syncToken")
            }
        }
        let maxResults = min(max(query.get("maxResults").flatMap(Int.init) ?? 250, 1), 2500)
        let showDeleted = query.get("showDeleted") == "true" || syncToken != nil
        return state.withLock { state -> Response in
            // Page tokens carry the snapshot version and the offset: "<since>:<snapshot>:<offset>".
            var since = 0
            var snapshot = state.version
            var offset = 0
            if let pageToken = query.get("pageToken") {
                let parts = pageToken.split(separator: ":").compactMap { Int($0) }
                guard parts.count == 3 else { return Self.googleError(400, reason: "invalid", message: "Invalid page token") }
                (since, snapshot, offset) = (parts[0], parts[1], parts[2])
            } else if let syncToken {
                guard syncToken.hasPrefix("sync-"), let version = Int(syncToken.dropFirst(5)) else {
                    return Self.googleError(400, reason: "invalid", message: "Invalid sync token")
                }
                guard version >= state.tokensValidFrom else {
                    return Self.googleError(410, reason: "fullSyncRequired", message: "Sync token is no longer valid, a full sync is required.")
                }
                since = version
            }
            // privateExtendedProperty=name=value narrows a full listing to events carrying that private property.
            var property: (String, String)?
            if let filter = query.get("privateExtendedProperty"), let equals = filter.firstIndex(of: "=") {
                property = (String(filter[..<equals]), String(filter[filter.index(after: equals)...]))
            }
            // A paged listing reads the same snapshot on every page: it is built once and reused for the next pages
            // while nothing changed (same version), so paging a large calendar costs O(page), not a sort per page.
            let listing = Listing(calendar: calendar, since: since, snapshot: snapshot, showDeleted: showDeleted, property: property.map { [$0.0, $0.1] })
            let events: [StoredEvent]
            if let cached = state.listingCache, cached.listing == listing, cached.version == state.version {
                events = cached.events
            } else {
                events = (state.calendars[calendar] ?? [:]).values
                    .filter { $0.version > since && $0.version <= snapshot && (showDeleted || !$0.deleted) && (since > 0 || !$0.deleted || showDeleted) }
                    .filter { event in
                        guard let (name, value) = property else { return true }
                        guard case .object(let properties)? = event.json["extendedProperties"], case .object(let own)? = properties["private"] else { return false }
                        return own[name] == .string(value) && !event.deleted
                    }
                    .sorted { $0.version != $1.version ? $0.version < $1.version : Self.id($0) < Self.id($1) }
                state.listingCache = (listing, state.version, events)
            }
            let page = Array(events.dropFirst(offset).prefix(maxResults))
            var body: [String: JSONValue] = [
                "kind": .string("calendar#events"), "summary": .string(calendar), "timeZone": .string("UTC"),
            ]
            if offset + page.count < events.count {
                body["nextPageToken"] = .string("\(since):\(snapshot):\(offset + page.count)")
            } else {
                body["nextSyncToken"] = .string("sync-\(snapshot)")
            }
            // The same bytes as encoding the whole page with sorted keys ("items" sorts first), from each event's
            // stored encoding.
            var bytes = Array(#"{"items":["#.utf8)
            for (index, event) in page.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                bytes += event.serialized
            }
            bytes += Array("],".utf8)
            bytes += JSONValue.object(body).serialized().dropFirst()
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }

    /// `Fri, 31 Mar 2023 14:56:37 GMT`, as Google formats `X-Goog-Channel-Expiration`.
    static func rfc1123(_ date: Date) -> String { DateFormatter.fixed("EEE, dd MMM yyyy HH:mm:ss 'GMT'", zone: "GMT").string(from: date) }

    static func id(_ event: StoredEvent) -> String {
        if case .string(let id)? = event.json["id"] { return id }
        return ""
    }

    static func jsonObject(_ request: Request, context: BasicRequestContext) async throws -> [String: JSONValue] {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        guard case .object(let object) = try JSONValue.parse(Data(buffer: body)) else {
            throw HTTPError(.badRequest, message: "body must be a JSON object")
        }
        return object
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }

    static func googleError(_ code: Int, reason: String, message: String) -> Response {
        let body = JSONValue.object([
            "error": .object([
                "code": .integer(Int64(code)), "message": .string(message),
                "errors": .array([.object(["domain": .string("global"), "reason": .string(reason), "message": .string(message)])]),
            ])
        ])
        return json(body, status: HTTPResponse.Status(code: code))
    }
}
