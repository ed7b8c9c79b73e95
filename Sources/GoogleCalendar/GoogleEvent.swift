import Foundation
import GatewayCore

/// `start` / `end` / `originalStartTime`: a `date` for all-day events, else a `dateTime` with optional zone.
public struct GoogleEventDateTime: Decodable, Sendable, Hashable {
    /// `yyyy-mm-dd` for all-day events.
    public var date: String?
    /// RFC 3339 instant.
    public var dateTime: String?
    /// IANA zone the event was written in.
    public var timeZone: String?

    /// Creates a value.
    public init(date: String?, dateTime: String?, timeZone: String?) {
        self.date = date
        self.dateTime = dateTime
        self.timeZone = timeZone
    }
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
                  let startInstant = parseInstant(startText), let endInstant = parseInstant(endText) {
            time = .timed(start: startInstant, end: endInstant, timeZone: start.timeZone)
        } else {
            throw GoogleAPIError(kind: .badResponse, message: "event \(event.id) has an unreadable start or end")
        }
        return .upsert(Appointment(
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
