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
}
