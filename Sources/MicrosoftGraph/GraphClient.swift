import CalgateMacros
import CurlHTTP
import Foundation
import GatewayCore

/// Where Entra ID and Graph are (the real ones, or the loopback simulator).
public struct GraphEndpoints: Sendable, Hashable {
    /// Entra ID v2 token endpoint.
    public var tokenURL: String
    /// Graph base URL, ending in `/v1.0`.
    public var apiBaseURL: String

    /// Microsoft's production endpoints (`common` tenant).
    public static let production = GraphEndpoints(
        tokenURL: "https://login.microsoftonline.com/common/oauth2/v2.0/token", apiBaseURL: "https://graph.microsoft.com/v1.0"
    )

    /// Creates endpoints.
    public init(tokenURL: String, apiBaseURL: String) {
        self.tokenURL = tokenURL
        self.apiBaseURL = apiBaseURL.hasSuffix("/") ? String(apiBaseURL.dropLast()) : apiBaseURL
    }
}

/// An access token, when it lapses, and the refresh token Entra ID issued in place of the presented one.
public struct GraphAccessToken: Sendable, Hashable {
    /// The bearer token.
    public var value: String
    /// Expiry.
    public var expiresAt: Date
    /// The rotated refresh token, when Entra sent one (it must replace the stored one).
    public var refreshToken: String?
}

/// Who a call is made as: the bearer token and the mailbox whose concurrency budget it uses.
@MemberwiseInit
public struct GraphAuthorization: Sendable, Hashable {
    /// The bearer token.
    public var accessToken: String
    /// The mailbox (calgate uses the connection id): Outlook allows 4 concurrent requests per app and mailbox.
    public var mailbox: String
}

/// A calendar of the mailbox.
public struct GraphCalendar: Sendable, Hashable {
    /// Graph's id.
    public var id: String
    /// Display name.
    public var name: String
    /// Whether it is the mailbox's default calendar.
    public var isDefault: Bool
}

/// A subscription as Graph answered it.
public struct GraphSubscriptionInfo: Sendable, Hashable {
    /// Graph's id.
    public var id: String
    /// When it lapses.
    public var expiresAt: Date
}

/// One delta page: items, and exactly one of the next page and the delta link.
public struct GraphDeltaPage: Sendable {
    /// The items, in order.
    public var items: [GraphDeltaItem]
    /// `@odata.nextLink`: keep paging.
    public var nextLink: String?
    /// `@odata.deltaLink`: the round is complete; store it for the next round.
    public var deltaLink: String?
}

/// The Graph calls calgate makes, over libcurl, each within its mailbox's concurrency budget.
public struct GraphClient: Sendable {
    let http: CurlHTTPClient
    /// The endpoints in use.
    public let endpoints: GraphEndpoints
    let limiter: MailboxLimiter

    /// Creates a client; `limiter` caps concurrent requests per mailbox (Outlook's limit is 4).
    public init(http: CurlHTTPClient, endpoints: GraphEndpoints = .production, limiter: MailboxLimiter = MailboxLimiter(limit: 4)) {
        self.http = http
        self.endpoints = endpoints
        self.limiter = limiter
    }

    /// Redeems a refresh token (Entra ID v2). `invalid_grant` and `interaction_required` mean the user must sign in again.
    public func refreshAccessToken(clientID: String, clientSecret: String, refreshToken: String, now: Date = Date()) async throws -> GraphAccessToken {
        let form: [(String, String)] = [
            ("client_id", clientID), ("grant_type", "refresh_token"), ("refresh_token", refreshToken),
            ("scope", "https://graph.microsoft.com/Calendars.Read offline_access"), ("client_secret", clientSecret),
        ]
        let response = try await perform(.formPost(endpoints.tokenURL, body: OAuthSignIn.form(form)), what: "token refresh")
        return try Self.decodeToken(response, now: now)
    }

    /// The token endpoint's answer: an access token (and a rotated refresh token), or the error that says what to do.
    public static func decodeToken(_ response: CurlHTTPResponse, now: Date) throws(GraphAPIError) -> GraphAccessToken {
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        guard response.status == 200 else {
            let code = object?["error"] as? String
            let codes = (object?["error_codes"] as? [NSNumber])?.map { "AADSTS\($0.intValue)" }.joined(separator: ", ")
            let detail = codes.map { " (\($0))" } ?? ""
            switch code {
            case "invalid_grant":
                throw GraphAPIError(kind: .invalidGrant, message: "Entra ID refused the refresh token: invalid_grant\(detail)")
            case "interaction_required", "consent_required":
                throw GraphAPIError(kind: .interactionRequired, message: "Entra ID requires the user to sign in interactively: \(code ?? "")\(detail)")
            case "temporarily_unavailable":
                throw GraphAPIError(kind: .server, message: "Entra ID is temporarily unavailable\(detail)")
            default:
                throw Self.classify(response, what: "token refresh")
            }
        }
        guard let token = object?["access_token"] as? String, !token.isEmpty else {
            throw GraphAPIError(kind: .badResponse, message: "token response has no access_token")
        }
        let lifetime = (object?["expires_in"] as? NSNumber)?.doubleValue ?? 3600
        guard lifetime > 0, lifetime < 86_400 * 2 else { throw GraphAPIError(kind: .badResponse, message: "token response has an absurd expires_in") }
        let rotated = (object?["refresh_token"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        return GraphAccessToken(value: token, expiresAt: now.addingTimeInterval(lifetime), refreshToken: rotated)
    }

    /// The mailbox's calendars (`GET /me/calendars`, every page).
    public func listCalendars(_ auth: GraphAuthorization) async throws -> [GraphCalendar] {
        var url: String? = "\(endpoints.apiBaseURL)/me/calendars?$top=100"
        var calendars: [GraphCalendar] = []
        var pages = 0
        while let next = url {
            pages += 1
            guard pages <= 100 else { throw GraphAPIError(kind: .badResponse, message: "calendar list does not end") }
            let object = try await getJSON(next, auth, what: "list calendars")
            let page = try Self.decodeCalendarPage(object, apiBaseURL: endpoints.apiBaseURL)
            calendars += page.calendars
            url = page.nextLink
        }
        return calendars
    }

    /// One `GET /me/calendars` page (a parsed JSON object): its calendars and the checked `@odata.nextLink`, if any.
    public static func decodeCalendarPage(_ object: [String: Any], apiBaseURL: String) throws(GraphAPIError) -> (calendars: [GraphCalendar], nextLink: String?) {
        guard let items = object["value"] as? [[String: Any]] else {
            throw GraphAPIError(kind: .badResponse, message: "calendar list has no value array")
        }
        var calendars: [GraphCalendar] = []
        for item in items {
            guard let id = item["id"] as? String, !id.isEmpty else { throw GraphAPIError(kind: .badResponse, message: "a calendar has no id") }
            calendars.append(GraphCalendar(id: id, name: item["name"] as? String ?? id, isDefault: item["isDefaultCalendar"] as? Bool ?? false))
        }
        let next = try (object["@odata.nextLink"] as? String).map { (link: String) throws(GraphAPIError) -> String in
            try checkedLink(link, apiBaseURL: apiBaseURL, what: "calendar list nextLink")
        }
        return (calendars, next)
    }

    /// The first URL of a delta round over one calendar's events.
    public func initialEventsDeltaURL(calendarID: String, window: ClosedRange<Date>) -> String {
        let formatter = ISO8601DateFormatter()
        return "\(endpoints.apiBaseURL)/me/calendars/\(Self.pathEncode(calendarID))/events/delta"
            + "?startDateTime=\(formatter.string(from: window.lowerBound))&endDateTime=\(formatter.string(from: window.upperBound))"
    }

    /// One delta page from `url` (an initial URL, a `nextLink` or a stored `deltaLink`, replayed verbatim).
    public func deltaPage(_ url: String, _ auth: GraphAuthorization, pageSize: Int) async throws -> GraphDeltaPage {
        let checked = try checkedLink(url, what: "delta link")
        let response = try await perform(
            CurlHTTPRequest(
                url: checked,
                headers: [
                    CurlHTTPHeader("Authorization", "Bearer \(auth.accessToken)"), CurlHTTPHeader("Accept", "application/json"),
                    CurlHTTPHeader("Prefer", "odata.maxpagesize=\(pageSize)"), CurlHTTPHeader("Prefer", "outlook.timezone=\"UTC\""),
                ]), auth: auth, what: "events delta")
        guard response.status == 200 else { throw Self.classify(response, what: "events delta") }
        return try Self.decodeDeltaPage(response.body, apiBaseURL: endpoints.apiBaseURL)
    }

    /// A delta page body: an event collection with exactly one of `@odata.nextLink` and `@odata.deltaLink`, both
    /// pointing back at `apiBaseURL`.
    public static func decodeDeltaPage(_ body: [UInt8], apiBaseURL: String) throws(GraphAPIError) -> GraphDeltaPage {
        let page: GraphDeltaPageBody
        do {
            page = try JSONDecoder().decode(GraphDeltaPageBody.self, from: Data(body))
        } catch {
            throw GraphAPIError(kind: .badResponse, message: "delta page is not an event collection (\(error))")
        }
        guard (page.nextLink == nil) != (page.deltaLink == nil) else {
            throw GraphAPIError(kind: .badResponse, message: "delta page must carry exactly one of @odata.nextLink and @odata.deltaLink")
        }
        return GraphDeltaPage(
            items: page.value,
            nextLink: try page.nextLink.map { (link: String) throws(GraphAPIError) -> String in
                try checkedLink(link, apiBaseURL: apiBaseURL, what: "@odata.nextLink")
            },
            deltaLink: try page.deltaLink.map { (link: String) throws(GraphAPIError) -> String in
                try checkedLink(link, apiBaseURL: apiBaseURL, what: "@odata.deltaLink")
            }
        )
    }

    /// One event of a calendar (a series master named by occurrence stubs); nil when it no longer exists.
    public func event(calendarID: String, eventID: String, _ auth: GraphAuthorization) async throws -> GraphDeltaItem? {
        let url = "\(endpoints.apiBaseURL)/me/calendars/\(Self.pathEncode(calendarID))/events/\(Self.pathEncode(eventID))"
        let response = try await perform(
            CurlHTTPRequest(
                url: url,
                headers: [
                    CurlHTTPHeader("Authorization", "Bearer \(auth.accessToken)"), CurlHTTPHeader("Accept", "application/json"),
                    CurlHTTPHeader("Prefer", "outlook.timezone=\"UTC\""),
                ]), auth: auth, what: "get event")
        if response.status == 404 { return nil }
        guard response.status == 200 else { throw Self.classify(response, what: "get event") }
        return try Self.decodeEvent(response.body)
    }

    /// A single event body (`GET /me/calendars/{id}/events/{id}`).
    public static func decodeEvent(_ body: [UInt8]) throws(GraphAPIError) -> GraphDeltaItem {
        do { return try JSONDecoder().decode(GraphDeltaItem.self, from: Data(body)) } catch {
            throw GraphAPIError(kind: .badResponse, message: "event is not an event (\(error))")
        }
    }

    /// `POST /subscriptions`; Graph runs the validation handshake against both URLs before it answers.
    public func createSubscription(
        resource: String, notificationURL: String, lifecycleURL: String, clientState: String, expiresAt: Date, _ auth: GraphAuthorization
    ) async throws -> GraphSubscriptionInfo {
        let body: [String: String] = [
            "changeType": "created,updated,deleted", "notificationUrl": notificationURL, "lifecycleNotificationUrl": lifecycleURL,
            "resource": resource, "expirationDateTime": Self.graphInstant(expiresAt), "clientState": clientState,
            "latestSupportedTlsVersion": "v1_2",
        ]
        let response = try await send("POST", "\(endpoints.apiBaseURL)/subscriptions", body: body, auth, what: "create subscription")
        guard response.status == 201 || response.status == 200 else { throw Self.classify(response, what: "create subscription") }
        return try Self.subscription(response, what: "create subscription")
    }

    /// `PATCH /subscriptions/{id}` with a new expiry (renews and reauthorizes); 404 means it is gone.
    public func renewSubscription(id: String, expiresAt: Date, _ auth: GraphAuthorization) async throws -> GraphSubscriptionInfo {
        let response = try await send(
            "PATCH", "\(endpoints.apiBaseURL)/subscriptions/\(Self.pathEncode(id))", body: ["expirationDateTime": Self.graphInstant(expiresAt)],
            auth, what: "renew subscription"
        )
        guard response.status == 200 else { throw Self.classify(response, what: "renew subscription") }
        return try Self.subscription(response, what: "renew subscription")
    }

    /// `POST /subscriptions/{id}/reauthorize` (204); 404 means it is gone.
    public func reauthorizeSubscription(id: String, _ auth: GraphAuthorization) async throws {
        let response = try await send("POST", "\(endpoints.apiBaseURL)/subscriptions/\(Self.pathEncode(id))/reauthorize", body: nil, auth, what: "reauthorize subscription")
        guard (200...299).contains(response.status) else { throw Self.classify(response, what: "reauthorize subscription") }
    }

    /// `DELETE /subscriptions/{id}`; one Graph no longer has counts as deleted.
    public func deleteSubscription(id: String, _ auth: GraphAuthorization) async throws {
        let response = try await send("DELETE", "\(endpoints.apiBaseURL)/subscriptions/\(Self.pathEncode(id))", body: nil, auth, what: "delete subscription")
        guard (200...299).contains(response.status) || response.status == 404 else { throw Self.classify(response, what: "delete subscription") }
    }

    /// `POST /me/calendars/{id}/events`: creates an event; returns its id.
    public func createEvent(calendarID: String, body: JSONValue, _ auth: GraphAuthorization) async throws -> String {
        let response = try await sendJSON("POST", "\(endpoints.apiBaseURL)/me/calendars/\(Self.pathEncode(calendarID))/events", body: body, auth, what: "create event")
        guard response.status == 201 || response.status == 200 else { throw Self.classify(response, what: "create event") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any], let id = object["id"] as? String else {
            throw GraphAPIError(kind: .badResponse, message: "create event answer has no id")
        }
        return id
    }

    /// `PATCH /me/events/{id}`; 404 means it is gone.
    public func updateEvent(eventID: String, body: JSONValue, _ auth: GraphAuthorization) async throws {
        let response = try await sendJSON("PATCH", "\(endpoints.apiBaseURL)/me/events/\(Self.pathEncode(eventID))", body: body, auth, what: "update event")
        guard response.status == 200 else { throw Self.classify(response, what: "update event") }
    }

    /// `DELETE /me/events/{id}`; an event already gone counts as deleted.
    public func deleteEvent(eventID: String, _ auth: GraphAuthorization) async throws {
        let response = try await send("DELETE", "\(endpoints.apiBaseURL)/me/events/\(Self.pathEncode(eventID))", body: nil, auth, what: "delete event")
        guard (200...299).contains(response.status) || response.status == 404 else { throw Self.classify(response, what: "delete event") }
    }

    private func sendJSON(_ method: String, _ url: String, body: JSONValue, _ auth: GraphAuthorization, what: String) async throws -> CurlHTTPResponse {
        let bytes = body.serialized()
        return try await perform(
            CurlHTTPRequest(
                method: method, url: url,
                headers: [
                    CurlHTTPHeader("Authorization", "Bearer \(auth.accessToken)"), CurlHTTPHeader("Accept", "application/json"),
                    CurlHTTPHeader("Content-Type", "application/json"),
                ], body: bytes), auth: auth, what: what)
    }

    // MARK: Plumbing

    private func getJSON(_ url: String, _ auth: GraphAuthorization, what: String) async throws -> [String: Any] {
        let response = try await perform(
            CurlHTTPRequest(
                url: url,
                headers: [
                    CurlHTTPHeader("Authorization", "Bearer \(auth.accessToken)"), CurlHTTPHeader("Accept", "application/json"),
                ]), auth: auth, what: what)
        guard response.status == 200 else { throw Self.classify(response, what: what) }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] else {
            throw GraphAPIError(kind: .badResponse, message: "\(what) answer is not a JSON object")
        }
        return object
    }

    private func send(_ method: String, _ url: String, body: [String: String]?, _ auth: GraphAuthorization, what: String) async throws -> CurlHTTPResponse {
        var headers = [CurlHTTPHeader("Authorization", "Bearer \(auth.accessToken)"), CurlHTTPHeader("Accept", "application/json")]
        var bytes: [UInt8]?
        if let body {
            headers.append(CurlHTTPHeader("Content-Type", "application/json"))
            bytes = try? Array(JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes]))
        }
        // Create and renew wait for Graph's handshake with calgate (up to 10 s), so allow more than that.
        return try await perform(CurlHTTPRequest(method: method, url: url, headers: headers, body: bytes, timeout: .seconds(30)), auth: auth, what: what)
    }

    private func perform(_ request: CurlHTTPRequest, auth: GraphAuthorization? = nil, what: String) async throws -> CurlHTTPResponse {
        if let auth { await limiter.acquire(auth.mailbox) }
        defer { if let auth { limiter.release(auth.mailbox) } }
        do {
            return try await http.execute(request)
        } catch let error as CurlHTTPError {
            throw GraphAPIError(kind: .transport, message: "\(what): \(error)")
        }
    }

    /// Links Graph hands out are followed only when they point back at the configured Graph base, so a forged or
    /// corrupted link can never receive the bearer token.
    func checkedLink(_ link: String, what: String) throws -> String {
        try Self.checkedLink(link, apiBaseURL: endpoints.apiBaseURL, what: what)
    }

    /// `link` when it points back at `apiBaseURL` and has no control characters; a bad-response error otherwise.
    public static func checkedLink(_ link: String, apiBaseURL: String, what: String) throws(GraphAPIError) -> String {
        guard link.hasPrefix(apiBaseURL + "/"), link.utf8.count <= 16_384,
            !link.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F })
        else {
            throw GraphAPIError(kind: .badResponse, message: "\(what) does not point at \(apiBaseURL)")
        }
        return link
    }

    /// A subscription create or renew answer: its id and new expiry.
    public static func subscription(_ response: CurlHTTPResponse, what: String) throws(GraphAPIError) -> GraphSubscriptionInfo {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any],
            let id = object["id"] as? String, !id.isEmpty,
            let expiry = (object["expirationDateTime"] as? String).flatMap(GraphDateTime.parseInstant)
        else { throw GraphAPIError(kind: .badResponse, message: "\(what) answer has no id or expirationDateTime") }
        return GraphSubscriptionInfo(id: id, expiresAt: expiry)
    }

    /// Maps a non-2xx answer to what the caller should do.
    public static func classify(_ response: CurlHTTPResponse, what: String) -> GraphAPIError {
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        let error = object?["error"] as? [String: Any]
        let code = error?["code"] as? String ?? (object?["error"] as? String)
        let retryAfter = response.header("Retry-After").flatMap(TimeInterval.init).map { min(max($0, 0), 3600) }
        let message = "\(what) answered \(response.status)" + (code.map { " (\($0))" } ?? "")
        if code == "syncStateNotFound" || code == "resyncRequired" { return GraphAPIError(kind: .resyncRequired, message: message) }
        switch response.status {
        case 410: return GraphAPIError(kind: .resyncRequired, message: message)
        case 401: return GraphAPIError(kind: .unauthorized, message: message)
        case 404: return GraphAPIError(kind: .notFound, message: message)
        case 429: return GraphAPIError(kind: .rateLimited(retryAfter: retryAfter), message: message)
        case 400 where (error?["message"] as? String)?.contains("validation request") == true:
            // Graph's own wording is not repeated: provider error text stays out of logs and answers.
            return GraphAPIError(kind: .validationFailed, message: message + ": Graph's validation request to the notification URL failed")
        case 503 where retryAfter != nil: return GraphAPIError(kind: .rateLimited(retryAfter: retryAfter), message: message)
        case 500...599: return GraphAPIError(kind: .server, message: message)
        default: return GraphAPIError(kind: .other(status: response.status), message: message)
        }
    }

    /// `2026-12-01T09:00:00.0000000Z`, as Graph writes DateTimeOffset values.
    static func graphInstant(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return String(formatter.string(from: date).dropLast()) + ".0000000Z"
    }

    /// RFC 3986 unreserved characters stay; every other byte is percent-encoded (ASCII only, unlike `.alphanumerics`).
    static func formEncode(_ text: String) -> String { OAuthSignIn.percentEncoded(text) }

    static func pathEncode(_ text: String) -> String { formEncode(text) }
}

struct GraphDeltaPageBody: Decodable {
    var value: [GraphDeltaItem]
    var nextLink: String?
    var deltaLink: String?

    enum CodingKeys: String, CodingKey {
        case value
        case nextLink = "@odata.nextLink"
        case deltaLink = "@odata.deltaLink"
    }
}
