import CalgateMacros
import Foundation
import GatewayCore

/// `start` / `end` / `originalStartTime`: a `date` for all-day events, else a `dateTime` with optional zone.
@MemberwiseInit
public struct GoogleEventDateTime: Decodable, Sendable, Hashable {
    /// `yyyy-mm-dd` for all-day events.
    public var date: String?
    /// RFC 3339 instant.
    public var dateTime: String?
    /// IANA zone the event was written in.
    public var timeZone: String?
}

/// The fields of a Calendar `Event` that sync uses.
public struct GoogleEvent: Decodable, Sendable, Hashable {
    /// Event id.
    public var id: String
    /// `confirmed`, `tentative` or `cancelled`.
    public var status: String?
    /// Title.
    public var summary: String?
    /// Start.
    public var start: GoogleEventDateTime?
    /// End (exclusive).
    public var end: GoogleEventDateTime?
    /// RRULE/EXDATE lines of a series master.
    public var recurrence: [String]?
    /// For an instance or exception: the master's id.
    public var recurringEventId: String?
    /// For an instance or exception: the slot it was scheduled in.
    public var originalStartTime: GoogleEventDateTime?
    /// Last modification (RFC 3339).
    public var updated: String?
    /// Attendees (only their addresses are used).
    public var attendees: [Attendee]?
    /// The iCalendar UID.
    public var iCalUID: String?
    /// Extended properties; calgate reads `private.calgateId` (set on events it pushed).
    public var extendedProperties: ExtendedProperties?

    /// `extendedProperties`.
    public struct ExtendedProperties: Decodable, Sendable, Hashable {
        /// Properties private to the app that set them.
        public var `private`: [String: String]?
    }

    /// An attendee.
    public struct Attendee: Decodable, Sendable, Hashable {
        /// E-mail address.
        public var email: String?
    }

    /// Creates an event.
    public init(
        id: String, status: String?, summary: String?, start: GoogleEventDateTime?, end: GoogleEventDateTime?,
        recurrence: [String]?, recurringEventId: String?, originalStartTime: GoogleEventDateTime?, updated: String?
    ) {
        self.id = id
        self.status = status
        self.summary = summary
        self.start = start
        self.end = end
        self.recurrence = recurrence
        self.recurringEventId = recurringEventId
        self.originalStartTime = originalStartTime
        self.updated = updated
    }
}

/// One `events.list` page: exactly one of `nextPageToken` and `nextSyncToken` is present.
public struct GoogleEventsPage: Decodable, Sendable {
    /// The page's items (possibly none even when more pages follow).
    public var items: [GoogleEvent]
    /// More pages follow.
    public var nextPageToken: String?
    /// The last page: the cursor for the next incremental sync.
    public var nextSyncToken: String?

    enum CodingKeys: String, CodingKey { case items, nextPageToken, nextSyncToken }

    /// Decodes a page; a missing `items` is an empty page.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        items = try container.decodeIfPresent([GoogleEvent].self, forKey: .items) ?? []
        nextPageToken = try container.decodeIfPresent(String.self, forKey: .nextPageToken)
        nextSyncToken = try container.decodeIfPresent(String.self, forKey: .nextSyncToken)
    }
}

extension GoogleEventsPage {
    /// Reads a page from `JSONValue.parse`'s tree: the fields sync uses, each checked for its JSON type (a field of the
    /// wrong type is an error, as it was with `JSONDecoder`; unknown fields are ignored). Decoding through
    /// `JSONDecoder` cost ~28 µs per event, most of a full sync.
    public init(json: JSONValue) throws(GoogleEventDecodingError) {
        guard case .object(let page) = json else { throw GoogleEventDecodingError("the page is not an object") }
        let reader = GoogleEventFields(page, path: "page")
        nextPageToken = try reader.string("nextPageToken")
        nextSyncToken = try reader.string("nextSyncToken")
        switch page["items"] {
        case nil, .null?:
            items = []
        case .array(let values)?:
            items = []
            items.reserveCapacity(values.count)
            for (index, value) in values.enumerated() {
                items.append(try GoogleEvent(json: value, path: "items[\(index)]"))
            }
        case .some:
            throw GoogleEventDecodingError("items must be an array")
        }
    }
}

extension GoogleEvent {
    /// Reads one event (see `GoogleEventsPage.init(json:)`).
    init(json: JSONValue, path: String) throws(GoogleEventDecodingError) {
        guard case .object(let fields) = json else { throw GoogleEventDecodingError("\(path) is not an object") }
        let reader = GoogleEventFields(fields, path: path)
        guard let id = try reader.string("id") else { throw GoogleEventDecodingError("\(path).id is missing") }
        self.init(
            id: id, status: try reader.string("status"), summary: try reader.string("summary"),
            start: try reader.dateTime("start"), end: try reader.dateTime("end"), recurrence: try reader.strings("recurrence"),
            recurringEventId: try reader.string("recurringEventId"), originalStartTime: try reader.dateTime("originalStartTime"),
            updated: try reader.string("updated")
        )
        iCalUID = try reader.string("iCalUID")
        switch fields["attendees"] {
        case nil, .null?:
            attendees = nil
        case .array(let values)?:
            var list: [Attendee] = []
            for (index, value) in values.enumerated() {
                guard case .object(let attendee) = value else { throw GoogleEventDecodingError("\(path).attendees[\(index)] is not an object") }
                list.append(Attendee(email: try GoogleEventFields(attendee, path: "\(path).attendees[\(index)]").string("email")))
            }
            attendees = list
        case .some:
            throw GoogleEventDecodingError("\(path).attendees must be an array")
        }
        switch fields["extendedProperties"] {
        case nil, .null?:
            extendedProperties = nil
        case .object(let properties)?:
            switch properties["private"] {
            case nil, .null?:
                extendedProperties = ExtendedProperties(private: nil)
            case .object(let values)?:
                var strings: [String: String] = [:]
                for (key, value) in values {
                    guard case .string(let text) = value else {
                        throw GoogleEventDecodingError("\(path).extendedProperties.private.\(key) must be a string")
                    }
                    strings[key] = text
                }
                extendedProperties = ExtendedProperties(private: strings)
            case .some:
                throw GoogleEventDecodingError("\(path).extendedProperties.private must be an object")
            }
        case .some:
            throw GoogleEventDecodingError("\(path).extendedProperties must be an object")
        }
    }
}

/// A Google response that does not have the shape sync needs.
public struct GoogleEventDecodingError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, naming the field.
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Typed access to one JSON object's fields, naming the field in errors.
private struct GoogleEventFields {
    let fields: [String: JSONValue]
    let path: String

    init(_ fields: [String: JSONValue], path: String) {
        self.fields = fields
        self.path = path
    }

    func string(_ key: String) throws(GoogleEventDecodingError) -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case .some: throw GoogleEventDecodingError("\(path).\(key) must be a string")
        }
    }

    func strings(_ key: String) throws(GoogleEventDecodingError) -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .array(let values)?:
            var out: [String] = []
            for value in values {
                guard case .string(let text) = value else { throw GoogleEventDecodingError("\(path).\(key) must hold strings") }
                out.append(text)
            }
            return out
        case .some: throw GoogleEventDecodingError("\(path).\(key) must be an array")
        }
    }

    func dateTime(_ key: String) throws(GoogleEventDecodingError) -> GoogleEventDateTime? {
        switch fields[key] {
        case nil, .null?: return nil
        case .object(let inner)?:
            let reader = GoogleEventFields(inner, path: "\(path).\(key)")
            return GoogleEventDateTime(date: try reader.string("date"), dateTime: try reader.string("dateTime"), timeZone: try reader.string("timeZone"))
        case .some: throw GoogleEventDecodingError("\(path).\(key) must be an object")
        }
    }
}

/// Turns Google events into appointment changes (PROVIDERS.md §2.3–2.5).
public enum GoogleEventMapper {
    /// The change one event carries for `calendarKey`.
    public static func change(for event: GoogleEvent, calendarKey: String) throws(GoogleAPIError) -> AppointmentChange {
        if event.status == "cancelled" {
            // A cancelled instance of a live series keeps a tombstone so expansion skips that slot; any other
            // cancelled item is a deletion.
            if let series = event.recurringEventId, let original = event.originalStartTime.flatMap({ $0.dateTime ?? $0.date }) {
                return .cancelInstance(source: .google, externalID: event.id, seriesID: series, originalStart: original)
            }
            return .delete(externalID: event.id)
        }
        guard let start = event.start, let end = event.end else {
            throw GoogleAPIError(kind: .badResponse, message: "event \(event.id) has no start or end")
        }
        let time: AppointmentTime
        if let startDate = start.date {
            time = .allDay(startDate: startDate, endDate: end.date ?? startDate)
        } else if let startText = start.dateTime, let endText = end.dateTime,
            let startInstant = parseInstant(startText), let endInstant = parseInstant(endText)
        {
            time = .timed(start: startInstant, end: endInstant, timeZone: start.timeZone)
        } else {
            throw GoogleAPIError(kind: .badResponse, message: "event \(event.id) has an unreadable start or end")
        }
        return .upsert(
            Appointment(
                source: .google, calendarKey: calendarKey, externalID: event.id, title: event.summary ?? "",
                time: time, status: event.status ?? "confirmed", recurrence: event.recurrence ?? [],
                seriesID: event.recurringEventId, originalStart: event.originalStartTime.flatMap { $0.dateTime ?? $0.date },
                updatedAt: event.updated.flatMap(parseInstant),
                attendees: (event.attendees ?? []).compactMap { $0.email?.lowercased() }.filter { !$0.isEmpty },
                iCalUID: event.iCalUID, pushedFrom: event.extendedProperties?.private?["calgateId"]
            ))
    }

    /// RFC 3339 with or without fractional seconds.
    public static func parseInstant(_ text: String) -> Date? {
        RFC3339.parse(text)
    }
}
