import Foundation
import GatewayCore
import Logging
import SQLiteStore
import Synchronization
import SyncEngine
import Testing

/// The scheduler reads each inbox row once, past a watermark: a backlog of rows waiting on a long sync never hides
/// newer rows for other calendars.
@Suite("Scheduler inbox reading")
struct SchedulerInboxTests {
    /// Blocks calendar `slow` until released; records every sync start.
    final class GatedProvider: ProviderSyncing {
        let provider = Provider.google
        let started = Mutex<[String]>([])
        let released = Mutex(false)

        func calendarKey(for entry: StoredInboxEntry) async throws -> String? { entry.entry.channelID }

        func sync(calendarKey: String) async throws -> SyncOutcome {
            started.withLock { $0.append(calendarKey) }
            if calendarKey == "conn-a/slow" {
                while !released.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
            }
            return .nothing
        }
    }

    static func entry(_ calendar: String, _ number: Int) -> InboxEntry {
        InboxEntry(provider: .google, channelID: calendar, dedupeKey: "\(calendar):\(number)", kind: "exists", receivedAt: Date())
    }

    @Test func aBacklogOnOneCalendarDoesNotHideNewRowsForAnother() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-sched-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: directory + "/s.sqlite")
        let provider = GatedProvider()
        var configuration = SyncScheduler.Configuration()
        configuration.window = 0.05
        configuration.tick = .milliseconds(10)
        let scheduler = SyncScheduler(store: store, providers: [provider], configuration: configuration, logger: Logger(label: "test"))
        let run = Task { try await scheduler.run() }
        _ = try await store.append([Self.entry("conn-a/slow", 0)])
        let deadline = ContinuousClock.now + .seconds(10)
        while provider.started.withLock({ $0.isEmpty }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        // While the slow sync runs, 2,500 more rows for it pile up (more than one page of the inbox).
        _ = try await store.append((1...2_500).map { Self.entry("conn-a/slow", $0) })
        try await Task.sleep(for: .milliseconds(200))
        _ = try await store.append([Self.entry("conn-b/fast", 1)])
        while !provider.started.withLock({ $0.contains("conn-b/fast") }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(provider.started.withLock { $0 } == ["conn-a/slow", "conn-b/fast"], "the new calendar's row was read behind the backlog")
        provider.released.withLock { $0 = true }
        // The backlog is covered by one more sync of the slow calendar, then everything is processed.
        while try await store.backlog().count > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await store.backlog().count == 0)
        #expect(provider.started.withLock { $0.filter { $0 == "conn-a/slow" }.count } == 2)
        run.cancel()
        _ = try? await run.value
        await store.close()
    }

    /// Counts the inbox calls the scheduler makes.
    final class CountingInbox: InboxStore {
        let base: SQLiteStore
        let calls = Mutex<[String: Int]>([:])
        let markedPerCall = Mutex<[Int]>([])
        init(base: SQLiteStore) { self.base = base }
        private func count(_ name: String) { calls.withLock { $0[name, default: 0] += 1 } }
        func append(_ entries: [InboxEntry], completion: @escaping @Sendable (Result<[InboxAppendResult], any Error>) -> Void) {
            base.append(entries, completion: completion)
        }
        func pending(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry] {
            count("pending")
            return try await base.pending(after: cursor, limit: limit)
        }
        func pendingRoutes(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry] {
            count("pendingRoutes")
            return try await base.pendingRoutes(after: cursor, limit: limit)
        }
        func markProcessed(_ ids: [Int64]) async throws {
            count("markProcessed")
            markedPerCall.withLock { $0.append(ids.count) }
            try await base.markProcessed(ids)
        }
        func unprocessed(_ ids: [Int64]) async throws -> [Int64] {
            count("unprocessed")
            return try await base.unprocessed(ids)
        }
        func backlog() async throws -> InboxBacklog { try await base.backlog() }
    }

    /// Maps rows by the calendar verification recorded; remembers whether any row came with more than that.
    final class RecordedCalendarProvider: ProviderSyncing {
        let provider = Provider.google
        let synced = Mutex<[String]>([])
        let sawPayload = Mutex(false)
        func calendarKey(for entry: StoredInboxEntry) async throws -> String? {
            if !entry.entry.body.isEmpty || entry.entry.headers.count > 1 { sawPayload.withLock { $0 = true } }
            return entry.entry.calendarKey
        }
        func sync(calendarKey: String) async throws -> SyncOutcome {
            synced.withLock { $0.append(calendarKey) }
            return .nothing
        }
    }

    @Test func aBacklogIsRoutedFromRecordedCalendarsAndMarkedOncePerSync() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-sched-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let base = try SQLiteStore(path: directory + "/s.sqlite")
        let store = CountingInbox(base: base)
        let calendars = ["conn-a/one", "conn-a/two", "conn-b/three"]
        // 4,500 rows (several pages) with headers and a body the scheduler never needs.
        _ = try await base.append(
            (0..<4_500).map { n in
                InboxEntry(
                    provider: .google, channelID: "channel", dedupeKey: "row-\(n)", kind: "exists", receivedAt: Date(),
                    headers: ["x-goog-message-number": "\(n)"], body: Array("body".utf8)
                ).naming(calendar: calendars[n % 3])
            })
        let provider = RecordedCalendarProvider()
        var configuration = SyncScheduler.Configuration()
        configuration.window = 0.05
        configuration.tick = .milliseconds(10)
        let activity = GatewayActivity(recentLimit: 5)
        let scheduler = SyncScheduler(store: store, providers: [provider], configuration: configuration, activity: activity, logger: Logger(label: "test"))
        let run = Task { try await scheduler.run() }
        let deadline = ContinuousClock.now + .seconds(20)
        while try await base.backlog().count > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        run.cancel()
        _ = try? await run.value
        #expect(try await base.backlog().count == 0)
        #expect(Set(provider.synced.withLock { $0 }) == Set(calendars))
        #expect(!provider.sawPayload.withLock { $0 }, "rows reach the scheduler without headers or body")
        let calls = store.calls.withLock { $0 }
        #expect(calls["pending", default: 0] == 0)
        #expect(calls["markProcessed", default: 0] == provider.synced.withLock { $0.count }, "one mark per sync")
        #expect(store.markedPerCall.withLock { $0.reduce(0, +) } == 4_500)
        await base.close()
    }

    /// An inbox that filters `pendingRoutes` by partition as PostgreSQL does, and counts the rows it returned.
    final class PartitionedInbox: InboxStore {
        let base: SQLiteStore
        let rowsRead = Mutex(0)
        init(base: SQLiteStore) { self.base = base }
        func append(_ entries: [InboxEntry], completion: @escaping @Sendable (Result<[InboxAppendResult], any Error>) -> Void) {
            base.append(entries, completion: completion)
        }
        func pending(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry] { try await base.pending(after: cursor, limit: limit) }
        func pendingRoutes(after cursor: InboxCursor, limit: Int, partitions: Set<Int>?) async throws -> [StoredInboxEntry] {
            let rows = try await base.pendingRoutes(after: cursor, limit: limit).filter { partitions?.contains($0.entry.partition) ?? true }
            rowsRead.withLock { $0 += rows.count }
            return rows
        }
        func markProcessed(_ ids: [Int64]) async throws { try await base.markProcessed(ids) }
        func unprocessed(_ ids: [Int64]) async throws -> [Int64] { try await base.unprocessed(ids) }
        func backlog() async throws -> InboxBacklog { try await base.backlog() }
    }

    /// Local claims with partitions owned as the test says.
    final class PartitionedLeases: WorkLeasing {
        let local = LocalWorkLeases()
        let partitions: PartitionOwnership
        init(partitions: PartitionOwnership) { self.partitions = partitions }
        var isShared: Bool { false }
        var owner: String { "test" }
        func claimLease(_ key: String, owner: String, duration: TimeInterval) async throws -> Bool {
            try await local.claimLease(key, owner: owner, duration: duration)
        }
        func releaseLease(_ key: String, owner: String, record: WorkRecord?) async throws {
            try await local.releaseLease(key, owner: owner, record: record)
        }
    }

    /// Reads and syncs only the owned partitions' calendars; a gained partition's rows are read from the start and
    /// synced once; a lost partition's new rows are left to their new owner.
    @Test func onlyOwnedPartitionsAreReadAndAGainedOneIsReadFromTheStart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-sched-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let base = try SQLiteStore(path: directory + "/s.sqlite")
        let store = PartitionedInbox(base: base)
        // Two calendars in different partitions.
        let mine = "conn-a/one"
        let other = (0..<100).map { "conn-b/cal\($0)" }.first { Partitions.partition(of: $0) != Partitions.partition(of: mine) }!
        let ownership = PartitionOwnership(all: false)
        ownership.update([Partitions.partition(of: mine)])
        let provider = RecordedCalendarProvider()
        var configuration = SyncScheduler.Configuration()
        configuration.window = 0.05
        configuration.tick = .milliseconds(10)
        let scheduler = SyncScheduler(
            store: store, leases: PartitionedLeases(partitions: ownership), providers: [provider], configuration: configuration, logger: Logger(label: "test"))
        func rows(_ calendar: String, _ range: Range<Int>) -> [InboxEntry] {
            range.map { InboxEntry(provider: .google, channelID: "ch", dedupeKey: "\(calendar):\($0)", kind: "exists", receivedAt: Date()).naming(calendar: calendar) }
        }
        _ = try await base.append(rows(mine, 0..<10) + rows(other, 0..<10))
        let run = Task { try await scheduler.run() }
        let deadline = ContinuousClock.now + .seconds(20)
        while try await base.backlog().count > 10, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(provider.synced.withLock { $0 } == [mine])
        #expect(try await base.backlog().count == 10, "the other partition's rows wait for their owner")
        #expect(store.rowsRead.withLock { $0 } == 10, "only the owned partition's rows were read")
        // The other partition is gained: its rows are read from the start and synced.
        ownership.update([Partitions.partition(of: mine), Partitions.partition(of: other)])
        while try await base.backlog().count > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await base.backlog().count == 0)
        #expect(provider.synced.withLock { $0 } == [mine, other], "the gained calendar synced once; the owned one not again")
        // The first partition is lost: its new rows are not synced here.
        ownership.update([Partitions.partition(of: other)])
        try await Task.sleep(for: .milliseconds(100))
        _ = try await base.append(rows(mine, 10..<15))
        try await Task.sleep(for: .milliseconds(500))
        #expect(provider.synced.withLock { $0 } == [mine, other])
        #expect(try await base.backlog().count == 5)
        run.cancel()
        _ = try? await run.value
        await base.close()
    }
}
