import CalgateMacros
import CurlHTTP
import Foundation
import GatewayCore

/// How calgate authenticates to Redtail once it has a UserKey (PROVIDERS.md §5.2: the scheme varies in the wild).
public enum RedtailAuthScheme: String, Sendable, Hashable, CaseIterable {
    /// `Authorization: Userkeyauth base64("APIKey:UserKey")` (Redtail's documented scheme).
    case userKeyAuth = "userkeyauth"
    /// `Authorization: Basic base64("APIKey:Username:")` plus a `userkey: <key>` header (seen in integrations).
    case basicWithUserKeyHeader = "basic_userkey_header"
}

/// Where Redtail's public v1 API is and how to authenticate.
public struct RedtailEndpoints: Sendable, Hashable {
    /// Base URL, ending in `/api/public/v1`.
    public var baseURL: String
    /// UserKey scheme.
    public var authScheme: RedtailAuthScheme

    /// Redtail's production API.
    public static let production = RedtailEndpoints(baseURL: "https://crm.redtailtechnology.com/api/public/v1", authScheme: .userKeyAuth)

    /// Creates endpoints.
    public init(baseURL: String, authScheme: RedtailAuthScheme = .userKeyAuth) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.authScheme = authScheme
    }
}

/// A Redtail failure, classified for the poller and the API.
public typealias RedtailAPIError = ClassifiedError<RedtailAPIErrorKind>

/// What the caller should do about a `RedtailAPIError`.
public enum RedtailAPIErrorKind: Sendable, Hashable {
    /// 401: the credentials (or the UserKey) are refused.
    case unauthorized
    /// 401 with "Account Locked": the user must unlock the account and reconnect.
    case accountLocked
    /// 429, 5xx or a Redtail gateway timeout: back off.
    case retry(retryAfter: TimeInterval?)
    /// The request did not complete.
    case transport
    /// The answer could not be understood.
    case badResponse
    /// Anything else.
    case other(status: Int)
}

/// The UserKey and the identity `GET /authentication` returned.
public struct RedtailSession: Sendable, Hashable {
    /// The UserKey (does not expire, survives password changes).
    public var userKey: String
    /// Redtail's user id, when sent.
    public var userID: String?
    /// Redtail's database id, when sent.
    public var databaseID: String?
}

/// One page of activities.
public struct RedtailActivitiesPage: Sendable {
    /// The activities.
    public var activities: [RedtailActivity]
    /// Pages in the listing.
    public var totalPages: Int
}

/// The Redtail calls calgate makes, over libcurl: at most `maxConcurrent` per credential (no documented limits,
/// so calgate is conservative).
public struct RedtailClient: Sendable {
    let http: CurlHTTPClient
    /// Endpoints in use.
    public let endpoints: RedtailEndpoints

    /// Creates a client.
    public init(http: CurlHTTPClient, endpoints: RedtailEndpoints = .production) {
        self.http = http
        self.endpoints = endpoints
    }

    /// Exchanges API key, username and password for the UserKey (`GET /authentication`, 3-part Basic).
    public func authenticate(apiKey: String, username: String, password: String) async throws -> RedtailSession {
        let basic = Data("\(apiKey):\(username):\(password)".utf8).base64EncodedString()
        let response = try await perform(
            CurlHTTPRequest(
                url: "\(endpoints.baseURL)/authentication",
                headers: [
                    CurlHTTPHeader("Authorization", "Basic \(basic)"), CurlHTTPHeader("Accept", "application/json"),
                ]), what: "authentication")
        guard response.status == 200 else { throw Self.classify(response, what: "authentication") }
        return try Self.decodeAuthentication(response.body)
    }

    /// A `GET /authentication` body: the UserKey and the user's identity (nested or flat).
    public static func decodeAuthentication(_ body: [UInt8]) throws(RedtailAPIError) -> RedtailSession {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw RedtailAPIError(kind: .badResponse, message: "authentication answer is not a JSON object")
        }
        // Public v1 nests the user under `authenticated_user`; some deployments answer flat.
        let user = object["authenticated_user"] as? [String: Any] ?? object
        guard let key = (user["user_key"] as? String) ?? (user["UserKey"] as? String), !key.isEmpty, key.utf8.count <= 256 else {
            throw RedtailAPIError(kind: .badResponse, message: "authentication answer has no user_key")
        }
        func text(_ value: Any?) -> String? {
            if let string = value as? String { return string }
            if let number = value as? NSNumber { return number.stringValue }
            return nil
        }
        return RedtailSession(
            userKey: key, userID: text(user["id"] ?? user["redtail_user_id"] ?? user["UserID"]),
            databaseID: text(user["redtail_database_id"] ?? user["DatabaseID"])
        )
    }

    /// One page of activities: changed since `updatedSince` (the watermark query) or overlapping `window`.
    public func activities(
        apiKey: String, userKey: String, updatedSince: Date? = nil, window: ClosedRange<Date>? = nil, page: Int, pageSize: Int = 200
    ) async throws -> RedtailActivitiesPage {
        let formatter = ISO8601DateFormatter()
        var query = ["page=\(page)", "page_size=\(pageSize)"]
        if let updatedSince { query.append("updated_since=\(formatter.string(from: updatedSince))") }
        if let window {
            query.append("start_date=\(formatter.string(from: window.lowerBound))")
            query.append("end_date=\(formatter.string(from: window.upperBound))")
        }
        let response = try await perform(
            CurlHTTPRequest(
                url: "\(endpoints.baseURL)/activities?" + query.joined(separator: "&"),
                headers: authorization(apiKey: apiKey, userKey: userKey) + [CurlHTTPHeader("Accept", "application/json")]
            ), what: "activities")
        guard response.status == 200 else { throw Self.classify(response, what: "activities") }
        return try Self.decodeActivities(response.body)
    }

    /// A `GET /activities` body: one page of activities and the page count.
    public static func decodeActivities(_ bytes: [UInt8]) throws(RedtailAPIError) -> RedtailActivitiesPage {
        let body: RedtailActivitiesBody
        do { body = try JSONDecoder().decode(RedtailActivitiesBody.self, from: Data(bytes)) } catch {
            throw RedtailAPIError(kind: .badResponse, message: "activities answer is not an activity listing (\(error))")
        }
        let pages = body.meta?.totalPages ?? 1
        guard pages >= 0, pages <= 100_000 else { throw RedtailAPIError(kind: .badResponse, message: "activities meta.total_pages is absurd") }
        return RedtailActivitiesPage(activities: body.activities, totalPages: max(pages, 1))
    }

    func authorization(apiKey: String, userKey: String) -> [CurlHTTPHeader] {
        switch endpoints.authScheme {
        case .userKeyAuth:
            return [CurlHTTPHeader("Authorization", "Userkeyauth " + Data("\(apiKey):\(userKey)".utf8).base64EncodedString())]
        case .basicWithUserKeyHeader:
            return [CurlHTTPHeader("Authorization", "Basic " + Data("\(apiKey)::".utf8).base64EncodedString()), CurlHTTPHeader("userkey", userKey)]
        }
    }

    private func perform(_ request: CurlHTTPRequest, what: String) async throws -> CurlHTTPResponse {
        do { return try await http.execute(request) } catch let error as CurlHTTPError {
            if error.kind == .timeout { throw RedtailAPIError(kind: .retry(retryAfter: nil), message: "\(what) timed out") }
            throw RedtailAPIError(kind: .transport, message: "\(what): \(error)")
        }
    }

    /// Maps a non-2xx answer to what the caller should do.
    public static func classify(_ response: CurlHTTPResponse, what: String) -> RedtailAPIError {
        let text = String(decoding: response.body.prefix(2048), as: UTF8.self)
        let retryAfter = response.header("Retry-After").flatMap(TimeInterval.init).map { min(max($0, 0), 3600) }
        let message = "\(what) answered \(response.status)"
        switch response.status {
        case 401 where text.localizedCaseInsensitiveContains("account locked"):
            return RedtailAPIError(kind: .accountLocked, message: message + " (account locked)")
        case 401 where text.localizedCaseInsensitiveContains("gateway time-out"):
            // Redtail's front end sometimes reports an upstream timeout as 401 (PROVIDERS.md §5.2).
            return RedtailAPIError(kind: .retry(retryAfter: retryAfter), message: message + " (gateway time-out)")
        case 401, 403: return RedtailAPIError(kind: .unauthorized, message: message)
        case 429, 500...599: return RedtailAPIError(kind: .retry(retryAfter: retryAfter), message: message)
        default: return RedtailAPIError(kind: .other(status: response.status), message: message)
        }
    }
}

struct RedtailActivitiesBody: Decodable {
    struct Meta: Decodable {
        var totalRecords: Int?
        var totalPages: Int?
        enum CodingKeys: String, CodingKey {
            case totalRecords = "total_records"
            case totalPages = "total_pages"
        }
    }

    var activities: [RedtailActivity]
    var meta: Meta?
}

/// A Redtail activity (calendar item) as public v1 returns it.
@MemberwiseInit
public struct RedtailActivity: Decodable, Sendable, Hashable {
    /// Activity id.
    public var id: Int64
    /// Title.
    public var subject: String?
    /// Start (ISO 8601).
    public var startDate: String?
    /// End (ISO 8601).
    public var endDate: String?
    /// All-day flag.
    public var allDay: Bool?
    /// Completed flag.
    public var completed: Bool?
    /// 1 Task, 2 Appointment, 3 Phone Call, 4 Unassigned, or custom.
    public var activityCodeID: Int?
    /// Last update (the poller's watermark).
    public var updatedAt: String?

    enum CodingKeys: String, CodingKey {
        case id, subject, completed
        case startDate = "start_date"
        case endDate = "end_date"
        case allDay = "all_day"
        case activityCodeID = "activity_code_id"
        case updatedAt = "updated_at"
    }
}

/// A Redtail activity that cannot become an appointment.
public struct RedtailMappingError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, naming the activity.
    public let description: String
}

/// Activities → appointments.
public enum RedtailActivityMapper {
    /// The appointment for `activity` in `calendarKey`.
    public static func appointment(_ activity: RedtailActivity, calendarKey: String) throws(RedtailMappingError) -> Appointment {
        guard let startText = activity.startDate, let start = parseInstant(startText) else {
            throw RedtailMappingError(description: "activity \(activity.id) has no valid start_date")
        }
        let end = activity.endDate.flatMap(parseInstant) ?? start
        guard end >= start else { throw RedtailMappingError(description: "activity \(activity.id) ends before it starts") }
        let time: AppointmentTime
        if activity.allDay == true {
            let first = String(startText.prefix(10))
            var last = activity.endDate.map { String($0.prefix(10)) } ?? first
            if last <= first { last = String(ISO8601DateFormatter().string(from: start.addingTimeInterval(86_400)).prefix(10)) }
            time = .allDay(startDate: first, endDate: last)
        } else {
            time = .timed(start: start, end: end, timeZone: nil)
        }
        return Appointment(
            source: .redtail, calendarKey: calendarKey, externalID: String(activity.id), title: activity.subject ?? "", time: time,
            status: "confirmed", updatedAt: activity.updatedAt.flatMap(parseInstant)
        )
    }

    /// ISO 8601 with or without fractional seconds; nil when malformed.
    public static func parseInstant(_ text: String) -> Date? {
        RFC3339.parse(text)
    }
}
