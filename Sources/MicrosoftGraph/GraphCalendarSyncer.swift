import Foundation
import GatewayCore

/// One calendar's delta round: follow `nextLink` to the `deltaLink`, then apply every page and store the new
/// `deltaLink` in one transaction (PROVIDERS.md §4.2). A 410, `syncStateNotFound` or `resyncRequired` answer drops
/// the link and runs a full round that replaces the calendar's imported appointments.
public struct GraphCalendarSyncer: Sendable {
    /// What a round did.
    public struct Outcome: Sendable, Hashable {
        /// Pages fetched.
        public var pages: Int
        /// Changes applied.
        public var changes: Int
        /// Whether it was a full (re-)sync.
        public var fullSync: Bool
        /// Series masters fetched because only their occurrence stubs were in the round.
        public var mastersFetched: Int
    }

    /// Rounds longer than this many pages are refused as runaway.
    public static let maximumPages = 10_000

    let client: GraphClient
    let store: any AppointmentStore
    let pageSize: Int
    let window: ClosedRange<Date>
    /// Where full rounds report how far they have come.
    let progress: SyncProgressBoard?

    /// Creates a syncer; `window` bounds the first round (Graph encodes it into the links that follow).
    public init(client: GraphClient, store: any AppointmentStore, pageSize: Int = 100, window: ClosedRange<Date>, progress: SyncProgressBoard? = nil) {
        self.client = client
        self.store = store
        self.pageSize = pageSize
        self.window = window
        self.progress = progress
    }

    /// Syncs `calendarID` into `calendarKey`, incrementally from the stored delta link when there is one.
    public func sync(calendarKey: String, calendarID: String, _ auth: GraphAuthorization) async throws -> Outcome {
        let cursor = try await store.syncCursor(calendarKey: calendarKey)
        do {
            return try await round(calendarKey: calendarKey, calendarID: calendarID, auth, deltaLink: cursor)
        } catch let error as GraphAPIError where error.kind == .resyncRequired && cursor != nil {
            return try await round(calendarKey: calendarKey, calendarID: calendarID, auth, deltaLink: nil)
        }
    }

    private func round(calendarKey: String, calendarID: String, _ auth: GraphAuthorization, deltaLink: String?) async throws -> Outcome {
        // Only full rounds are long enough to be worth watching.
        let progress = deltaLink == nil ? self.progress : nil
        progress?.started(calendarKey: calendarKey)
        do {
            return try await fetchAndApply(calendarKey: calendarKey, calendarID: calendarID, auth, deltaLink: deltaLink, progress: progress)
        } catch {
            progress?.failed(calendarKey: calendarKey)
            throw error
        }
    }

    private func fetchAndApply(
        calendarKey: String, calendarID: String, _ auth: GraphAuthorization, deltaLink: String?, progress: SyncProgressBoard?
    ) async throws -> Outcome {
        var url = deltaLink ?? client.initialEventsDeltaURL(calendarID: calendarID, window: window)
        var changes: [AppointmentChange] = []
        var upserted: Set<String> = []
        var stubMasters: [String] = []
        var pages = 0
        while true {
            try Task.checkCancellation()
            pages += 1
            guard pages <= Self.maximumPages else {
                throw GraphAPIError(kind: .badResponse, message: "delta round for \(calendarKey) exceeded \(Self.maximumPages) pages")
            }
            let page = try await client.deltaPage(url, auth, pageSize: pageSize)
            for item in page.items {
                if item.isOccurrenceStub, let master = item.seriesMasterId { stubMasters.append(master) }
                let mapped: [AppointmentChange]
                do { mapped = try GraphEventMapper.changes(for: item, calendarKey: calendarKey) } catch {
                    throw GraphAPIError(kind: .badResponse, message: error.description)
                }
                for change in mapped { if case .upsert(let appointment) = change { upserted.insert(appointment.externalID) } }
                changes += mapped
            }
            progress?.pageFetched(calendarKey: calendarKey, changes: page.items.count)
            if let next = page.nextLink {
                url = next
                continue
            }
            guard let newDeltaLink = page.deltaLink else { throw GraphAPIError(kind: .badResponse, message: "delta page without links") }
            let fetched = try await fetchMasters(stubMasters, known: upserted, calendarKey: calendarKey, calendarID: calendarID, full: deltaLink == nil, auth)
            changes += fetched
            progress?.applying(calendarKey: calendarKey, changes: changes.count)
            _ = try await store.applySync(calendarKey: calendarKey, changes: changes, cursor: newDeltaLink, replaceAll: deltaLink == nil)
            progress?.finished(calendarKey: calendarKey, applied: changes.count)
            return Outcome(pages: pages, changes: changes.count, fullSync: deltaLink == nil, mastersFetched: fetched.count)
        }
    }

    /// calendarView-style rounds name series only through occurrence stubs: fetch each master not already in the
    /// round or the store (PROVIDERS.md §4.3), calendar-scoped so shared calendars work too.
    private func fetchMasters(
        _ masters: [String], known: Set<String>, calendarKey: String, calendarID: String, full: Bool, _ auth: GraphAuthorization
    ) async throws -> [AppointmentChange] {
        var missing = Set(masters).subtracting(known)
        guard !missing.isEmpty else { return [] }
        if !full {
            let stored = Set(try await store.appointments(calendarKey: calendarKey).map(\.externalID))
            missing.subtract(stored)
        }
        var changes: [AppointmentChange] = []
        for master in missing.sorted() {
            guard let item = try await client.event(calendarID: calendarID, eventID: master, auth) else { continue }
            do { changes += try GraphEventMapper.changes(for: item, calendarKey: calendarKey) } catch {
                throw GraphAPIError(kind: .badResponse, message: error.description)
            }
        }
        return changes
    }
}
