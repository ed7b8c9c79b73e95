import Foundation
import GatewayCore
import Synchronization
import Testing

/// The inbox contract (`InboxStore`), on every backend.
@Suite("Store contract: inbox")
struct InboxContractTests {
    static let awkwardHeaders: [String: String] = [
        "x-goog-resource-uri": "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json",
        "quote\"and\\back": "line\nbreak\ttab\r\u{01}control",
        "unicode": "Zürich – 東京 🗓",
        "empty": "",
    ]

    @Test(arguments: Backend.available)
    func appendRoundTripsEveryField(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let full = InboxEntry(
                provider: .microsoft, channelID: "sub-1", dedupeKey: "graph:abc", kind: "created", receivedAt: date(1_733_000_000.123),
                headers: Self.awkwardHeaders, body: Array(0...255)
            )
            let bare = InboxEntry(provider: .google, channelID: "ch-1", kind: "sync", receivedAt: date(1_733_000_001))
            let redtail = InboxEntry(
                provider: .redtail, channelID: "poll", dedupeKey: nil, kind: "exists", receivedAt: date(1_733_000_002.5),
                headers: ["a": "1"], body: Array("{}".utf8))
            let results = try await store.append([full, bare, redtail])
            #expect(results.count == 3)
            guard case .stored(let first) = results[0], case .stored(let second) = results[1], case .stored(let third) = results[2] else {
                Issue.record("expected three stored rows, got \(results)")
                return
            }
            #expect(first < second && second < third, "ids grow in append order")
            let pending = try await store.pending(limit: 10)
            #expect(pending.map(\.id) == [first, second, third])
            #expect(pending.map(\.entry) == [full, bare, redtail])
            #expect(pending.allSatisfy { $0.attempts == 0 })
            #expect(try await store.append([]) == [])
        }
    }

    @Test(arguments: Backend.available)
    func dedupesAcrossCallsAndWithinABatch(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let at = date(1_733_100_000)
            func entry(_ key: String?, _ kind: String = "exists") -> InboxEntry {
                InboxEntry(provider: .google, channelID: "ch", dedupeKey: key, kind: kind, receivedAt: at)
            }
            let first = try await store.append([entry("k1")])
            guard case .stored(let k1)? = first.first else { Issue.record("k1 not stored: \(first)"); return }
            #expect(try await store.append([entry("k1", "again")]) == [.duplicate(k1)])

            let batch = try await store.append([entry("k2"), entry("k2"), entry(nil), entry(nil), entry("k1"), entry("k3")])
            guard case .stored(let k2) = batch[0], case .stored(let n1) = batch[2], case .stored(let n2) = batch[3],
                case .stored(let k3) = batch[5]
            else {
                Issue.record("unexpected batch results \(batch)")
                return
            }
            #expect(batch[1] == .duplicate(k2), "a repeated key within one call is a duplicate of the first")
            #expect(batch[4] == .duplicate(k1))
            #expect(n1 != n2, "entries without a key never conflict")
            #expect(Set([k1, k2, n1, n2, k3]).count == 5)
            #expect(k2 < n1 && n1 < n2 && n2 < k3)
            let kinds = try await store.pending(limit: 100).map(\.entry.kind)
            #expect(kinds.count == 5)
            #expect(!kinds.contains("again"), "a duplicate writes nothing")
        }
    }

    @Test(arguments: Backend.available)
    func concurrentAppendsAreAllStoredInIdOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let ids = try await withThrowingTaskGroup(of: Int64.self) { group in
                for n in 0..<200 {
                    group.addTask {
                        let key: String? = n % 3 == 0 ? nil : "key-\(n)"
                        let result = try await store.append([
                            InboxEntry(
                                provider: .google, channelID: "ch-\(n)", dedupeKey: key, kind: "exists", receivedAt: date(1_733_200_000 + Double(n))
                            )
                        ])
                        guard case .stored(let id)? = result.first else { throw PostgresTestError.noServer }
                        return id
                    }
                }
                var ids: [Int64] = []
                for try await id in group { ids.append(id) }
                return ids
            }
            #expect(ids.count == 200)
            #expect(Set(ids).count == 200, "distinct ids")
            let pending = try await store.pending(after: .start, limit: 1_000)
            #expect(pending.map(\.id) == ids.sorted())
            #expect(Set(pending.map(\.entry.channelID)).count == 200)
        }
    }

    @Test(arguments: Backend.available)
    func completionAppendRunsOnceAfterCommit(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let entry = InboxEntry(provider: .google, channelID: "cb", dedupeKey: "cb-1", kind: "exists", receivedAt: date(1_733_300_000))
            let result: [InboxAppendResult] = try await withCheckedThrowingContinuation { continuation in
                store.append([entry]) { continuation.resume(with: $0) }
            }
            guard case .stored(let id)? = result.first else { Issue.record("not stored: \(result)"); return }
            // Visible as soon as the completion ran: it runs after COMMIT.
            #expect(try await store.pending(limit: 10).map(\.id) == [id])
            let empty: [InboxAppendResult] = try await withCheckedThrowingContinuation { continuation in
                store.append([]) { continuation.resume(with: $0) }
            }
            #expect(empty.isEmpty)
        }
    }

    @Test(arguments: Backend.available)
    func pendingWatermarkMarkProcessedUnprocessedAndBacklog(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.backlog() == InboxBacklog(count: 0, oldestReceivedAt: nil))
            let entries = (0..<5).map { n in
                InboxEntry(provider: .google, channelID: "ch", dedupeKey: "w-\(n)", kind: "exists", receivedAt: date(1_733_400_000 + Double(10 - n)))
            }
            let ids = try await store.append(entries).map(\.rowID)
            let firstTwo = try await store.pending(after: .start, limit: 2)
            #expect(firstTwo.map(\.id) == Array(ids[..<2]))
            var cursor = InboxCursor.start
            cursor.advance(past: firstTwo)
            #expect(try await store.pending(after: cursor, limit: 10).map(\.id) == Array(ids[2...]))
            cursor.advance(past: try await store.pending(after: cursor, limit: 10))
            #expect(try await store.pending(after: cursor, limit: 10).isEmpty)
            #expect(try await store.pending(after: .start, limit: 0).isEmpty)
            #expect(try await store.backlog() == InboxBacklog(count: 5, oldestReceivedAt: date(1_733_400_006)))

            try await store.markProcessed([ids[0], ids[4]])
            try await store.markProcessed([ids[0]])
            try await store.markProcessed([])
            #expect(try await store.pending(limit: 10).map(\.id) == [ids[1], ids[2], ids[3]])
            #expect(try await store.unprocessed([ids[4], ids[3], ids[0], ids[1], 999_999]) == [ids[3], ids[1]])
            #expect(try await store.unprocessed([]) == [])
            #expect(try await store.backlog() == InboxBacklog(count: 3, oldestReceivedAt: date(1_733_400_007)))
            // A processed key still dedupes.
            #expect(try await store.append([entries[0]]) == [.duplicate(ids[0])])
        }
    }

    @Test(arguments: Backend.available)
    func pendingRoutesCarriesTheRecordedCalendarAndNothingElse(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let named = InboxEntry(
                provider: .google, channelID: "ch-a", dedupeKey: "r-1", kind: "exists", receivedAt: date(1_733_500_000.25),
                headers: Self.awkwardHeaders, body: Array("payload".utf8)
            ).naming(calendar: "gc_1/primary")
            let unnamed = InboxEntry(
                provider: .microsoft, channelID: "sub-b", dedupeKey: "r-2", kind: "updated", receivedAt: date(1_733_500_001), body: [1, 2, 3])
            let ids = try await store.append([named, unnamed]).map(\.rowID)
            let routes = try await store.pendingRoutes(after: .start, limit: 10)
            #expect(routes.map(\.id) == ids)
            #expect(routes.map(\.entry.calendarKey) == ["gc_1/primary", nil])
            #expect(routes.map(\.entry.provider) == [.google, .microsoft])
            #expect(routes.map(\.entry.channelID) == ["ch-a", "sub-b"])
            #expect(routes.map(\.entry.kind) == ["exists", "updated"])
            #expect(routes.map(\.entry.receivedAt) == [named.receivedAt, unnamed.receivedAt])
            #expect(routes.allSatisfy { $0.entry.body.isEmpty && $0.entry.headers.count <= 1 }, "no body, no other header")
            // The same watermark as `pending`.
            var cursor = InboxCursor.start
            cursor.advance(past: Array(routes.prefix(1)))
            #expect(try await store.pendingRoutes(after: cursor, limit: 10).map(\.id) == [ids[1]])
            #expect(try await store.pendingRoutes(after: .start, limit: 1).map(\.id) == [ids[0]])
            try await store.markProcessed([ids[0]])
            #expect(try await store.pendingRoutes(after: .start, limit: 10).map(\.id) == [ids[1]])
        }
    }

    @Test(arguments: Backend.available)
    func markProcessedTakesThousandsOfIdsAtOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let entries = (0..<3_000).map { n in
                InboxEntry(provider: .google, channelID: "ch", dedupeKey: "many-\(n)", kind: "exists", receivedAt: date(1_733_600_000))
            }
            let ids = try await store.append(entries).map(\.rowID)
            try await store.markProcessed(Array(ids.dropLast()))
            #expect(try await store.pending(limit: 10_000).map(\.id) == [ids.last!])
            #expect(try await store.unprocessed(ids.reversed()) == [ids.last!])
            #expect(try await store.backlog().count == 1)
        }
    }

    @Test(arguments: Backend.available)
    func closeFlushesAndLaterAppendsThrow(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.schemaVersion() > 0)
            try await store.checkWritable()
            let results = Mutex<[Result<[InboxAppendResult], any Error>]>([])
            for n in 0..<20 {
                store.append([InboxEntry(provider: .google, channelID: "c", dedupeKey: "close-\(n)", kind: "exists", receivedAt: date(1_733_500_000))]) { result in
                    results.withLock { $0.append(result) }
                }
            }
            await store.close()
            let settled = results.withLock { $0 }
            #expect(settled.count == 20, "close commits everything queued before it")
            #expect(settled.allSatisfy { if case .success = $0 { true } else { false } })
            await #expect(throws: (any Error).self) {
                try await store.append([InboxEntry(provider: .google, channelID: "c", kind: "exists", receivedAt: Date())])
            }
            let late = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                store.append([InboxEntry(provider: .google, channelID: "c", kind: "exists", receivedAt: Date())]) { result in
                    if case .failure = result { continuation.resume(returning: true) } else { continuation.resume(returning: false) }
                }
            }
            #expect(late, "an append after close fails")
        }
    }
}
