import Synchronization

/// Which calendar a Google channel or Graph subscription watches, remembered: that never changes for an id, and the
/// scheduler asks for every inbox row (on PostgreSQL every instance reads every row, and a store read per row was
/// most of the scheduler's cost). Bounded: when full it starts again rather than track recency (ids are a few per
/// connected calendar).
public final class CalendarKeyCache: Sendable {
    private let entries = Mutex<[String: String]>([:])
    private let capacity: Int

    /// Creates an empty cache of at most `capacity` ids.
    public init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// The calendar of `id`: remembered, or read once with `load` (nil, an unknown id, is not remembered).
    public func calendarKey(of id: String, load: () async throws -> String?) async rethrows -> String? {
        if let known = entries.withLock({ $0[id] }) { return known }
        guard let key = try await load() else { return nil }
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[id] = key
        }
        return key
    }
}
