import CSQLite
import Foundation
import GatewayCore
import Testing
@testable import SQLiteStore

private func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-sqlite-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private func entry(_ key: String?, channel: String = "ch-1", body: [UInt8] = [], at date: Date = Date()) -> InboxEntry {
    InboxEntry(provider: .google, channelID: channel, dedupeKey: key, kind: "exists", receivedAt: date, headers: [:], body: body)
}

/// Runs SQL on a second, independent connection (what another process would see).
private func rawQueryInt(_ path: String, _ sql: String) -> Int64? {
    var db: OpaquePointer?
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else { return nil }
    defer { sqlite3_close(db) }
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { return nil }
    defer { sqlite3_finalize(statement) }
    guard sqlite3_step(statement) == SQLITE_ROW else { return nil }
    return sqlite3_column_int64(statement, 0)
}

@Suite("SQLite store")
struct SQLiteStoreTests {
    @Test func migratesFromEmpty() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/db.sqlite")
        #expect(try await store.schemaVersion() == SQLiteMigrations.latestVersion)
        #expect(rawQueryInt(dir + "/db.sqlite", "PRAGMA journal_mode = WAL") != nil)
        await store.close()
    }

    @Test(arguments: 1..<SQLiteMigrations.latestVersion)
    func migratesFromEachEarlierVersionKeepingData(version: Int) async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/db.sqlite"
        do {
            let old = try SQLiteDatabase(path: path, busyTimeoutMilliseconds: 1000)
            try SQLiteMigrations.migrate(old, to: version)
            #expect(try SQLiteMigrations.userVersion(old) == version)
            try old.execute(
                """
                INSERT INTO inbox (provider, channel_id, dedupe_key, kind, received_at_ms, headers, body)
                VALUES ('google', 'old-channel', 'old-key', 'sync', 1700000000000, '{}', x'')
                """)
            old.close()
        }
        let store = try SQLiteStore(path: path)
        #expect(try await store.schemaVersion() == SQLiteMigrations.latestVersion)
        let pending = try await store.pending(limit: 10)
        #expect(pending.map(\.entry.dedupeKey) == ["old-key"])
        try await store.checkWritable()
        await store.close()
    }

    @Test func refusesADatabaseFromANewerBuild() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/db.sqlite"
        let db = try SQLiteDatabase(path: path, busyTimeoutMilliseconds: 1000)
        try db.execute("PRAGMA user_version = 999")
        db.close()
        do {
            _ = try SQLiteStore(path: path)
            Issue.record("opened a newer schema")
        } catch {
            #expect("\(error)".contains("newer calgate (schema 999"))
            #expect("\(error)".contains(path))
        }
    }

    @Test func refusesAFileThatIsNotADatabase() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/db.sqlite"
        _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x41, count: 4096))
        do {
            _ = try SQLiteStore(path: path)
            Issue.record("opened a non-database")
        } catch {
            #expect("\(error)".contains(path))
            #expect("\(error)".contains("not a calgate SQLite database"))
        }
    }

    @Test func explainsAMissingDirectory() throws {
        do {
            _ = try SQLiteStore(path: "/nonexistent-calgate-dir/db.sqlite")
            Issue.record("opened in a missing directory")
        } catch {
            #expect("\(error)".contains("/nonexistent-calgate-dir does not exist"))
        }
    }

    @Test func roundTripsEveryField() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/db.sqlite")
        let when = Date(timeIntervalSince1970: 1_800_000_000.123)
        let original = InboxEntry(
            provider: .microsoft, channelID: "sub-1", dedupeKey: "k1", kind: "created", receivedAt: when,
            headers: ["content-type": "application/json", "x-ms-tenant": "t"], body: [0, 1, 2, 255, 0x7B]
        )
        let results = try await store.append([original, entry(nil, channel: "ch-2", at: when.addingTimeInterval(10))])
        #expect(results.count == 2)
        guard case .stored(let firstID) = results[0] else { Issue.record("not stored"); return }
        let pending = try await store.pending(limit: 10)
        #expect(pending.count == 2)
        #expect(pending[0].id == firstID)
        #expect(pending[0].entry == original)
        #expect(pending[0].attempts == 0)
        #expect(pending[1].entry.dedupeKey == nil)
        #expect(pending[1].entry.body == [])
        let backlog = try await store.backlog()
        #expect(backlog.count == 2)
        #expect(backlog.oldestReceivedAt == when)
        try await store.markProcessed([firstID])
        #expect(try await store.pending(limit: 10).count == 1)
        #expect(try await store.backlog().count == 1)
        #expect(try await store.pending(limit: 0).isEmpty)
        await store.close()
    }

    @Test func deduplicatesAcrossCallsAndWithinABatch() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/db.sqlite")
        let first = try await store.append([entry("a"), entry("a"), entry("b")])
        guard case .stored(let a) = first[0], case .duplicate(let dupA) = first[1], case .stored = first[2] else {
            Issue.record("unexpected \(first)")
            return
        }
        #expect(a == dupA)
        let again = try await store.append([entry("a"), entry(nil), entry(nil)])
        #expect(again[0] == .duplicate(a))
        if case .stored(let x) = again[1], case .stored(let y) = again[2] { #expect(x != y) } else { Issue.record("nil keys must never dedupe") }
        #expect(try await store.pending(limit: 100).count == 4)
        #expect(store.statistics.appendedRows == 4)
        await store.close()
    }

    @Test func rowsMarkedProcessedRideInTheNextGroupCommit() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/db.sqlite"
        let store = try SQLiteStore(path: path)
        let stored = try await store.append((0..<6).map { entry("old\($0)") }).compactMap { result -> Int64? in
            if case .stored(let id) = result { return id } else { return nil }
        }
        #expect(stored.count == 6)
        let commitsBefore = store.statistics.commits
        // Hold the database thread, queue two appends and two marks (one id in both), then let it go: one commit.
        let held = Task { try await store.run { _ in Thread.sleep(forTimeInterval: 0.3) } }
        try await Task.sleep(for: .milliseconds(50))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await store.append([entry("new1")]) }
            group.addTask { _ = try await store.append([entry("new2")]) }
            group.addTask { try await store.markProcessed(Array(stored[0..<3])) }
            group.addTask { try await store.markProcessed(Array(stored[2..<4])) }
            try await group.waitForAll()
        }
        try await held.value
        #expect(store.statistics.commits == commitsBefore + 1, "appends and marks in one transaction")
        #expect(rawQueryInt(path, "SELECT COUNT(*) FROM inbox WHERE processed_at_ms IS NOT NULL") == 4)
        #expect(try await store.unprocessed(stored) == Array(stored[4...]))
        // A mark on its own still commits (and an unknown id is no error).
        try await store.markProcessed([stored[4], 999_999])
        #expect(rawQueryInt(path, "SELECT COUNT(*) FROM inbox WHERE processed_at_ms IS NULL") == 3)
        await store.close()
        await #expect(throws: SQLiteStoreError.self) { try await store.markProcessed([stored[5]]) }
    }

    @Test func groupCommitBatchesConcurrentAppends() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/db.sqlite"
        let store = try SQLiteStore(path: path)
        let count = 2_000
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                group.addTask {
                    let result = try await store.append([entry("k\(i)", channel: "ch-\(i % 50)")])
                    guard case .stored = result[0] else { throw SQLiteStoreError(.query, path: path, "not stored") }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - start
        let stats = store.statistics
        #expect(stats.appendedRows == count)
        #expect(stats.commits < count / 4, "\(stats.commits) commits for \(count) appends: no batching")
        // An independent connection sees every acknowledged row.
        #expect(rawQueryInt(path, "SELECT COUNT(*) FROM inbox") == Int64(count))
        print("group commit: \(count) concurrent appends in \(elapsed), \(stats.commits) transactions")
        await store.close()
    }

    @Test func theWALIsCheckpointedInTheBackgroundNotByCommits() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/db.sqlite"
        var configuration = SQLiteStoreConfiguration()
        configuration.checkpointInterval = 0.1
        let store = try SQLiteStore(path: path, configuration: configuration)
        #expect(rawQueryInt(path, "PRAGMA wal_autocheckpoint") == 1000, "another connection keeps the default")
        let sizeBefore = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        for batch in 0..<20 {
            _ = try await store.append((0..<100).map { entry("w\(batch)-\($0)", channel: "ch", body: Array(repeating: 0x61, count: 200)) })
        }
        // The rows reach the database file while the store is open: the background connection checkpointed them.
        let deadline = ContinuousClock.now + .seconds(5)
        var sizeAfter = sizeBefore
        while sizeAfter <= sizeBefore + 100_000, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            sizeAfter = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        }
        #expect(sizeAfter > sizeBefore + 100_000, "database file \(sizeBefore) → \(sizeAfter) bytes")
        await store.close()
        #expect(rawQueryInt(path, "SELECT COUNT(*) FROM inbox") == 2_000)
    }

    @Test func closeFlushesQueuedAppendsAndLaterCallsFail() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/db.sqlite"
        let store = try SQLiteStore(path: path)
        let appends = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<300 {
                    group.addTask { (try? await store.append([entry("c\(i)")])) == nil ? 0 : 1 }
                }
                return try await group.reduce(0, +)
            }
        }
        try await Task.sleep(for: .milliseconds(5))
        await store.close()
        let acknowledged = try await appends.value
        #expect(rawQueryInt(path, "SELECT COUNT(*) FROM inbox") == Int64(acknowledged))
        await #expect(throws: SQLiteStoreError.self) { try await store.append([entry("late")]) }
        await #expect(throws: SQLiteStoreError.self) { try await store.checkWritable() }
        await store.close()  // closing twice is harmless
    }

    @Test func checkWritableFailsWhenAnotherConnectionHoldsTheWriteLock() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/db.sqlite"
        var configuration = SQLiteStoreConfiguration()
        configuration.busyTimeoutMilliseconds = 100
        let store = try SQLiteStore(path: path, configuration: configuration)
        try await store.checkWritable()
        let blocker = try SQLiteDatabase(path: path, busyTimeoutMilliseconds: 100)
        try blocker.execute("BEGIN EXCLUSIVE")
        await #expect(throws: SQLiteStoreError.self) { try await store.checkWritable() }
        try blocker.execute("ROLLBACK")
        blocker.close()
        try await store.checkWritable()
        await store.close()
    }
}

@Suite("SQLite store: Google channels")
struct SQLiteGoogleChannelTests {
    @Test func savesFindsReplacesAndStopsChannels() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/db.sqlite")
        let expires = Date(timeIntervalSince1970: 1_800_000_000.5)
        let channel = StoredGoogleChannel(id: "ch-1", resourceID: "res-1", sealedToken: [1, 2, 3, 0], calendarKey: "c/primary", expiresAt: expires)
        try await store.saveGoogleChannel(channel)
        #expect(try await store.googleChannel(id: "ch-1") == channel)
        #expect(try await store.googleChannel(id: "nope") == nil)
        var renewed = channel
        renewed.expiresAt = expires.addingTimeInterval(3600)
        try await store.saveGoogleChannel(renewed)
        #expect(try await store.googleChannel(id: "ch-1")?.expiresAt == renewed.expiresAt)
        try await store.stopGoogleChannel(id: "ch-1", at: expires)
        #expect(try await store.googleChannel(id: "ch-1")?.stoppedAt == expires)
        await store.close()
    }
}

@Suite("SQLite store: cursors for the console")
struct SQLiteCursorConsoleTests {
    @Test func cursorAgeAndDroppingTheCursorKeepTheAppointments() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/db.sqlite")
        let key = "gc_1/primary"
        #expect(try await store.syncCursorUpdatedAt(calendarKey: key) == nil)
        let before = Date().addingTimeInterval(-1)
        let appointment = Appointment(
            source: .google, calendarKey: key, externalID: "e1", title: "Call",
            time: .timed(start: Date(timeIntervalSince1970: 1_800_000_000), end: Date(timeIntervalSince1970: 1_800_003_600), timeZone: "UTC")
        )
        _ = try await store.applySync(calendarKey: key, changes: [.upsert(appointment)], cursor: "token-1", replaceAll: true)
        let saved = try #require(try await store.syncCursorUpdatedAt(calendarKey: key))
        #expect(saved >= before && saved <= Date().addingTimeInterval(1))
        try await store.dropSyncCursor(calendarKey: key)
        #expect(try await store.syncCursor(calendarKey: key) == nil, "the next sync is a full one")
        #expect(try await store.syncCursorUpdatedAt(calendarKey: key) == nil)
        #expect(try await store.appointments(calendarKey: key).map(\.externalID) == ["e1"], "appointments stay until the full sync replaces them")
        await store.close()
    }
}
