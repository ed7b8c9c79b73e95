import CalgateMacros
import Foundation

/// A series' occurrences in a window, without those its exceptions replace (moved, edited or cancelled instances
/// come as their own rows, named by their original start).
public enum SeriesExpansion {
    /// One occurrence.
    public struct Occurrence: Sendable, Hashable {
        /// When it happens.
        public var time: AppointmentTime
        /// The slot it fills (its identity within the series).
        public var originalStart: Date
    }

    /// Expands a series whose first instance is `time` under `recurrence`, skipping the slots `exceptions` name.
    public static func occurrences(
        time: AppointmentTime, recurrence: [String], exceptions: [Appointment], from: Date, to: Date, limit: Int = 2000
    ) throws(RecurrenceError) -> [Occurrence] {
        let start: Date, duration: TimeInterval, zone: String, allDay: Bool
        switch time {
        case .timed(let first, let end, let timeZone):
            (start, duration, zone, allDay) = (first, end.timeIntervalSince(first), timeZone ?? "UTC", false)
        case .allDay(let startDate, let endDate):
            guard let first = day(startDate) else { throw RecurrenceError(description: "series start date \(startDate) is not a date") }
            let last = day(endDate) ?? first.addingTimeInterval(86_400)
            (start, duration, zone, allDay) = (first, max(86_400, last.timeIntervalSince(first)), "UTC", true)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: allDay ? "UTC" : zone) ?? TimeZone(identifier: "UTC")!
        var replacedInstants: Set<Double> = []
        var replacedDays: Set<String> = []
        for exception in exceptions {
            guard let original = exception.originalStart else { continue }
            if original.count == 10 {
                replacedDays.insert(original)
            } else if let instant = RFC3339.parse(original) {
                replacedInstants.insert(instant.timeIntervalSince1970.rounded())
            }
        }
        let starts = try RecurrenceExpander.occurrences(
            rules: recurrence, start: start, duration: duration, timeZone: zone, allDay: allDay, from: from, to: to, limit: limit
        )
        return starts.compactMap { occurrence in
            if replacedInstants.contains(occurrence.timeIntervalSince1970.rounded()) { return nil }
            let parts = calendar.dateComponents([.year, .month, .day], from: occurrence)
            let local = String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
            if replacedDays.contains(local) { return nil }
            if allDay {
                let end = occurrence.addingTimeInterval(duration)
                let endParts = calendar.dateComponents([.year, .month, .day], from: end)
                let endDay = String(format: "%04d-%02d-%02d", endParts.year ?? 0, endParts.month ?? 0, endParts.day ?? 0)
                return Occurrence(time: .allDay(startDate: local, endDate: endDay), originalStart: occurrence)
            }
            return Occurrence(time: .timed(start: occurrence, end: occurrence.addingTimeInterval(duration), timeZone: zone), originalStart: occurrence)
        }
    }

    static func day(_ text: String) -> Date? {
        guard text.count == 10 else { return nil }
        return RFC3339.parse(text + "T00:00:00Z")
    }
}

/// Recognises the same meeting arriving through two connected sources (e.g. an invitation in both a Google and a
/// Microsoft calendar): same start and end instant (time zones normalised), same title (case and spacing
/// ignored), and overlapping attendees when both sides list any. calgate never copies between providers; it only
/// shows such a meeting once.
public enum DuplicateDetector {
    /// What a listed appointment is compared on.
    @MemberwiseInit
    public struct Candidate: Sendable, Hashable {
        /// Start instant.
        public var start: Date
        /// End instant.
        public var end: Date
        /// Title.
        public var title: String
        /// Attendee addresses.
        public var attendees: Set<String>
        /// Where it came from (items of one connection are never duplicates of each other).
        public var origin: String
    }

    /// For each candidate, the index of the earlier candidate it duplicates (nil when it is the first of its kind).
    public static func duplicates(of candidates: [Candidate?]) -> [Int?] {
        var result: [Int?] = Array(repeating: nil, count: candidates.count)
        var groups: [String: [Int]] = [:]
        for (index, candidate) in candidates.enumerated() {
            guard let candidate else { continue }
            let key = "\(candidate.start.timeIntervalSince1970.rounded())|\(candidate.end.timeIntervalSince1970.rounded())|\(normalise(candidate.title))"
            if let match = groups[key, default: []].first(where: { earlier in
                guard let other = candidates[earlier], other.origin != candidate.origin else { return false }
                return other.attendees.isEmpty || candidate.attendees.isEmpty || !other.attendees.isDisjoint(with: candidate.attendees)
            }) {
                result[index] = match
            } else {
                groups[key, default: []].append(index)
            }
        }
        return result
    }

    /// Lower-cased, trimmed, inner whitespace collapsed.
    public static func normalise(_ title: String) -> String {
        title.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}
