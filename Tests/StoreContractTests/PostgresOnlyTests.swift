import Foundation
import GatewayCore
import Logging
@testable import PostgresStore
import Synchronization
import Testing

/// What only the PostgreSQL store does: several instances on one database (NOTIFY, commit-ordered ids, one
/// migration), refusing newer schemas, and clear errors for bad URLs and unreachable servers.
// Disabled without CALGATE_TEST_POSTGRES_URL unless CALGATE_REQUIRE_POSTGRES=1 (then each test fails, saying why).
@Suite("PostgresStore: several instances", .enabled(if: PostgresTestServer.enabled, "CALGATE_TEST_POSTGRES_URL is not set"))
struct PostgresOnlyTests {
    static func configuration(_ instance: String) -> PostgresStoreConfiguration {
        var configuration = PostgresStoreConfiguration()
        configuration.instanceID = instance
        configuration.maximumConnections = 4
        return configuration
    }

    /// Two stores on one fresh database.
    /// Instance names are unique per test: the cluster is shared by tests running in parallel, and the reconnect
    /// test terminates backends by name.
    func withTwoStores(_ body: (PostgresStore, PostgresStore, String) async throws -> Void) async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        try await withPostgresDatabase { url in
            let a = try await PostgresStore.open(url: url, configuration: Self.configuration("instance-a-\(suffix)"), logger: testLogger)
            let b: PostgresStore
            do {
                b = try await PostgresStore.open(url: url, configuration: Self.configuration("instance-b-\(suffix)"), logger: testLogger)
            } catch {
                await a.close()
                throw error
            }
            do {
                try await body(a, b, url)
            } catch {
                await a.close()
                await b.close()
                throw error
            }
            await a.close()
            await b.close()
        }
    }

    @Test func appendOnOneInstanceWakesTheOther() async throws {
        try await withTwoStores { a, b, _ in
            #expect(a.instanceID.hasPrefix("instance-a-"))
            let woken = Counter()
            let ownWakes = Counter()
            b.onRemoteInboxAppend { woken.increment() }
            a.onRemoteInboxAppend { ownWakes.increment() }
            _ = try await a.append([InboxEntry(provider: .google, channelID: "ch", kind: "exists", receivedAt: Date())])
            #expect(await eventually { woken.value >= 1 }, "B's handler ran within 5 s")
            try await Task.sleep(for: .milliseconds(200))
            #expect(await eventually { ownWakes.value >= 1 }, "an instance's scheduler learns of its own appends the same way")
            #expect(try await b.pending(limit: 10).count == 1)
        }
    }

    @Test func credentialWriteOnOneInstanceBumpsTheOther() async throws {
        try await withTwoStores { a, b, _ in
            let before = b.webhookCredentialsVersion
            try await a.saveGoogleChannel(StoredGoogleChannel(id: "ch", resourceID: "r", sealedToken: [1], calendarKey: "c/k", expiresAt: Date()))
            #expect(await eventually { b.webhookCredentialsVersion > before }, "B's version moved within 5 s")
            let next = b.webhookCredentialsVersion
            try await a.markGraphSubscriptionRemoved(id: "none", at: Date())
            #expect(await eventually { b.webhookCredentialsVersion > next })
        }
    }

    @Test func aCursorReaderSeesEveryRowOnceWhileTwoInstancesAppend() async throws {
        try await withTwoStores { a, b, _ in
            let done = Counter()
            let seen = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for (store, name) in [(a, "a"), (b, "b")] {
                    group.addTask {
                        var ids: [Int64] = []
                        try await withThrowingTaskGroup(of: Int64.self) { appends in
                            for n in 0..<300 {
                                appends.addTask {
                                    try await store.append([
                                        InboxEntry(
                                            provider: .google, channelID: "\(name)-\(n)", dedupeKey: "\(name)-\(n)", kind: "exists", receivedAt: Date()
                                        )
                                    ])[0].rowID
                                }
                            }
                            for try await id in appends { ids.append(id) }
                        }
                        done.increment()
                        return ids
                    }
                }
                // The reader: a scheduler's cursor, which never re-reads what it has passed.
                group.addTask {
                    var cursor = InboxCursor.start
                    var read: [Int64] = []
                    while true {
                        let finished = done.value == 2
                        let rows = try await a.pending(after: cursor, limit: 50)
                        read += rows.map(\.id)
                        cursor.advance(past: rows)
                        if finished && rows.isEmpty { break }
                    }
                    return read.map { -$0 }  // negative: the reader's result
                }
                var appended: [Int64] = []
                var read: [Int64] = []
                for try await ids in group {
                    if ids.first.map({ $0 < 0 }) ?? false { read = ids.map { -$0 } } else { appended += ids }
                }
                return (appended, read)
            }
            #expect(seen.0.count == 600)
            #expect(seen.1.count == seen.0.count && Set(seen.1) == Set(seen.0), "the cursor reader saw every row exactly once")
        }
    }

    @Test func concurrentAppendsShareTransactions() async throws {
        try await withStore(.postgres) { store in
            let postgres = try #require(store as? PostgresStore)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<300 {
                    group.addTask {
                        _ = try await postgres.append([InboxEntry(provider: .google, channelID: "g\(n)", kind: "exists", receivedAt: Date())])
                    }
                }
                try await group.waitForAll()
            }
            let statistics = postgres.statistics
            #expect(statistics.appendedRows == 300)
            #expect(statistics.commits < 300, "group commit puts concurrent appends into shared transactions (\(statistics.commits) commits)")
        }
    }

    @Test func concurrentOpensMigrateOnce() async throws {
        try await withPostgresDatabase { url in
            let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
                for n in 0..<3 { group.addTask { try await PostgresStore.open(url: url, configuration: Self.configuration("m\(n)"), logger: testLogger) } }
                var stores: [PostgresStore] = []
                for try await store in group { stores.append(store) }
                return stores
            }
            for store in stores {
                #expect(try await store.schemaVersion() == PostgresMigrations.latestVersion)
                await store.close()
            }
            let rows = try await PostgresAdmin.execute(url: url, ["SELECT COUNT(*)::text FROM schema_migrations"])
            #expect(rows == String(PostgresMigrations.all.count))
        }
    }

    @Test func refusesADatabaseFromANewerCalgate() async throws {
        try await withPostgresDatabase { url in
            let store = try await PostgresStore.open(url: url, logger: testLogger)
            await store.close()
            try await PostgresAdmin.execute(url: url, ["INSERT INTO schema_migrations (version) VALUES (\(PostgresMigrations.latestVersion + 1))"])
            do {
                let newer = try await PostgresStore.open(url: url, logger: testLogger)
                await newer.close()
                Issue.record("opened a database with a newer schema")
            } catch let error as PostgresStoreError {
                #expect(error.code == .newerSchema)
                #expect(error.description.contains("newer calgate"), "\(error)")
            }
        }
    }

    @Test func workLogKeepsReleasedRecords() async throws {
        try await withTwoStores { a, b, _ in
            #expect(try await a.workLeases.claimLease("sync:x", owner: a.instanceID, duration: 30))
            #expect(try await b.workLeases.claimLease("sync:x", owner: b.instanceID, duration: 30) == false, "the other instance is refused")
            let record = WorkRecord(kind: "sync", startedAt: date(1_733_900_000.5), inboxRows: [4, 5], outcome: "ok")
            try await a.workLeases.releaseLease("sync:x", owner: a.instanceID, record: record)
            #expect(try await b.workLeases.claimLease("sync:x", owner: b.instanceID, duration: 30))
            let log = try await b.workLog()
            #expect(log.count == 1)
            #expect(log.first?.record == record)
            #expect(log.first?.key == "sync:x" && log.first?.owner == a.instanceID)
        }
    }

    @Test func listenerReconnectsAndReportsPossiblyMissedNotifications() async throws {
        try await withTwoStores { a, b, url in
            let woken = Counter()
            b.onRemoteInboxAppend { woken.increment() }
            let before = b.webhookCredentialsVersion
            try await PostgresAdmin.execute(
                url: url,
                [
                    "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE application_name = 'calgate-listen \(b.instanceID)'"
                ])
            #expect(await eventually(within: 10) { b.webhookCredentialsVersion > before && woken.value >= 1 }, "after a reconnect both fire once")
            // And it listens again.
            let count = woken.value
            _ = try await a.append([InboxEntry(provider: .google, channelID: "ch", kind: "exists", receivedAt: Date())])
            #expect(await eventually { woken.value > count })
        }
    }
}

/// Opening with bad URLs or an unreachable server: clear errors, no password, bounded time. Needs no server.
@Suite("PostgresStore: connection errors")
struct PostgresConnectionErrorTests {
    static let password = "s3cr3t-P4ss"

    @Test(arguments: [
        ("mysql://user:\(password)@127.0.0.1:5432/db", "scheme"),
        ("postgres://user:\(password)@/db", "host"),
        ("postgres://user:\(password)@127.0.0.1:99999/db", "port"),
        ("postgres://user:\(password)@127.0.0.1:abc/db", "port"),
        ("postgres://user:\(password)@127.0.0.1:5432", "database"),
        ("postgres://user:\(password)@127.0.0.1:5432/", "database"),
        ("postgres://127.0.0.1:5432/db", "user"),
        ("postgres://user:\(password)@127.0.0.1/db?sslmode=bogus", "sslmode"),
        ("127.0.0.1:5432/db", "scheme"),
    ])
    func badURLsSayWhatIsWrong(_ url: String, _ part: String) async throws {
        do {
            let store = try await PostgresStore.open(url: url, logger: testLogger)
            await store.close()
            Issue.record("opened \(part)-less URL")
        } catch let error as PostgresStoreError {
            #expect(error.code == .invalidURL)
            #expect(error.description.contains(part), "\(error)")
            #expect(!error.description.contains(Self.password), "never the password")
        }
    }

    @Test func parsesTheParts() throws {
        let url = try PostgresURL(parsing: "postgresql://us%40er:p%2Fw%3A@db.example.com:6543/my%20db?sslmode=require")
        #expect(url.user == "us@er")
        #expect(url.password == "p/w:")
        #expect(url.host == "db.example.com")
        #expect(url.port == 6543)
        #expect(url.database == "my db")
        #expect(url.sslMode == .require)
        let local = try PostgresURL(parsing: "postgres://calgate@[::1]/calgate")
        #expect(local.host == "::1" && local.port == 5432 && local.password == nil && local.sslMode == .disable)
        #expect(local.endpoint == "[::1]:5432")
    }

    @Test func unreachableServerFailsQuickly() async throws {
        let start = ContinuousClock.now
        do {
            let store = try await PostgresStore.open(url: "postgres://calgate:\(Self.password)@127.0.0.1:1/calgate", logger: testLogger)
            await store.close()
            Issue.record("connected to port 1")
        } catch let error as PostgresStoreError {
            #expect(error.code == .connect)
            #expect(error.description.contains("127.0.0.1:1"), "\(error)")
            #expect(!error.description.contains(Self.password))
        }
        #expect(ContinuousClock.now - start < .seconds(10))
    }
}

/// A thread-safe counter for handlers.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

/// A value PostgreSQL refuses fails only the append that carried it, and nothing of it is stored.
@Suite("PostgresStore: failed appends", .enabled(if: PostgresTestServer.enabled, "CALGATE_TEST_POSTGRES_URL is not set"))
struct PostgresFailedAppendTests {
    @Test func aRefusedValueFailsOnlyItsOwnAppend() async throws {
        try await withStore(.postgres) { store in
            let poisoned = [
                InboxEntry(provider: .google, channelID: "fine", dedupeKey: "p-1", kind: "exists", receivedAt: Date()),
                InboxEntry(provider: .google, channelID: "nul\u{0}inside", dedupeKey: "p-2", kind: "exists", receivedAt: Date()),
            ]
            await #expect(throws: PostgresStoreError.self, "text with NUL is refused") { try await store.append(poisoned) }
            let visible = try await store.pending(limit: 10)
            #expect(visible.isEmpty, "nothing of a failed append is visible")

            // Concurrent appends that may share the poisoned one's batch still commit.
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for n in 0..<30 {
                    group.addTask {
                        let channel = n == 15 ? "bad\u{0}" : "ok-\(n)"
                        let result = try? await store.append([InboxEntry(provider: .google, channelID: channel, kind: "exists", receivedAt: Date())])
                        return result != nil
                    }
                }
                var outcomes: [Bool] = []
                for await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            #expect(outcomes.filter { $0 }.count == 29)
            let stored = try await store.pending(limit: 100)
            #expect(stored.count == 29)
        }
    }
}
