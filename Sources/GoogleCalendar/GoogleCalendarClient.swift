import CalgateMacros
import CurlHTTP
import Foundation
import GatewayCore

/// Where the Google endpoints are (the real ones, or the loopback simulator).
@MemberwiseInit
public struct GoogleEndpoints: Sendable, Hashable {
    /// OAuth token endpoint.
    public var tokenURL: String
    /// Calendar API base, ending in `/calendar/v3`.
    public var apiBaseURL: String

    /// Google's production endpoints.
    public static let production = GoogleEndpoints(
        tokenURL: "https://oauth2.googleapis.com/token", apiBaseURL: "https://www.googleapis.com/calendar/v3"
    )
}

/// An OAuth access token and when it stops working.
public struct GoogleAccessToken: Sendable, Hashable {
    /// The bearer token.
    public var value: String
    /// Expiry (refresh a minute before).
    public var expiresAt: Date
}

/// The Google Calendar calls calgate makes, over libcurl.
public struct GoogleCalendarClient: Sendable {
    let http: CurlHTTPClient
    let endpoints: GoogleEndpoints

    /// Creates a client.
    public init(http: CurlHTTPClient, endpoints: GoogleEndpoints = .production) {
        self.http = http
        self.endpoints = endpoints
    }

    /// Exchanges a refresh token for an access token; `invalid_grant` means the user must reconnect.
    public func refreshAccessToken(clientID: String, clientSecret: String, refreshToken: String, now: Date = Date()) async throws -> GoogleAccessToken {
        let form = OAuthSignIn.form([
            ("grant_type", "refresh_token"), ("client_id", clientID), ("client_secret", clientSecret), ("refresh_token", refreshToken),
        ])
        let response = try await perform(.formPost(endpoints.tokenURL, body: form), what: "token refresh")
        return try Self.decodeToken(response, now: now)
    }

    /// The token endpoint's answer: an access token, or the error that says what to do.
    public static func decodeToken(_ response: CurlHTTPResponse, now: Date) throws(GoogleAPIError) -> GoogleAccessToken {
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        guard response.status == 200 else {
            if let error = object?["error"] as? String, error == "invalid_grant" {
                throw GoogleAPIError(kind: .invalidGrant, message: "the refresh token was revoked or expired; the user must reconnect")
            }
            throw Self.classify(response, what: "token refresh")
        }
        guard let token = object?["access_token"] as? String, !token.isEmpty else {
            throw GoogleAPIError(kind: .badResponse, message: "token response has no access_token")
        }
        let lifetime = (object?["expires_in"] as? NSNumber)?.doubleValue ?? 3600
        return GoogleAccessToken(value: token, expiresAt: now.addingTimeInterval(lifetime))
    }

    /// One `events.list` page: incremental with `syncToken`, full without; `pageToken` continues either.
    public func listEvents(calendarID: String, accessToken: String, syncToken: String?, pageToken: String?, maxResults: Int = 250) async throws -> GoogleEventsPage {
        var query = ["maxResults=\(maxResults)"]
        // Full syncs ask for cancelled items too, so incremental results mean the same thing (PROVIDERS.md §2.2).
        if let syncToken { query.append("syncToken=\(Self.formEncode(syncToken))") } else { query.append("showDeleted=true") }
        if let pageToken { query.append("pageToken=\(Self.formEncode(pageToken))") }
        let path = "/calendars/\(Self.pathEncode(calendarID))/events?" + query.joined(separator: "&")
        let response = try await api("GET", path, accessToken: accessToken, what: "events.list")
        guard response.status == 200 else { throw Self.classify(response, what: "events.list") }
        return try Self.decodeEventsPage(response.body)
    }

    /// An `events.list` page body: an Events collection with exactly one of `nextPageToken` and `nextSyncToken`.
    public static func decodeEventsPage(_ body: [UInt8]) throws(GoogleAPIError) -> GoogleEventsPage {
        let page: GoogleEventsPage
        do {
            page = try GoogleEventsPage(json: JSONValue.parse(Data(body)))
        } catch {
            throw GoogleAPIError(kind: .badResponse, message: "events.list page is not an Events collection (\(error))")
        }
        guard (page.nextPageToken == nil) != (page.nextSyncToken == nil) else {
            throw GoogleAPIError(kind: .badResponse, message: "events.list page must carry exactly one of nextPageToken and nextSyncToken")
        }
        return page
    }

    /// The user's calendars (`calendarList.list`), one page of up to 250 (enough for a user's own list).
    public func listCalendars(accessToken: String) async throws -> [(id: String, name: String, primary: Bool)] {
        let response = try await api("GET", "/users/me/calendarList?maxResults=250", accessToken: accessToken, what: "calendarList.list")
        guard response.status == 200 else { throw Self.classify(response, what: "calendarList.list") }
        return try Self.decodeCalendarList(response.body)
    }

    /// A `calendarList.list` body: each calendar's id, name and whether it is the primary one.
    public static func decodeCalendarList(_ body: [UInt8]) throws(GoogleAPIError) -> [(id: String, name: String, primary: Bool)] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw GoogleAPIError(kind: .badResponse, message: "calendarList.list answer is not JSON")
        }
        let items = object["items"] as? [[String: Any]] ?? []
        return items.compactMap { item in
            guard let id = item["id"] as? String else { return nil }
            return (id, item["summary"] as? String ?? id, item["primary"] as? Bool ?? false)
        }
    }

    /// Opens a push channel on a calendar's events (`events.watch`); returns Google's resource id and expiry.
    public func watch(calendarID: String, accessToken: String, channelID: String, token: String, address: String) async throws -> (resourceID: String, expiresAt: Date) {
        let body = JSONSerialization.dataOrEmpty(["id": channelID, "type": "web_hook", "address": address, "token": token])
        let response = try await api("POST", "/calendars/\(Self.pathEncode(calendarID))/events/watch", accessToken: accessToken, body: body, what: "events.watch")
        guard response.status == 200 else { throw Self.classify(response, what: "events.watch") }
        return try Self.decodeWatch(response.body)
    }

    /// An `events.watch` answer: the resource id and expiry of the new channel.
    public static func decodeWatch(_ body: [UInt8]) throws(GoogleAPIError) -> (resourceID: String, expiresAt: Date) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
            let resourceID = object["resourceId"] as? String
        else { throw GoogleAPIError(kind: .badResponse, message: "events.watch answer has no resourceId") }
        // `expiration` is int64 milliseconds, sent as a number or a numeric string.
        let milliseconds = (object["expiration"] as? NSNumber)?.doubleValue ?? (object["expiration"] as? String).flatMap(Double.init)
        guard let milliseconds else { throw GoogleAPIError(kind: .badResponse, message: "events.watch answer has no expiration") }
        return (resourceID, Date(timeIntervalSince1970: milliseconds / 1000))
    }

    /// `events.insert`: creates an event from a JSON body; returns its id.
    public func insertEvent(calendarID: String, body: JSONValue, accessToken: String) async throws -> String {
        let response = try await api("POST", "/calendars/\(Self.pathEncode(calendarID))/events", accessToken: accessToken, body: body.serialized(), what: "events.insert")
        guard response.status == 200 else { throw Self.classify(response, what: "events.insert") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any], let id = object["id"] as? String else {
            throw GoogleAPIError(kind: .badResponse, message: "events.insert answer has no id")
        }
        return id
    }

    /// The id of a live event carrying private extended property `name=value` (an earlier push whose answer was
    /// lost), if any.
    public func findEvent(calendarID: String, privateProperty name: String, value: String, accessToken: String) async throws -> String? {
        let filter = Self.formEncode("\(name)=\(value)")
        let response = try await api("GET", "/calendars/\(Self.pathEncode(calendarID))/events?maxResults=5&privateExtendedProperty=\(filter)", accessToken: accessToken, what: "events.list by property")
        guard response.status == 200 else { throw Self.classify(response, what: "events.list by property") }
        guard case .object(let object)? = try? JSONValue.parse(Data(response.body)), case .array(let items)? = object["items"] else { return nil }
        for case .object(let item) in items {
            if case .string(let status)? = item["status"], status == "cancelled" { continue }
            if case .string(let id)? = item["id"] { return id }
        }
        return nil
    }

    /// `events.get`: one event's JSON; nil when it is gone.
    public func getEvent(calendarID: String, eventID: String, accessToken: String) async throws -> [String: JSONValue]? {
        let response = try await api("GET", "/calendars/\(Self.pathEncode(calendarID))/events/\(Self.pathEncode(eventID))", accessToken: accessToken, what: "events.get")
        if response.status == 404 || response.status == 410 { return nil }
        guard response.status == 200 else { throw Self.classify(response, what: "events.get") }
        guard case .object(let object)? = try? JSONValue.parse(Data(response.body)) else {
            throw GoogleAPIError(kind: .badResponse, message: "events.get answer is not an event")
        }
        return object
    }

    /// `events.patch`; a 404 or 410 means the event is gone (the caller recreates it).
    public func patchEvent(calendarID: String, eventID: String, body: JSONValue, accessToken: String) async throws {
        let response = try await api("PATCH", "/calendars/\(Self.pathEncode(calendarID))/events/\(Self.pathEncode(eventID))", accessToken: accessToken, body: body.serialized(), what: "events.patch")
        guard response.status == 200 else { throw Self.classify(response, what: "events.patch") }
    }

    /// `events.delete`; an event already gone (404, 410) counts as deleted.
    public func deleteEvent(calendarID: String, eventID: String, accessToken: String) async throws {
        let response = try await api("DELETE", "/calendars/\(Self.pathEncode(calendarID))/events/\(Self.pathEncode(eventID))", accessToken: accessToken, what: "events.delete")
        guard (200...299).contains(response.status) || response.status == 404 || response.status == 410 else {
            throw Self.classify(response, what: "events.delete")
        }
    }

    /// Stops a channel (`channels.stop`); a channel Google no longer knows counts as stopped.
    public func stop(channelID: String, resourceID: String, accessToken: String) async throws {
        let response = try await api("POST", "/channels/stop", accessToken: accessToken, body: JSONSerialization.dataOrEmpty(["id": channelID, "resourceId": resourceID]), what: "channels.stop")
        guard (200...299).contains(response.status) || response.status == 404 else { throw Self.classify(response, what: "channels.stop") }
    }

    /// A Calendar API call at `path` under the API base, authorised by `accessToken`; a `body` is sent as JSON.
    private func api(_ method: String, _ path: String, accessToken: String, body: [UInt8]? = nil, what: String) async throws -> CurlHTTPResponse {
        let type = body == nil ? CurlHTTPHeader("Accept", "application/json") : CurlHTTPHeader("Content-Type", "application/json")
        let headers = [CurlHTTPHeader("Authorization", "Bearer \(accessToken)"), type]
        return try await perform(CurlHTTPRequest(method: method, url: endpoints.apiBaseURL + path, headers: headers, body: body), what: what)
    }

    private func perform(_ request: CurlHTTPRequest, what: String) async throws -> CurlHTTPResponse {
        do {
            return try await http.execute(request)
        } catch let error as CurlHTTPError {
            throw GoogleAPIError(kind: .transport, message: "\(what): \(error)")
        }
    }

    /// Maps a non-2xx answer to what the caller should do.
    public static func classify(_ response: CurlHTTPResponse, what: String) -> GoogleAPIError {
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        let errorObject = object?["error"] as? [String: Any]
        let reasons = (errorObject?["errors"] as? [[String: Any]])?.compactMap { $0["reason"] as? String } ?? []
        let retryAfter = response.header("Retry-After").flatMap(TimeInterval.init)
        let message = "\(what) answered \(response.status)" + (reasons.isEmpty ? "" : " (\(reasons.joined(separator: ", ")))")
        switch response.status {
        case 410: return GoogleAPIError(kind: .fullSyncRequired, message: message)
        case 401: return GoogleAPIError(kind: .unauthorized, message: message)
        case 429: return GoogleAPIError(kind: .rateLimited(retryAfter: retryAfter), message: message)
        case 403 where reasons.contains("rateLimitExceeded") || reasons.contains("userRateLimitExceeded"):
            return GoogleAPIError(kind: .rateLimited(retryAfter: retryAfter), message: message)
        case 500...599: return GoogleAPIError(kind: .server, message: message)
        default: return GoogleAPIError(kind: .other(status: response.status), message: message)
        }
    }

    /// RFC 3986 unreserved characters stay; every other byte is percent-encoded.
    static func formEncode(_ text: String) -> String { OAuthSignIn.percentEncoded(text) }

    static func pathEncode(_ text: String) -> String { formEncode(text) }
}

extension JSONSerialization {
    /// JSON bytes of a string dictionary (cannot fail for strings).
    static func dataOrEmpty(_ object: [String: String]) -> [UInt8] {
        (try? Array(JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))) ?? Array("{}".utf8)
    }
}
