import Foundation
import GatewayCore

/// One item of a delta page or a single-event GET: an event (full, or an occurrence stub), or an `@removed` marker.
public struct GraphDeltaItem: Decodable, Sendable, Hashable {
    /// Why an item left the round (`deleted` or `changed`).
    public struct Removed: Decodable, Sendable, Hashable {
        /// The reason Graph gave.
        public var reason: String?
    }

    /// Event id.
    public var id: String
    /// Present when the item was removed.
    public var removed: Removed?
    /// `singleInstance`, `occurrence`, `exception` or `seriesMaster`.
    public var type: String?
    /// Title.
    public var subject: String?
    /// Start (wall clock plus zone).
    public var start: GraphDateTimeTimeZone?
    /// End (exclusive).
    public var end: GraphDateTimeTimeZone?
    /// Whether it is an all-day event.
    public var isAllDay: Bool?
    /// Whether the organizer cancelled it.
    public var isCancelled: Bool?
    /// `free`, `tentative`, `busy`, `oof`, `workingElsewhere`.
    public var showAs: String?
    /// The series pattern of a master.
    public var recurrence: GraphPatternedRecurrence?
    /// For occurrences and exceptions: the master's id.
    public var seriesMasterId: String?
    /// For occurrences and exceptions: the slot's original start (UTC).
    public var originalStart: String?
    /// Last modification.
    public var lastModifiedDateTime: String?
    /// Occurrences removed from a series (`OID.<master id>.<yyyy-mm-dd>`), when Graph sends them.
    public var cancelledOccurrences: [String]?
    /// Attendees (only their addresses are used).
    public var attendees: [Attendee]?
    /// The iCalendar UID.
    public var iCalUId: String?

    /// A Graph attendee: `{"emailAddress": {"address": …}}`.
    public struct Attendee: Decodable, Sendable, Hashable {
        /// The address holder.
        public struct EmailAddress: Decodable, Sendable, Hashable {
            /// The address.
            public var address: String?
        }

        /// The address holder.
        public var emailAddress: EmailAddress?
    }

    enum CodingKeys: String, CodingKey {
        case id, type, subject, start, end, isAllDay, isCancelled, showAs, recurrence, seriesMasterId, originalStart
        case lastModifiedDateTime, cancelledOccurrences, attendees, iCalUId
        case removed = "@removed"
    }

    /// Creates an item.
    public init(
        id: String, removed: Removed? = nil, type: String? = nil, subject: String? = nil, start: GraphDateTimeTimeZone? = nil,
        end: GraphDateTimeTimeZone? = nil, isAllDay: Bool? = nil, isCancelled: Bool? = nil, showAs: String? = nil,
        recurrence: GraphPatternedRecurrence? = nil, seriesMasterId: String? = nil, originalStart: String? = nil,
        lastModifiedDateTime: String? = nil, cancelledOccurrences: [String]? = nil
    ) {
        self.id = id
        self.removed = removed
        self.type = type
        self.subject = subject
        self.start = start
        self.end = end
        self.isAllDay = isAllDay
        self.isCancelled = isCancelled
        self.showAs = showAs
        self.recurrence = recurrence
        self.seriesMasterId = seriesMasterId
        self.originalStart = originalStart
        self.lastModifiedDateTime = lastModifiedDateTime
        self.cancelledOccurrences = cancelledOccurrences
    }

    /// An occurrence stub: only ids and times, the master carries the rest.
    public var isOccurrenceStub: Bool { removed == nil && type == "occurrence" }
}

/// A Graph item that cannot become an appointment.
public struct GraphEventMappingError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, naming the event.
    public let description: String
}

/// Turns delta items into appointment changes (PROVIDERS.md §4.3).
public enum GraphEventMapper {
    /// The changes one item stands for: none for an occurrence stub (its master carries the series), a deletion for
    /// `@removed` and cancelled single events, a cancelled instance for a cancelled exception, otherwise an upsert
    /// (plus cancelled instances for a master's `cancelledOccurrences`).
    public static func changes(for item: GraphDeltaItem, calendarKey: String) throws(GraphEventMappingError) -> [AppointmentChange] {
        guard !item.id.isEmpty, item.id.utf8.count <= 1024 else { throw GraphEventMappingError(description: "an item has an empty or oversized id") }
        if item.removed != nil { return [.delete(externalID: item.id)] }
        if item.isOccurrenceStub { return [] }
        if item.isCancelled == true {
            if let master = item.seriesMasterId, let original = item.originalStart {
                return [.cancelInstance(source: .microsoft, externalID: item.id, seriesID: master, originalStart: original)]
            }
            return [.delete(externalID: item.id)]
        }
        guard let start = item.start, let end = item.end else {
            throw GraphEventMappingError(description: "event \(item.id) has no start or end")
        }
        let time: AppointmentTime
        var zone = "UTC"
        do {
            if item.isAllDay == true {
                let first = try GraphDateTime.wallDate(start)
                var last = try GraphDateTime.wallDate(end)
                if last <= first { last = nextDay(first) ?? first }
                time = .allDay(startDate: first, endDate: last)
                zone = WindowsTimeZones.ianaIdentifier(for: start.timeZone ?? "UTC") ?? "UTC"
            } else {
                let from = try GraphDateTime.instant(start)
                let to = try GraphDateTime.instant(end)
                guard to.date >= from.date else { throw GraphEventMappingError(description: "event \(item.id) ends before it starts") }
                zone = from.zone
                time = .timed(start: from.date, end: to.date, timeZone: from.zone)
            }
        } catch let error as GraphDateTimeError {
            throw GraphEventMappingError(description: "event \(item.id): \(error.description)")
        } catch let error as GraphEventMappingError {
            throw error
        } catch {
            throw GraphEventMappingError(description: "event \(item.id): \(error)")
        }
        var rules: [String] = []
        if item.type == "seriesMaster" || (item.recurrence != nil && item.seriesMasterId == nil) {
            guard let recurrence = item.recurrence else {
                throw GraphEventMappingError(description: "series master \(item.id) has no recurrence")
            }
            do { rules = try GraphRecurrenceConverter.rrule(recurrence, allDay: item.isAllDay == true, fallbackZone: zone) } catch {
                throw GraphEventMappingError(description: "series master \(item.id): \(error.description)")
            }
        }
        var original: String?
        if let text = item.originalStart {
            guard GraphDateTime.parseInstant(text) != nil else {
                throw GraphEventMappingError(description: "event \(item.id) has a malformed originalStart")
            }
            original = text
        }
        let appointment = Appointment(
            source: .microsoft, calendarKey: calendarKey, externalID: item.id, title: item.subject ?? "", time: time,
            status: item.showAs == "tentative" ? "tentative" : "confirmed", recurrence: rules,
            seriesID: item.seriesMasterId, originalStart: original,
            updatedAt: item.lastModifiedDateTime.flatMap(GraphDateTime.parseInstant),
            attendees: (item.attendees ?? []).compactMap { $0.emailAddress?.address?.lowercased() }.filter { !$0.isEmpty },
            iCalUID: item.iCalUId
        )
        var changes: [AppointmentChange] = [.upsert(appointment)]
        for occurrence in item.cancelledOccurrences ?? [] {
            // `OID.<master id>.<yyyy-mm-dd>`: the master id may itself contain dots, the date never does.
            guard let dot = occurrence.lastIndex(of: "."), occurrence.hasPrefix("OID.") else { continue }
            let date = String(occurrence[occurrence.index(after: dot)...])
            guard date.count == 10 else { continue }
            changes.append(.cancelInstance(source: .microsoft, externalID: "\(item.id)#cancelled#\(date)", seriesID: item.id, originalStart: date))
        }
        return changes
    }

    static func nextDay(_ date: String) -> String? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.date(from: date).map { formatter.string(from: $0.addingTimeInterval(86_400)) }
    }
}
