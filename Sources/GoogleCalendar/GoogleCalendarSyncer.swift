import Foundation
import GatewayCore

/// One calendar's delta sync: every page to the new sync token, applied with the token in one transaction.
public struct GoogleCalendarSyncer: Sendable {
    /// What a sync did.
    public struct Outcome: Sendable, Hashable {
        /// Pages fetched.
        public var pages: Int
        /// Changes applied.
        public var changes: Int
        /// Whether it was a full (re-)sync.
        public var fullSync: Bool
    }

    let client: GoogleCalendarClient
    let store: any AppointmentStore
    let pageSize: Int
    /// Where full syncs report how far they have come.
    let progress: SyncProgressBoard?

    /// Creates a syncer.
    public init(client: GoogleCalendarClient, store: any AppointmentStore, pageSize: Int = 250, progress: SyncProgressBoard? = nil) {
        self.client = client
        self.store = store
        self.pageSize = pageSize
        self.progress = progress
    }

    /// Syncs `calendarID` into `calendarKey`: incremental from the stored token, or full when there is none or
    /// Google answers 410 (then the calendar's imported appointments are replaced).
    public func sync(calendarKey: String, calendarID: String, accessToken: String) async throws -> Outcome {
        let cursor = try await store.syncCursor(calendarKey: calendarKey)
        do {
            return try await run(calendarKey: calendarKey, calendarID: calendarID, accessToken: accessToken, syncToken: cursor)
        } catch let error as GoogleAPIError where error.kind == .fullSyncRequired && cursor != nil {
            return try await run(calendarKey: calendarKey, calendarID: calendarID, accessToken: accessToken, syncToken: nil)
        }
    }

    private func run(calendarKey: String, calendarID: String, accessToken: String, syncToken: String?) async throws -> Outcome {
        // Only full syncs are long enough to be worth watching.
        let progress = syncToken == nil ? self.progress : nil
        progress?.started(calendarKey: calendarKey)
        do {
            return try await fetchAndApply(calendarKey: calendarKey, calendarID: calendarID, accessToken: accessToken, syncToken: syncToken, progress: progress)
        } catch {
            progress?.failed(calendarKey: calendarKey)
            throw error
        }
    }

    private func fetchAndApply(
        calendarKey: String, calendarID: String, accessToken: String, syncToken: String?, progress: SyncProgressBoard?
    ) async throws -> Outcome {
        var changes: [AppointmentChange] = []
        var pageToken: String?
        var pages = 0
        while true {
            try Task.checkCancellation()
            let page = try await client.listEvents(
                calendarID: calendarID, accessToken: accessToken, syncToken: syncToken, pageToken: pageToken, maxResults: pageSize
            )
            pages += 1
            for event in page.items {
                changes.append(try GoogleEventMapper.change(for: event, calendarKey: calendarKey))
            }
            progress?.pageFetched(calendarKey: calendarKey, changes: page.items.count)
            if let next = page.nextSyncToken {
                progress?.applying(calendarKey: calendarKey, changes: changes.count)
                _ = try await store.applySync(calendarKey: calendarKey, changes: changes, cursor: next, replaceAll: syncToken == nil)
                progress?.finished(calendarKey: calendarKey, applied: changes.count)
                return Outcome(pages: pages, changes: changes.count, fullSync: syncToken == nil)
            }
            pageToken = page.nextPageToken
        }
    }
}
