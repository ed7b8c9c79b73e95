import CurlHTTP
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A loopback stand-in for the parts of Microsoft Graph and Entra ID calgate uses (PROVIDERS.md §3, §4): token
/// refresh with rotation and its failure modes, `/me/calendars`, subscriptions with the validation handshake against
/// both URLs, change and lifecycle notifications as Graph sends them, events and calendarView delta rounds, and a
/// control API to change calendars and inject faults.
///
/// One mailbox. Every change bumps a global version; a delta link names the version it was issued at, so the next
/// round returns exactly what changed since (deletions as `@removed`). Paging pins the version of the first page.
/// State tokens live in the simulator, so `invalidateDeltaTokens()` makes every stored delta link answer 410.
public final class GraphSimulator: Sendable {
    /// A fault the next matching calls answer with.
    public enum Fault: String, Sendable, CaseIterable {
        /// 429 `TooManyRequests` with `Retry-After: 1` (next API call).
        case rateLimit = "rate_limit"
        /// 503 `serviceNotAvailable` (next API call).
        case serverError = "server_error"
        /// The next API call answers two seconds late.
        case slow = "slow"
        /// The next delta call that presents a delta token answers 410 `syncStateNotFound`.
        case syncStateNotFound = "sync_state_not_found"
        /// The next delta call that presents a delta token answers 410 `resyncRequired` with a fresh `Location`.
        case resyncRequired = "resync_required"
        /// The next change notification is never sent.
        case dropNotification = "drop_notification"
        /// The next change notification is sent twice.
        case duplicateNotification = "duplicate_notification"
        /// The next change notification is sent four seconds late (after Graph's 3 s window: it is retried).
        case delayNotification = "delay_notification"
    }

    /// What the token endpoint answers for a refresh token.
    public enum TokenMode: String, Sendable, CaseIterable {
        /// Issues tokens (and rotates the refresh token).
        case valid
        /// `invalid_grant` (AADSTS70008: expired or revoked).
        case invalidGrant = "invalid_grant"
        /// `interaction_required` (AADSTS50076: MFA needed).
        case interactionRequired = "interaction_required"
    }

    /// A subscription as the simulator keeps it.
    public struct Subscription: Sendable, Hashable {
        /// Graph's id.
        public var id: String
        /// The resource as given.
        public var resource: String
        /// The calendar it watches.
        public var calendar: String
        /// `created,updated,deleted` subset.
        public var changeTypes: Set<String>
        /// Where notifications go.
        public var notificationURL: String
        /// Where lifecycle notifications go.
        public var lifecycleURL: String?
        /// The caller's secret.
        public var clientState: String?
        /// When it lapses.
        public var expiresAt: Date
        /// Set by a `reauthorizationRequired` challenge until reauthorized or renewed; notifications pause meanwhile.
        public var needsReauthorization: Bool
    }

    struct StoredEvent {
        var json: [String: JSONValue]
        var version: Int
        var deleted: Bool
    }

    enum DeltaScope: Hashable {
        case calendar(String)
        case view(start: Date, end: Date)
    }

    struct DeltaCursor {
        var scope: DeltaScope
        var since: Int
        var snapshot: Int
        var offset: Int
    }

    struct State {
        var version = 1
        var calendars: [String: (name: String, isDefault: Bool)] = [GraphSimulator.defaultCalendarID: ("Calendar", true)]
        var events: [String: [String: StoredEvent]] = [:]
        var refreshTokens: [String: TokenMode] = [:]
        var rotations = 0
        var accessTokens: [String: Date] = [:]
        var faults: [Fault] = []
        var notificationFaults: [Fault] = []
        var subscriptions: [String: Subscription] = [:]
        var deltaCursors: [String: DeltaCursor] = [:]
        var nextID = 1
        var clockOffset: TimeInterval = 0
        /// Requests in flight per mailbox (the refresh token a chain of rotated tokens started from).
        var mailboxInFlight = ConcurrencyQuota(limit: GraphSimulator.mailboxConcurrency)
        var mailboxBudget = WindowQuota(limit: PublishedLimits.graphPerMailboxPerTenMinutes, window: 600)
        var enforceBudget = false
        /// Mailbox of each refresh token and access token.
        var mailboxOf: [String: String] = [:]
        var accessMailbox: [String: String] = [:]
        var callsByMailbox: [String: Int] = [:]
        var maxInFlight = 0
        var concurrencyRejections = 0
        var deltaCalls = 0
        var validations: [String] = []
        var validationTokenExtra = " +plus %2Bliteral %3Acolon"
        var maximumSubscriptionMinutes: Int
        var baseClock: @Sendable () -> Date

        var now: Date { baseClock().addingTimeInterval(clockOffset) }
    }

    /// The mailbox owner's user id (appears in notification resources).
    public static let userID = "0b8b2a5c-1111-4a2b-9c3d-00000000aaaa"
    /// The tenant id notifications carry.
    public static let tenantID = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
    /// The default calendar's id.
    public static let defaultCalendarID = "AAMkCalendarDefault="
    /// Outlook's per app+mailbox concurrency limit (PROVIDERS.md §4.5).
    public static let mailboxConcurrency = 4

    private let state: Mutex<State>
    private let pushClientBox: Mutex<CurlHTTPClient?>
    private let deliveries = Mutex<(sent: Int, delivered: Int, failed: Int)>((0, 0, 0))
    private let inFlight = Mutex(0)
    /// Random failures, dropped notifications and outages for long runs.
    public let chaos = SimulatorChaos()
    /// Sign-in: the consent page at `/{tenant}/oauth2/v2.0/authorize` and code redemption at the token endpoint.
    public let consent: SimulatorConsent

    /// Throttling answers (quota and chaos) per minute of the simulator's clock.
    public let throttles = ThrottleLedger()

    /// Turns the per-mailbox request budget (10,000 requests per 10 minutes per app and mailbox, PROVIDERS.md §4.5,
    /// on the simulator's clock, 429 with `Retry-After`) on or off; off by default so wall-clock benchmarks on one
    /// mailbox are not throttled. The 4-concurrent-requests limit per mailbox always holds.
    public func enforcePublishedLimits(_ enforce: Bool) {
        state.withLock { $0.enforceBudget = enforce }
    }

    /// API calls admitted per mailbox (named by the first refresh token of its chain).
    public var callsByMailbox: [String: Int] { state.withLock { $0.callsByMailbox } }

    /// Notification POSTs still being sent or retried.
    public var deliveriesInFlight: Int { inFlight.withLock { $0 } }
    /// Delays between notification retries (Graph retries for up to 4 hours; the simulator compresses that).
    let retryDelays: [Duration]

    /// Creates a simulator accepting `refreshTokens`. With `pushClient` (trusting the gateway's CA) it performs
    /// validation handshakes and sends notifications; without it, subscription creation fails validation.
    public init(
        refreshTokens: Set<String> = [], pushClient: CurlHTTPClient? = nil, maximumSubscriptionMinutes: Int = 10_080,
        retryDelays: [Duration] = [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4)],
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        var initial = State(maximumSubscriptionMinutes: maximumSubscriptionMinutes, baseClock: clock)
        for token in refreshTokens { initial.refreshTokens[token] = .valid }
        state = Mutex(initial)
        consent = SimulatorConsent(providerName: "Microsoft", decisionPath: "/common/oauth2/v2.0/authorize/decision", clock: clock)
        pushClientBox = Mutex(pushClient)
        self.retryDelays = retryDelays
    }

    // MARK: Control

    /// The simulator's current time (wall clock plus `advanceClock`).
    public func now() -> Date { state.withLock { $0.now } }

    /// Moves the simulator's clock forward (subscriptions and access tokens lapse by it).
    public func advanceClock(by seconds: TimeInterval) {
        state.withLock { $0.clockOffset += seconds }
    }

    /// Sets the client notifications and handshakes go out with.
    public func setPushClient(_ client: CurlHTTPClient?) {
        pushClientBox.withLock { $0 = client }
    }

    /// Sets what the token endpoint answers for `refreshToken`.
    public func setTokenMode(_ mode: TokenMode, for refreshToken: String) {
        state.withLock { $0.refreshTokens[refreshToken] = mode }
    }

    /// Sets what the token endpoint answers for every refresh token issued or accepted so far (rotated ones included).
    public func setTokenModeForAll(_ mode: TokenMode) {
        state.withLock { state in
            for token in state.refreshTokens.keys { state.refreshTokens[token] = mode }
        }
    }

    /// How many refresh tokens were rotated (issued in place of a presented one).
    public var rotations: Int { state.withLock { $0.rotations } }

    /// Text appended to every validation token (the default exercises `+`, `%2B` and `%3A` handling).
    public func setValidationTokenExtra(_ text: String) {
        state.withLock { $0.validationTokenExtra = text }
    }

    /// The decoded validation tokens sent so far, in order.
    public var validationTokens: [String] { state.withLock { $0.validations } }

    /// Adds a calendar to the mailbox.
    public func addCalendar(id: String, name: String) {
        state.withLock { $0.calendars[id] = (name, false) }
    }

    /// Creates or replaces an event from Graph-shaped fields; returns its id. Notifies subscribers: `created` then
    /// `updated` for a new event (as Graph does), two `updated` for an edit.
    @discardableResult
    public func upsertEvent(calendar: String, _ fields: [String: JSONValue]) -> String {
        let (id, isNew) = state.withLock { state -> (String, Bool) in
            state.version += 1
            let id: String
            if case .string(let given)? = fields["id"] {
                id = given
            } else {
                id = "AAMkEv\(state.nextID)="
                state.nextID += 1
            }
            let isNew = state.events[calendar]?[id].map { $0.deleted } ?? true
            var json = fields
            json["id"] = .string(id)
            json["@odata.type"] = .string("#microsoft.graph.event")
            let changeKey = "CK\(state.version)"
            json["changeKey"] = .string(changeKey)
            json["@odata.etag"] = .string("W/\"\(changeKey)\"")
            json["lastModifiedDateTime"] = .string(Self.iso(state.now))
            if json["iCalUId"] == nil { json["iCalUId"] = .string("040000008200E00074C5B7101A82E008\(id.utf8.count)\(state.version)") }
            if json["isAllDay"] == nil { json["isAllDay"] = .bool(false) }
            if json["isCancelled"] == nil { json["isCancelled"] = .bool(false) }
            if json["type"] == nil {
                if json["recurrence"] != nil, json["recurrence"] != .null {
                    json["type"] = .string("seriesMaster")
                } else if json["seriesMasterId"] != nil {
                    json["type"] = .string("exception")
                } else {
                    json["type"] = .string("singleInstance")
                }
            }
            state.events[calendar, default: [:]][id] = StoredEvent(json: json, version: state.version, deleted: false)
            return (id, isNew)
        }
        if isNew {
            notify(calendar: calendar, eventID: id, changeTypes: ["created", "updated"], batched: true)
        } else {
            notify(calendar: calendar, eventID: id, changeTypes: ["updated", "updated"], batched: false)
        }
        return id
    }

    /// Deletes an event (a series master takes its exceptions with it); later delta rounds return `@removed`.
    public func deleteEvent(calendar: String, id: String) {
        let removed = state.withLock { state -> [String] in
            guard let events = state.events[calendar], events[id].map({ !$0.deleted }) == true else { return [] }
            var ids = [id]
            for (other, event) in events where !event.deleted {
                if case .string(let master)? = event.json["seriesMasterId"], master == id { ids.append(other) }
            }
            for gone in ids {
                state.version += 1
                state.events[calendar]?[gone]?.deleted = true
                state.events[calendar]?[gone]?.version = state.version
            }
            return ids
        }
        for gone in removed { notify(calendar: calendar, eventID: gone, changeTypes: ["deleted"], batched: true) }
    }

    /// The calendar holding a live event with this id.
    func calendar(containing id: String) -> String? {
        state.withLock { state in state.events.first { $0.value[id].map { !$0.deleted } ?? false }?.key }
    }

    /// A live event's fields, or nil.
    public func event(calendar: String, id: String) -> [String: JSONValue]? {
        state.withLock { state in
            guard let event = state.events[calendar]?[id], !event.deleted else { return nil }
            return event.json
        }
    }

    /// Every live event of a calendar: id → subject (the truth a synced store must equal).
    public func liveEvents(calendar: String) -> [String: String] {
        state.withLock { state in
            var result: [String: String] = [:]
            for (id, event) in state.events[calendar] ?? [:] where !event.deleted {
                if case .string(let subject)? = event.json["subject"] { result[id] = subject } else { result[id] = "" }
            }
            return result
        }
    }

    /// Queues faults, in order.
    public func inject(_ fault: Fault, count: Int = 1) {
        state.withLock { state in
            switch fault {
            case .dropNotification, .duplicateNotification, .delayNotification:
                state.notificationFaults += Array(repeating: fault, count: count)
            case .rateLimit, .serverError, .slow, .syncStateNotFound, .resyncRequired:
                state.faults += Array(repeating: fault, count: count)
            }
        }
    }

    /// Makes every delta and skip token issued so far unknown (answers 410 `syncStateNotFound`).
    public func invalidateDeltaTokens() {
        state.withLock { $0.deltaCursors.removeAll() }
    }

    /// Live subscriptions (expired ones are gone, as in Graph).
    public var subscriptions: [Subscription] {
        state.withLock { state in
            Self.purgeExpired(&state)
            return state.subscriptions.values.sorted { $0.id < $1.id }
        }
    }

    /// Deletes a subscription without telling anyone (as when Graph drops one silently); later calls on it get 404.
    public func removeSubscriptionSilently(id: String) {
        _ = state.withLock { $0.subscriptions.removeValue(forKey: id) }
    }

    /// Every access token the token endpoint has issued (for tests that check none is stored or logged).
    public var issuedAccessTokens: [String] { state.withLock { Array($0.accessTokens.keys) } }

    /// Highest number of API requests served at once, and how many were refused for the mailbox limit.
    public var concurrency: (max: Int, rejected: Int) { state.withLock { ($0.maxInFlight, $0.concurrencyRejections) } }

    /// Delta requests answered (faults included).
    public var deltaCalls: Int { state.withLock { $0.deltaCalls } }

    /// Notification POSTs attempted, acknowledged with 2xx within 3 s, and failed attempts.
    public var deliveryStatistics: (sent: Int, delivered: Int, failed: Int) { deliveries.withLock { $0 } }

    /// Sends a lifecycle notification for `subscriptionID` to its lifecycle URL. `reauthorizationRequired` pauses
    /// its notifications until reauthorized or renewed; `subscriptionRemoved` deletes it first. False when there is
    /// no such subscription or it has no lifecycle URL.
    @discardableResult
    public func sendLifecycle(subscriptionID: String, event: String) -> Bool {
        let target = state.withLock { state -> Subscription? in
            Self.purgeExpired(&state)
            guard let subscription = state.subscriptions[subscriptionID], subscription.lifecycleURL != nil else { return nil }
            switch event {
            case "reauthorizationRequired": state.subscriptions[subscriptionID]?.needsReauthorization = true
            case "subscriptionRemoved": state.subscriptions[subscriptionID] = nil
            default: break
            }
            return subscription
        }
        guard let target, let url = target.lifecycleURL else { return false }
        var item: [String: JSONValue] = [
            "subscriptionId": .string(target.id), "subscriptionExpirationDateTime": .string(Self.iso(target.expiresAt)),
            "tenantId": .string(Self.tenantID), "lifecycleEvent": .string(event),
        ]
        if let clientState = target.clientState { item["clientState"] = .string(clientState) }
        deliver(to: url, body: .object(["value": .array([.object(item)])]), delay: .zero)
        return true
    }

    // MARK: Notifications

    func notify(calendar: String, eventID: String, changeTypes: [String], batched: Bool) {
        let targets = state.withLock { state -> [Subscription] in
            Self.purgeExpired(&state)
            return state.subscriptions.values.filter { $0.calendar == calendar && !$0.needsReauthorization }.sorted { $0.id < $1.id }
        }
        let etag = state.withLock { state -> String in
            if case .string(let tag)? = state.events[calendar]?[eventID]?.json["@odata.etag"] { return tag }
            return "W/\"gone\""
        }
        // Graph batches items for one notification URL into one POST.
        var byURL: [String: [[JSONValue]]] = [:]
        for subscription in targets {
            let items = changeTypes.filter { subscription.changeTypes.contains($0) }.map { change -> JSONValue in
                let resource = "Users/\(Self.userID)/Events/\(eventID)"
                var item: [String: JSONValue] = [
                    "subscriptionId": .string(subscription.id),
                    "subscriptionExpirationDateTime": .string(Self.iso(subscription.expiresAt)),
                    "changeType": .string(change), "resource": .string(resource), "tenantId": .string(Self.tenantID),
                    "resourceData": .object([
                        "@odata.type": .string("#Microsoft.Graph.Event"), "@odata.id": .string(resource),
                        "@odata.etag": .string(etag), "id": .string(eventID),
                    ]),
                ]
                if let clientState = subscription.clientState { item["clientState"] = .string(clientState) }
                return .object(item)
            }
            guard !items.isEmpty else { continue }
            if batched {
                if byURL[subscription.notificationURL] == nil { byURL[subscription.notificationURL] = [[]] }
                byURL[subscription.notificationURL]![0] += items
            } else {
                for item in items { byURL[subscription.notificationURL, default: []].append([item]) }
            }
        }
        for (url, batches) in byURL.sorted(by: { $0.key < $1.key }) {
            for batch in batches where !batch.isEmpty {
                let fault = state.withLock { $0.notificationFaults.isEmpty ? nil : $0.notificationFaults.removeFirst() }
                if fault == .dropNotification || chaos.dropsNotification() { continue }
                let copies = fault == .duplicateNotification ? 2 : 1
                for _ in 0..<copies {
                    deliver(to: url, body: .object(["value": .array(batch)]), delay: fault == .delayNotification ? .seconds(4) : .zero)
                }
            }
        }
    }

    /// POSTs a notification collection; anything but a 2xx within 3 s is retried on `retryDelays`.
    func deliver(to url: String, body: JSONValue, delay: Duration) {
        guard let client = pushClientBox.withLock({ $0 }) else { return }
        let retryDelays = self.retryDelays
        inFlight.withLock { $0 += 1 }
        Task {
            defer { self.inFlight.withLock { $0 -= 1 } }
            var attemptDelay = delay
            for attempt in 0...retryDelays.count {
                self.deliveries.withLock { $0.sent += 1 }
                // A late answer is a failure for Graph even when it is 2xx: the publisher's HTTP timeout is 3 s.
                let started = ContinuousClock.now
                let request = CurlHTTPRequest(
                    method: "POST", url: url,
                    headers: [CurlHTTPHeader("Content-Type", "application/json; charset=utf-8")],
                    body: body.serialized(), timeout: .seconds(3) + attemptDelay
                )
                if attemptDelay > .zero { try? await Task.sleep(for: attemptDelay) }
                let status = (try? await client.execute(request))?.status ?? 0
                let late = ContinuousClock.now - started - attemptDelay > .seconds(3)
                if (200...299).contains(status) && !late && attemptDelay <= .seconds(3) {
                    self.deliveries.withLock { $0.delivered += 1 }
                    return
                }
                self.deliveries.withLock { $0.failed += 1 }
                guard attempt < retryDelays.count else { return }
                attemptDelay = .zero
                try? await Task.sleep(for: retryDelays[attempt])
            }
        }
    }

    /// The validation handshake: POST `?validationToken=` and expect the decoded token back as text/plain within 10 s.
    func validate(_ url: String) async -> String? {
        guard let client = pushClientBox.withLock({ $0 }) else {
            return "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
        }
        let token = state.withLock { state -> String in
            let token =
                "Validation: Testing client application reachability for subscription Request-Id: "
                + UUID().uuidString.lowercased() + state.validationTokenExtra
            state.validations.append(token)
            return token
        }
        let separator = url.contains("?") ? "&" : "?"
        let request = CurlHTTPRequest(
            method: "POST", url: url + separator + "validationToken=" + Self.formEncode(token),
            headers: [CurlHTTPHeader("Content-Type", "text/plain; charset=utf-8")], body: [], timeout: .seconds(10)
        )
        let response: CurlHTTPResponse
        do { response = try await client.execute(request) } catch let error as CurlHTTPError where error.kind == .timeout {
            return "Subscription validation request timed out."
        } catch {
            return "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
        }
        let contentType = response.header("Content-Type")?.lowercased() ?? ""
        guard response.status == 200, contentType.hasPrefix("text/plain"), String(decoding: response.body, as: UTF8.self) == token else {
            return "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
        }
        return nil
    }

    // MARK: HTTP

    /// The router: `/{tenant}/oauth2/v2.0/token`, `/v1.0/...` and `/control/...`.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.post("/:tenant/oauth2/v2.0/token") { request, context in try await self.token(request, context: context) }
        router.get("/:tenant/oauth2/v2.0/authorize") { request, _ in self.consent.authorizePage(request) }
        router.post("/:tenant/oauth2/v2.0/authorize/decision") { request, _ in try await self.consent.decide(request) }
        router.get("/v1.0/me/calendars") { request, _ in
            try await self.api(request) {
                let items = self.state.withLock { state in
                    state.calendars.sorted { $0.key < $1.key }.map { id, calendar -> JSONValue in
                        .object([
                            "id": .string(id), "name": .string(calendar.name), "isDefaultCalendar": .bool(calendar.isDefault),
                            "canEdit": .bool(true), "owner": .object(["name": .string("Sim User"), "address": .string("sim@example.test")]),
                        ])
                    }
                }
                return Self.json(
                    .object([
                        "@odata.context": .string("https://graph.microsoft.com/v1.0/$metadata#users('me')/calendars"), "value": .array(items),
                    ]))
            }
        }
        router.get("/v1.0/me/calendars/:calendar/events/delta") { request, context in
            let calendar = Self.parameter(context, "calendar") ?? ""
            return try await self.api(request) { try self.delta(request, scope: .calendar(calendar), path: "/v1.0/me/calendars/\(calendar)/events/delta") }
        }
        router.get("/v1.0/me/calendarView/delta") { request, _ in
            try await self.api(request) { try self.delta(request, scope: nil, path: "/v1.0/me/calendarView/delta") }
        }
        router.get("/v1.0/me/calendars/:calendar/events/:id") { request, context in
            try await self.api(request) {
                self.getEvent(calendar: Self.parameter(context, "calendar") ?? "", id: Self.parameter(context, "id") ?? "")
            }
        }
        router.get("/v1.0/me/events/:id") { request, context in
            try await self.api(request) { self.getEvent(calendar: Self.defaultCalendarID, id: Self.parameter(context, "id") ?? "") }
        }
        router.post("/v1.0/me/calendars/:calendar/events") { request, context in
            let calendar = Self.parameter(context, "calendar") ?? ""
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            return try await self.api(request) {
                guard self.state.withLock({ $0.calendars[calendar] != nil }) else { return Self.notFound() }
                guard case .object(var fields)? = try? JSONValue.parse(Data(buffer: body)), fields["start"] != nil, fields["end"] != nil else {
                    return Self.graphError(400, "ErrorInvalidRequest", "start and end are required.")
                }
                fields["id"] = nil
                let id = self.upsertEvent(calendar: calendar, fields)
                return Self.json(.object(self.event(calendar: calendar, id: id) ?? [:]), status: .created)
            }
        }
        router.patch("/v1.0/me/events/:id") { request, context in
            let id = Self.parameter(context, "id") ?? ""
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            return try await self.api(request) {
                guard let calendar = self.calendar(containing: id), var current = self.event(calendar: calendar, id: id) else {
                    return Self.graphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                }
                guard case .object(let fields)? = try? JSONValue.parse(Data(buffer: body)) else {
                    return Self.graphError(400, "BadRequest", "Unable to read JSON request payload.")
                }
                for (key, value) in fields where key != "id" { current[key] = value }
                self.upsertEvent(calendar: calendar, current)
                return Self.json(.object(self.event(calendar: calendar, id: id) ?? [:]))
            }
        }
        router.delete("/v1.0/me/events/:id") { request, context in
            let id = Self.parameter(context, "id") ?? ""
            return try await self.api(request) {
                guard let calendar = self.calendar(containing: id) else {
                    return Self.graphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                }
                self.deleteEvent(calendar: calendar, id: id)
                return Response(status: .noContent)
            }
        }
        router.post("/v1.0/subscriptions") { request, context in
            var request = request
            let body = try await request.collectBody(upTo: 64 * 1024)
            return try await self.api(request) { try await self.createSubscription(body) }
        }
        router.get("/v1.0/subscriptions/:id") { request, context in
            try await self.api(request) {
                guard let subscription = self.liveSubscription(Self.parameter(context, "id") ?? "") else { return Self.notFound() }
                return Self.json(Self.representation(subscription))
            }
        }
        router.patch("/v1.0/subscriptions/:id") { request, context in
            var request = request
            let body = try await request.collectBody(upTo: 64 * 1024)
            return try await self.api(request) { try await self.renew(Self.parameter(context, "id") ?? "", body: body) }
        }
        router.delete("/v1.0/subscriptions/:id") { request, context in
            try await self.api(request) {
                let id = Self.parameter(context, "id") ?? ""
                let found = self.state.withLock { state -> Bool in
                    Self.purgeExpired(&state)
                    return state.subscriptions.removeValue(forKey: id) != nil
                }
                return found ? Response(status: .noContent) : Self.notFound()
            }
        }
        router.post("/v1.0/subscriptions/:id/reauthorize") { request, context in
            try await self.api(request) {
                let id = Self.parameter(context, "id") ?? ""
                guard let subscription = self.liveSubscription(id) else { return Self.notFound() }
                if let failure = await self.validate(subscription.notificationURL) { return Self.graphError(400, "InvalidRequest", failure) }
                self.state.withLock { $0.subscriptions[id]?.needsReauthorization = false }
                return Response(status: .noContent)
            }
        }
        addControlRoutes(to: router)
        return router
    }

    func addControlRoutes(to router: Router<BasicRequestContext>) {
        router.post("/control/calendars") { request, context in
            let fields = try await GoogleSimulator.jsonObject(request, context: context)
            guard case .string(let id)? = fields["id"], case .string(let name)? = fields["name"] else {
                return Self.json(.object(["error": .string("id and name are required")]), status: .badRequest)
            }
            self.addCalendar(id: id, name: name)
            return Response(status: .created)
        }
        router.get("/control/calendars/:calendar/events") { _, context in
            // The truth a synced store must equal (crash test, by hand): live events, id → subject.
            let live = self.liveEvents(calendar: Self.parameter(context, "calendar") ?? "")
            return Self.json(.object(["events": .object(live.mapValues { .string($0) })]))
        }
        router.post("/control/calendars/:calendar/events") { request, context in
            let calendar = Self.parameter(context, "calendar") ?? ""
            guard self.state.withLock({ $0.calendars[calendar] != nil }) else {
                return Self.json(.object(["error": .string("no such calendar")]), status: .notFound)
            }
            let fields = try await GoogleSimulator.jsonObject(request, context: context)
            guard fields["start"] != nil, fields["end"] != nil else {
                return Self.json(.object(["error": .string("start and end are required")]), status: .badRequest)
            }
            return Self.json(.object(["id": .string(self.upsertEvent(calendar: calendar, fields))]), status: .created)
        }
        router.patch("/control/calendars/:calendar/events/:id") { request, context in
            let calendar = Self.parameter(context, "calendar") ?? ""
            let id = Self.parameter(context, "id") ?? ""
            guard var current = self.event(calendar: calendar, id: id) else {
                return Self.json(.object(["error": .string("no such event")]), status: .notFound)
            }
            for (key, value) in try await GoogleSimulator.jsonObject(request, context: context) where key != "id" { current[key] = value }
            self.upsertEvent(calendar: calendar, current)
            return Response(status: .noContent)
        }
        router.delete("/control/calendars/:calendar/events/:id") { _, context in
            self.deleteEvent(calendar: Self.parameter(context, "calendar") ?? "", id: Self.parameter(context, "id") ?? "")
            return Response(status: .noContent)
        }
        router.post("/control/faults/:fault") { request, context in
            guard let fault = Fault(rawValue: Self.parameter(context, "fault") ?? "") else {
                return Self.json(.object(["error": .string("unknown fault; use one of \(Fault.allCases.map(\.rawValue))")]), status: .badRequest)
            }
            self.inject(fault, count: min(max(request.uri.queryParameters.get("count").flatMap(Int.init) ?? 1, 1), 1000))
            return Response(status: .noContent)
        }
        router.post("/control/subscriptions/:id/lifecycle/:event") { _, context in
            let event = Self.parameter(context, "event") ?? ""
            guard ["reauthorizationRequired", "subscriptionRemoved", "missed"].contains(event) else {
                return Self.json(.object(["error": .string("event must be reauthorizationRequired, subscriptionRemoved or missed")]), status: .badRequest)
            }
            return self.sendLifecycle(subscriptionID: Self.parameter(context, "id") ?? "", event: event)
                ? Response(status: .accepted)
                : Self.json(.object(["error": .string("no such subscription, or it has no lifecycleNotificationUrl")]), status: .notFound)
        }
        router.get("/control/subscriptions") { _, _ in
            Self.json(.object(["subscriptions": .array(self.subscriptions.map { Self.representation($0) })]))
        }
        router.post("/control/refresh-tokens/:token/:mode") { _, context in
            guard let mode = TokenMode(rawValue: Self.parameter(context, "mode") ?? "") else {
                return Self.json(.object(["error": .string("mode must be one of \(TokenMode.allCases.map(\.rawValue))")]), status: .badRequest)
            }
            self.setTokenMode(mode, for: Self.parameter(context, "token") ?? "")
            return Response(status: .noContent)
        }
        router.post("/control/invalidate-delta-tokens") { _, _ in
            self.invalidateDeltaTokens()
            return Response(status: .noContent)
        }
        router.post("/control/clock/advance") { request, _ in
            guard let seconds = request.uri.queryParameters.get("seconds").flatMap(Double.init), seconds >= 0, seconds.isFinite else {
                return Self.json(.object(["error": .string("seconds must be a non-negative number")]), status: .badRequest)
            }
            self.advanceClock(by: seconds)
            return Response(status: .noContent)
        }
    }

    /// Authorizes, enforces the mailbox concurrency limit and injected faults, then runs `body`.
    func api(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        guard authorized(request) else {
            return Self.graphError(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
        }
        let token = request.headers[.authorization].map { String($0.dropFirst(7)) } ?? ""
        let now = now()
        let (mailbox, refusal) = state.withLock { state -> (String, Response?) in
            let mailbox = state.accessMailbox[token] ?? "me"
            if state.enforceBudget, let wait = state.mailboxBudget.admit(mailbox, now: now) {
                var response = Self.graphError(429, "ApplicationThrottled", "Application is over its resource limit.")
                response.headers[.retryAfter] = String(Int(wait))
                return (mailbox, response)
            }
            guard state.mailboxInFlight.enter(mailbox) else {
                state.concurrencyRejections += 1
                var response = Self.graphError(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
                response.headers[.retryAfter] = "1"
                return (mailbox, response)
            }
            state.maxInFlight = state.mailboxInFlight.peak
            state.callsByMailbox[mailbox, default: 0] += 1
            return (mailbox, nil)
        }
        if let refusal {
            throttles.record(.quota, at: now)
            return refusal
        }
        defer { state.withLock { $0.mailboxInFlight.leave(mailbox) } }
        switch chaos.nextFailure(allowTimeout: request.method == .get) {
        case .rateLimit?:
            throttles.record(.chaos, at: now)
            return Self.graphError(429, "TooManyRequests", "Please retry again later.")
        case .serverError?: return Self.graphError(503, "serviceNotAvailable", "The service is temporarily unavailable.")
        case .timeout?:
            try? await Task.sleep(for: chaos.timeoutDelay)
            return Self.graphError(504, "GatewayTimeout", "The operation timed out.")
        case nil: break
        }
        let isDeltaWithToken = request.uri.path.hasSuffix("/delta") && request.uri.queryParameters.get("$deltatoken") != nil
        let fault = state.withLock { state -> Fault? in
            guard
                let index = state.faults.firstIndex(where: { fault in
                    switch fault {
                    case .syncStateNotFound, .resyncRequired: return isDeltaWithToken
                    default: return true
                    }
                })
            else { return nil }
            return state.faults.remove(at: index)
        }
        switch fault {
        case .rateLimit?:
            var response = Response(
                status: .tooManyRequests, headers: [.contentType: "application/json", .retryAfter: "1"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string: """
                            {"error":{"code":"TooManyRequests","innerError":{"code":"429","date":"\(Self.iso(Date()))","message":"Please retry after","request-id":"\(UUID().uuidString.lowercased())","status":"429"},"message":"Please retry again later."}}
                            """))
            )
            response.headers[.retryAfter] = "1"
            return response
        case .serverError?:
            var response = Self.graphError(503, "serviceNotAvailable", "The service is temporarily unavailable.")
            response.headers[.retryAfter] = "1"
            return response
        case .slow?:
            try await Task.sleep(for: .seconds(2))
        case .syncStateNotFound?:
            return Self.graphError(410, "syncStateNotFound", "The sync state generation is not found.")
        case .resyncRequired?:
            var response = Self.graphError(410, "resyncRequired", "Resync required. Replace any local items with the server's version.")
            response.headers[.location] = "\(Self.base(request))\(request.uri.path)?$deltatoken="
            return response
        case .dropNotification?, .duplicateNotification?, .delayNotification?, nil:
            break
        }
        return try await body()
    }

    func authorized(_ request: Request) -> Bool {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
        let token = String(header.dropFirst(7))
        let now = now()
        return state.withLock { ($0.accessTokens[token]).map { $0 > now } ?? false }
    }

    func token(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 16_384)
        var form: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ") }
            if parts.count == 2 { form[parts[0].removingPercentEncoding ?? parts[0]] = parts[1].removingPercentEncoding ?? parts[1] }
        }
        func entraError(_ error: String, _ code: Int, _ description: String) -> Response {
            Self.json(
                .object([
                    "error": .string(error), "error_description": .string("AADSTS\(code): \(description)"),
                    "error_codes": .array([.integer(Int64(code))]), "timestamp": .string(Self.iso(Date())),
                    "trace_id": .string(UUID().uuidString.lowercased()), "correlation_id": .string(UUID().uuidString.lowercased()),
                ]), status: .badRequest)
        }
        if form["grant_type"] == "authorization_code" {
            switch consent.redeem(code: form["code"], clientID: form["client_id"], redirectURI: form["redirect_uri"], verifier: form["code_verifier"]) {
            case .failure(.invalidCode):
                return entraError("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
            case .failure(.mismatch):
                return entraError("invalid_grant", 70000, "The provided authorization code was issued to another client or redirect URI.")
            case .failure(.badVerifier):
                return entraError("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
            case .success(let redemption):
                let expiry = now().addingTimeInterval(3599)
                let access = "eyJ0eXAi.sim-\(UUID().uuidString)"
                let refresh = "0.AAAA-sim-\(UUID().uuidString.lowercased())"
                // Entra returns a refresh token only when offline_access was granted; it is not echoed in `scope`.
                let offline = redemption.scopes.contains("offline_access") && !redemption.withholdRefreshToken
                state.withLock { state in
                    state.accessTokens[access] = expiry
                    if offline { state.refreshTokens[refresh] = .valid }
                }
                var body: [String: JSONValue] = [
                    "token_type": .string("Bearer"), "expires_in": .integer(3599), "ext_expires_in": .integer(3599), "access_token": .string(access),
                    "scope": .string(
                        redemption.scopes.filter { !["offline_access", "openid", "profile", "email"].contains($0) }
                            .map { $0.hasPrefix("https://") ? $0 : "https://graph.microsoft.com/" + $0 }.joined(separator: " ")),
                ]
                if offline { body["refresh_token"] = .string(refresh) }
                return Self.json(.object(body))
            }
        }
        guard form["grant_type"] == "refresh_token" else {
            return entraError("unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        }
        guard let clientID = form["client_id"], !clientID.isEmpty else {
            return entraError("invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
        }
        guard let refresh = form["refresh_token"], !refresh.isEmpty else {
            return entraError("invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'.")
        }
        let expiry = now().addingTimeInterval(3599)
        let outcome = state.withLock { state -> Result<(String, String), TokenFailure> in
            switch state.refreshTokens[refresh] {
            case .valid?:
                let access = "eyJ0eXAi.sim-\(UUID().uuidString)"
                let rotated = "0.AAAA-sim-\(UUID().uuidString.lowercased())"
                state.accessTokens[access] = expiry
                let mailbox = state.mailboxOf[refresh] ?? refresh
                state.mailboxOf[rotated] = mailbox
                state.accessMailbox[access] = mailbox
                // The presented token keeps working for now (Entra does not revoke it at once); the new one replaces it.
                state.refreshTokens[rotated] = .valid
                state.rotations += 1
                return .success((access, rotated))
            case .interactionRequired?: return .failure(.interaction)
            case .invalidGrant?, nil: return .failure(.grant)
            }
        }
        switch outcome {
        case .success(let (access, rotated)):
            return Self.json(
                .object([
                    "token_type": .string("Bearer"), "scope": .string("https://graph.microsoft.com/Calendars.Read"),
                    "expires_in": .integer(3599), "ext_expires_in": .integer(3599),
                    "access_token": .string(access), "refresh_token": .string(rotated),
                ]))
        case .failure(.interaction):
            return entraError("interaction_required", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.")
        case .failure(.grant):
            return entraError("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity.")
        }
    }

    enum TokenFailure: Error { case grant, interaction }

    func getEvent(calendar: String, id: String) -> Response {
        guard let json = event(calendar: calendar, id: id) else {
            return Self.graphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        }
        return Self.json(.object(json))
    }

    // MARK: Delta

    /// One delta page. `scope` nil means calendarView (default calendar, window from the query on the first call).
    func delta(_ request: Request, scope: DeltaScope?, path: String) throws -> Response {
        let query = request.uri.queryParameters
        state.withLock { $0.deltaCalls += 1 }
        var pageSize = 100
        for prefer in request.headers[values: HTTPField.Name("Prefer")!] {
            for part in prefer.split(separator: ",") {
                let trimmed = part.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("odata.maxpagesize="), let n = Int(trimmed.dropFirst("odata.maxpagesize=".count)) {
                    pageSize = min(max(n, 1), 1000)
                }
            }
        }
        let presented = query.get("$skiptoken").map { ("skip", String($0)) } ?? query.get("$deltatoken").map { ("delta", String($0)) }
        let cursor: DeltaCursor
        if let (kind, token) = presented, !token.isEmpty {
            guard var known = state.withLock({ $0.deltaCursors[token] }) else {
                return Self.graphError(410, "syncStateNotFound", "The sync state generation is not found.")
            }
            if kind == "delta" {
                known.since = known.snapshot
                known.snapshot = state.withLock { $0.version }
                known.offset = 0
            }
            cursor = known
        } else {
            let resolved: DeltaScope
            if let scope {
                guard state.withLock({ $0.calendars[scopeCalendar(scope)] != nil }) else {
                    return Self.graphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                }
                resolved = scope
            } else {
                guard let startText = query.get("startDateTime"), let endText = query.get("endDateTime"),
                    let start = SimulatorDates.windowBound(String(startText)), let end = SimulatorDates.windowBound(String(endText)), start < end
                else {
                    return Self.graphError(400, "ErrorInvalidParameter", "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.")
                }
                resolved = .view(start: start, end: end)
            }
            cursor = DeltaCursor(scope: resolved, since: 0, snapshot: state.withLock { $0.version }, offset: 0)
        }
        let items = state.withLock { state in Self.items(in: state, cursor: cursor) }
        let page = Array(items.dropFirst(cursor.offset).prefix(pageSize))
        var body: [String: JSONValue] = [
            "@odata.context": .string("https://graph.microsoft.com/v1.0/$metadata#Collection(event)"), "value": .array(page),
        ]
        let token = UUID().uuidString.replacingOccurrences(of: "-", with: "")
        if cursor.offset + page.count < items.count {
            var next = cursor
            next.offset += page.count
            state.withLock { $0.deltaCursors[token] = next }
            body["@odata.nextLink"] = .string("\(Self.base(request))\(path)?$skiptoken=\(token)")
        } else {
            state.withLock { $0.deltaCursors[token] = cursor }
            body["@odata.deltaLink"] = .string("\(Self.base(request))\(path)?$deltatoken=\(token)")
        }
        return Self.json(.object(body))
    }

    func scopeCalendar(_ scope: DeltaScope) -> String {
        if case .calendar(let id) = scope { return id }
        return Self.defaultCalendarID
    }

    /// Every item a round from `cursor.since` to `cursor.snapshot` returns, in a stable order.
    static func items(in state: State, cursor: DeltaCursor) -> [JSONValue] {
        let calendar: String
        var window: (Date, Date)?
        switch cursor.scope {
        case .calendar(let id): calendar = id
        case .view(let start, let end):
            calendar = defaultCalendarID
            window = (start, end)
        }
        let changed = (state.events[calendar] ?? [:])
            .filter { $0.value.version > cursor.since && $0.value.version <= cursor.snapshot && (cursor.since > 0 || !$0.value.deleted) }
            .sorted { ($0.value.version, $0.key) < ($1.value.version, $1.key) }
        var items: [JSONValue] = []
        for (id, event) in changed {
            if event.deleted {
                items.append(removed(id))
                continue
            }
            guard let (start, end) = window else {
                items.append(.object(event.json))
                continue
            }
            // calendarView: series are expanded into occurrence stubs; masters themselves are not returned.
            if case .string("seriesMaster")? = event.json["type"] {
                let exceptions = Set(
                    (state.events[calendar] ?? [:]).values.compactMap { other -> String? in
                        guard case .string(id)? = other.json["seriesMasterId"], case .string(let original)? = other.json["originalStart"] else { return nil }
                        return original
                    })
                for occurrence in occurrences(of: event.json, in: start, end) where !exceptions.contains(occurrence.originalStart) {
                    items.append(
                        .object([
                            "@odata.type": .string("#microsoft.graph.event"), "@odata.etag": event.json["@odata.etag"] ?? .null,
                            "id": .string("\(id)_occ_\(occurrence.originalStart)"), "type": .string("occurrence"),
                            "seriesMasterId": .string(id), "start": occurrence.start, "end": occurrence.end,
                        ]))
                }
            } else if overlaps(event.json, start, end) {
                items.append(.object(event.json))
            } else if cursor.since > 0 {
                // Graph reports changes outside the window as removals (PROVIDERS.md §4.3).
                items.append(removed(id))
            }
        }
        return items
    }

    static func removed(_ id: String) -> JSONValue {
        .object(["@odata.type": .string("#microsoft.graph.event"), "id": .string(id), "@removed": .object(["reason": .string("deleted")])])
    }

    static func instant(_ value: JSONValue?) -> (Date, String)? {
        guard case .object(let fields)? = value, case .string(let dateTime)? = fields["dateTime"] else { return nil }
        var zone: String?
        if case .string(let given)? = fields["timeZone"] { zone = given }
        guard let resolved = SimulatorDates.instant(dateTime: dateTime, timeZone: zone) else { return nil }
        return (resolved.date, resolved.zone)
    }

    static func overlaps(_ json: [String: JSONValue], _ start: Date, _ end: Date) -> Bool {
        guard let (from, _) = instant(json["start"]), let (to, _) = instant(json["end"]) else { return true }
        return from < end && to > start
    }

    /// Occurrences of a daily or weekly series inside the window (other patterns: the first instance only).
    static func occurrences(of master: [String: JSONValue], in windowStart: Date, _ windowEnd: Date) -> [(originalStart: String, start: JSONValue, end: JSONValue)] {
        guard let (first, zone) = instant(master["start"]), let (firstEnd, _) = instant(master["end"]) else { return [] }
        let duration = firstEnd.timeIntervalSince(first)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: zone) ?? TimeZone(identifier: "UTC")!
        var type = "", interval = 1, count = Int.max, until = Date.distantFuture, days: Set<Int> = []
        if case .object(let recurrence)? = master["recurrence"] {
            if case .object(let pattern)? = recurrence["pattern"] {
                if case .string(let t)? = pattern["type"] { type = t }
                if case .integer(let i)? = pattern["interval"], i >= 1 { interval = Int(i) }
                if case .array(let names)? = pattern["daysOfWeek"] {
                    let all = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
                    days = Set(names.compactMap { if case .string(let n) = $0 { return all.firstIndex(of: n.lowercased()).map { $0 + 1 } } else { return nil } })
                }
            }
            if case .object(let range)? = recurrence["range"] {
                if case .integer(let n)? = range["numberOfOccurrences"], n > 0, case .string("numbered")? = range["type"] { count = Int(n) }
                if case .string("endDate")? = range["type"], case .string(let date)? = range["endDate"],
                    let (day, _) = instant(.object(["dateTime": .string(date + "T23:59:59"), "timeZone": .string(zone)]))
                {
                    until = day
                }
            }
        }
        var result: [(String, JSONValue, JSONValue)] = []
        var produced = 0
        var day = 0
        while produced < count && day < 3660 {
            guard let candidate = calendar.date(byAdding: .day, value: day, to: first), candidate <= until, candidate < windowEnd else { break }
            let weekday = calendar.component(.weekday, from: candidate)
            let matches: Bool
            switch type {
            case "daily": matches = day % interval == 0
            case "weekly": matches = (day / 7) % interval == 0 && (days.isEmpty ? day % 7 == 0 : days.contains(weekday))
            default: matches = day == 0
            }
            if matches {
                produced += 1
                let end = candidate.addingTimeInterval(duration)
                if end > windowStart {
                    let stamp = iso(candidate)
                    result.append(
                        (
                            stamp, .object(["dateTime": .string(wall(candidate)), "timeZone": .string("UTC")]),
                            .object(["dateTime": .string(wall(end)), "timeZone": .string("UTC")])
                        ))
                }
            }
            if type != "daily" && type != "weekly" { break }
            day += 1
        }
        return result
    }

    // MARK: Subscriptions

    func liveSubscription(_ id: String) -> Subscription? {
        state.withLock { state in
            Self.purgeExpired(&state)
            return state.subscriptions[id]
        }
    }

    static func purgeExpired(_ state: inout State) {
        let now = state.now
        state.subscriptions = state.subscriptions.filter { $0.value.expiresAt > now }
    }

    static let subscriptionProperties: Set<String> = [
        "@odata.type", "changeType", "notificationUrl", "lifecycleNotificationUrl", "resource", "expirationDateTime", "clientState",
        "latestSupportedTlsVersion", "includeResourceData", "encryptionCertificate", "encryptionCertificateId", "id", "applicationId",
        "creatorId", "notificationQueryOptions", "notificationUrlAppId", "notificationContentType", "additionalData",
    ]

    func createSubscription(_ body: ByteBuffer) async throws -> Response {
        guard case .object(let fields)? = try? JSONValue.parse(Data(buffer: body)) else {
            return Self.graphError(400, "BadRequest", "Unable to read JSON request payload.")
        }
        if let unknown = fields.keys.sorted().first(where: { !Self.subscriptionProperties.contains($0) }) {
            return Self.graphError(400, "BadRequest", "Invalid property '\(unknown)'.")
        }
        func string(_ key: String) -> String? { if case .string(let v)? = fields[key] { return v } else { return nil } }
        guard let changeType = string("changeType"), !changeType.isEmpty else { return Self.graphError(400, "InvalidRequest", "changeType is required.") }
        let changeTypes = Set(changeType.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        guard changeTypes.isSubset(of: ["created", "updated", "deleted"]) else {
            return Self.graphError(400, "InvalidRequest", "'\(changeType)' is not a valid change type.")
        }
        guard let notificationURL = string("notificationUrl"), notificationURL.hasPrefix("https://") else {
            return Self.graphError(400, "InvalidRequest", "The notification URL must be an https URL.")
        }
        let lifecycleURL = string("lifecycleNotificationUrl")
        if let lifecycleURL, !lifecycleURL.hasPrefix("https://") {
            return Self.graphError(400, "InvalidRequest", "The lifecycle notification URL must be an https URL.")
        }
        guard let resource = string("resource"), let calendar = calendar(forResource: resource) else {
            return Self.graphError(400, "InvalidRequest", "The value '\(string("resource") ?? "")' of parameter 'Resource' is not supported.")
        }
        if case .bool(true)? = fields["includeResourceData"] {
            return Self.graphError(400, "InvalidRequest", "Rich notifications need an encryptionCertificate; the simulator does not support them.")
        }
        if let tls = string("latestSupportedTlsVersion"), !["v1_0", "v1_1", "v1_2", "v1_3"].contains(tls) {
            return Self.graphError(400, "InvalidRequest", "Invalid latestSupportedTlsVersion '\(tls)'.")
        }
        let clientState = string("clientState")
        if let clientState, clientState.count > 128 {
            return Self.graphError(400, "InvalidRequest", "clientState must be 128 characters or fewer.")
        }
        let now = now()
        let maximum = state.withLock { $0.maximumSubscriptionMinutes }
        guard let expiresText = string("expirationDateTime"), let expiresAt = SimulatorDates.instant(expiresText) else {
            return Self.graphError(400, "InvalidRequest", "expirationDateTime is required and must be an ISO 8601 instant.")
        }
        guard expiresAt > now else { return Self.graphError(400, "InvalidRequest", "Subscription expiration must be in the future.") }
        guard expiresAt <= now.addingTimeInterval(Double(maximum) * 60 + 60) else {
            return Self.graphError(400, "InvalidRequest", "Subscription expiration can only be \(maximum) minutes in the future.")
        }
        let count = state.withLock { state -> Int in
            Self.purgeExpired(&state)
            return state.subscriptions.count
        }
        guard count < 1000 else {
            return Self.graphError(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: The maximum number of 1000 subscriptions has been reached for this mailbox.]")
        }
        for url in [notificationURL] + (lifecycleURL.map { [$0] } ?? []) {
            if let failure = await validate(url) { return Self.graphError(400, "InvalidRequest", failure) }
        }
        let subscription = Subscription(
            id: UUID().uuidString.lowercased(), resource: resource, calendar: calendar, changeTypes: changeTypes,
            notificationURL: notificationURL, lifecycleURL: lifecycleURL, clientState: clientState, expiresAt: expiresAt,
            needsReauthorization: false
        )
        state.withLock { $0.subscriptions[subscription.id] = subscription }
        return Self.json(Self.representation(subscription), status: .created)
    }

    func renew(_ id: String, body: ByteBuffer) async throws -> Response {
        guard var subscription = liveSubscription(id) else { return Self.notFound() }
        guard case .object(let fields)? = try? JSONValue.parse(Data(buffer: body)) else {
            return Self.graphError(400, "BadRequest", "Unable to read JSON request payload.")
        }
        if let unknown = fields.keys.sorted().first(where: { !["@odata.type", "expirationDateTime", "notificationUrl"].contains($0) }) {
            return Self.graphError(400, "BadRequest", "Property '\(unknown)' cannot be updated.")
        }
        guard case .string(let text)? = fields["expirationDateTime"], let expiresAt = SimulatorDates.instant(text) else {
            return Self.graphError(400, "InvalidRequest", "expirationDateTime is required and must be an ISO 8601 instant.")
        }
        let now = now()
        let maximum = state.withLock { $0.maximumSubscriptionMinutes }
        guard expiresAt > now, expiresAt <= now.addingTimeInterval(Double(maximum) * 60 + 60) else {
            return Self.graphError(400, "InvalidRequest", "Subscription expiration can only be \(maximum) minutes in the future.")
        }
        if case .string(let url)? = fields["notificationUrl"] {
            guard url.hasPrefix("https://") else { return Self.graphError(400, "InvalidRequest", "The notification URL must be an https URL.") }
            subscription.notificationURL = url
        }
        if let failure = await validate(subscription.notificationURL) { return Self.graphError(400, "InvalidRequest", failure) }
        subscription.expiresAt = expiresAt
        subscription.needsReauthorization = false
        let stored = subscription
        let exists = state.withLock { state -> Bool in
            guard state.subscriptions[id] != nil else { return false }
            state.subscriptions[id] = stored
            return true
        }
        return exists ? Self.json(Self.representation(stored)) : Self.notFound()
    }

    /// `me/events` (default calendar) or `me/calendars/{id}/events`, with or without a leading slash, `users/{id}` too.
    func calendar(forResource resource: String) -> String? {
        let parts = resource.split(separator: "/").map(String.init)
        guard parts.count >= 2 else { return nil }
        let owner =
            parts[0].lowercased() == "me"
            ? Array(parts.dropFirst())
            : (parts[0].lowercased() == "users" && parts.count > 2 && (parts[1] == Self.userID || parts[1].contains("@")) ? Array(parts.dropFirst(2)) : nil)
        guard let rest = owner else { return nil }
        if rest.count == 1, rest[0].lowercased() == "events" { return Self.defaultCalendarID }
        if rest.count == 3, rest[0].lowercased() == "calendars", rest[2].lowercased() == "events" {
            return state.withLock { $0.calendars[rest[1]] != nil } ? rest[1] : nil
        }
        return nil
    }

    static func representation(_ subscription: Subscription) -> JSONValue {
        .object([
            "@odata.context": .string("https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity"),
            "id": .string(subscription.id), "resource": .string(subscription.resource),
            "applicationId": .string("24d3b144-21ae-4080-943f-7067b395b913"),
            "changeType": .string(["created", "updated", "deleted"].filter(subscription.changeTypes.contains).joined(separator: ",")),
            "clientState": subscription.clientState.map(JSONValue.string) ?? .null,
            "notificationUrl": .string(subscription.notificationURL),
            "lifecycleNotificationUrl": subscription.lifecycleURL.map(JSONValue.string) ?? .null,
            "expirationDateTime": .string(iso(subscription.expiresAt)), "creatorId": .string("8ee44408-0679-472c-bc2a-692812af3437"),
            "includeResourceData": .null, "latestSupportedTlsVersion": .string("v1_2"), "encryptionCertificate": .null,
            "encryptionCertificateId": .null, "notificationUrlAppId": .null, "notificationQueryOptions": .null,
        ])
    }

    // MARK: Helpers

    /// A path parameter, percent-decoded (Graph ids end in `=`, which clients send as `%3D`).
    static func parameter(_ context: BasicRequestContext, _ name: String) -> String? {
        context.parameters.get(name).map { $0.removingPercentEncoding ?? $0 }
    }

    static func base(_ request: Request) -> String {
        "http://\(request.head.authority ?? "127.0.0.1")"
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// `2025-12-03T14:00:00.0000000`, as Graph writes wall-clock times (here in UTC).
    static func wall(_ date: Date) -> String {
        String(iso(date).dropLast()) + ".0000000"
    }

    /// Form encoding as Graph writes the validation token: space as `+`, everything but unreserved characters as %xx.
    static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: " "): out += "+"
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += String(format: "%%%02x", byte)
            }
        }
        return out
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        GoogleSimulator.json(value, status: status)
    }

    static func notFound() -> Response {
        graphError(404, "ResourceNotFound", "The object was not found.")
    }

    static func graphError(_ status: Int, _ code: String, _ message: String) -> Response {
        json(
            .object([
                "error": .object([
                    "code": .string(code), "message": .string(message),
                    "innerError": .object([
                        "date": .string(iso(Date())), "request-id": .string(UUID().uuidString.lowercased()),
                        "client-request-id": .string(UUID().uuidString.lowercased()),
                    ]),
                ])
            ]), status: HTTPResponse.Status(code: status))
    }
}
