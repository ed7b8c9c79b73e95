import Foundation
import GatewayCore
import PostgresNIO

extension PostgresStore: InboxStore {
    // Ids come from a sequence, and sequences are not commit-ordered across sessions: instance B may take id 11 and
    // commit while A still holds uncommitted id 10, so a reader that has seen 11 must not conclude it has seen 10.
    // Each row therefore names its appender (this store's one committer task, which commits batch after batch), whose
    // own rows do commit in id order; readers keep a position per appender (`InboxCursor`). A lock ordering every
    // instance's commits would do it too, but it would also serialize their fsyncs (measured: 3 instances acked a
    // third of what one did).

    /// Most rows in one INSERT statement (9 parameters each; PostgreSQL allows 65,535 per statement).
    static let rowsPerInsert = 1_000

    /// Queues entries for the next group commit and returns at once; `completion` runs on the committer task after
    /// COMMIT (or with the error, and then nothing of the batch is visible).
    public func append(_ entries: [InboxEntry], completion: @escaping @Sendable (Result<[InboxAppendResult], any Error>) -> Void) {
        guard !entries.isEmpty else { return completion(.success([])) }
        let encoded = entries.map { Self.encodeHeaders($0.headers) }
        let accepted = appendQueue.withLock { queue in
            guard !queue.closing else { return false }
            queue.pending.append(PendingAppend(entries: entries, encodedHeaders: encoded, completion: completion))
            return true
        }
        guard accepted else { return completion(.failure(closedError())) }
        committerWake.yield()
    }

    /// The committer: one task, so batches commit one after another (the advisory lock orders them against other
    /// instances). Drains the queue on every wake-up and once more when `close` ends the signal stream.
    func runCommitter(_ signals: AsyncStream<Void>) async {
        for await _ in signals {
            while let batch = nextBatch() { await commit(batch) }
        }
        while let batch = nextBatch() { await commit(batch) }
    }

    /// Takes whole appends off the queue up to `maximumBatchRows` rows (at least one append, however large).
    private func nextBatch() -> [PendingAppend]? {
        appendQueue.withLock { queue in
            var batch: [PendingAppend] = []
            var rows = 0
            while let next = queue.pending.first, batch.isEmpty || rows + next.entries.count <= configuration.maximumBatchRows {
                queue.pending.removeFirst()
                rows += next.entries.count
                batch.append(next)
            }
            return batch.isEmpty ? nil : batch
        }
    }

    private func commit(_ batch: [PendingAppend]) async {
        do {
            let results = try await client.withTransaction(logger: logger) { connection in
                try await self.insert(batch, on: connection)
            }
            let stored = results.reduce(0) { count, appendResults in
                count + appendResults.filter { if case .stored = $0 { true } else { false } }.count
            }
            stats.withLock {
                $0.commits += 1
                $0.appendedRows += stored
            }
            for (pending, result) in zip(batch, results) { pending.completion(.success(result)) }
        } catch {
            // A value PostgreSQL refuses (SQLSTATE class 22, e.g. a NUL character in text) fails the whole batch;
            // retry its appends one by one so only the caller that sent it gets the error, not every webhook that
            // happened to share its transaction.
            if batch.count > 1, PostgresStoreError.sqlState(error)?.hasPrefix("22") == true {
                for pending in batch { await commit([pending]) }
                return
            }
            let failure = Self.failure(error, "appending \(batch.reduce(0) { $0 + $1.entries.count }) rows to inbox")
            logger.error("inbox append failed", metadata: ["error": "\(failure)"])
            for pending in batch { pending.completion(.failure(failure)) }
        }
    }

    /// One row to insert: where its result goes, and the entry.
    private struct Row {
        let append: Int
        let index: Int
        let entry: InboxEntry
        let headers: String
    }

    /// Inserts a batch inside the caller's transaction; returns each append's results.
    private func insert(_ batch: [PendingAppend], on connection: PostgresConnection) async throws -> [[InboxAppendResult]] {
        // A key repeated within the batch is inserted once; the later ones are duplicates of the first.
        var results: [[InboxAppendResult?]] = batch.map { Array(repeating: nil, count: $0.entries.count) }
        var toInsert: [Row] = []
        var firstOfKey: [String: (append: Int, index: Int)] = [:]
        var repeats: [(append: Int, index: Int, first: (append: Int, index: Int))] = []
        for (a, pending) in batch.enumerated() {
            for (i, entry) in pending.entries.enumerated() {
                if let key = entry.dedupeKey {
                    if let first = firstOfKey[key] {
                        repeats.append((a, i, first))
                        continue
                    }
                    firstOfKey[key] = (a, i)
                }
                toInsert.append(Row(append: a, index: i, entry: entry, headers: pending.encodedHeaders[i]))
            }
        }

        var start = 0
        while start < toInsert.count {
            let chunk = toInsert[start..<min(start + Self.rowsPerInsert, toInsert.count)]
            start += chunk.count
            var sql = "INSERT INTO inbox (appender, provider, channel_id, dedupe_key, kind, received_at, headers, body, calendar_key, partition) VALUES "
            var binds = PostgresBindings(capacity: chunk.count * 9 + 1)
            binds.append(appender)
            for (n, row) in chunk.enumerated() {
                let p = n * 9 + 1
                sql += n == 0 ? "" : ", "
                sql += "($1, $\(p + 1), $\(p + 2), $\(p + 3), $\(p + 4), $\(p + 5), $\(p + 6)::jsonb, $\(p + 7), $\(p + 8), $\(p + 9)::int2)"
                binds.append(row.entry.provider.rawValue)
                binds.append(row.entry.channelID)
                binds.append(row.entry.dedupeKey)
                binds.append(row.entry.kind)
                binds.append(Self.ms(row.entry.receivedAt))
                binds.append(row.headers)
                binds.append(ByteBuffer(bytes: row.entry.body))
                binds.append(row.entry.calendarKey)
                binds.append(Int32(row.entry.partition))
            }
            sql += " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key"
            var inserted: [(id: Int64, key: String?)] = []
            for try await (id, key) in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
                .decode((Int64, String?).self)
            {
                inserted.append((id, key))
            }
            // Identity values are drawn in VALUES order, so sorted ids match the rows in order; keyed rows match by key.
            inserted.sort { $0.id < $1.id }
            var idOfKey: [String: Int64] = [:]
            var unkeyed = inserted.filter { $0.key == nil }.map(\.id)[...]
            for row in inserted { if let key = row.key { idOfKey[key] = row.id } }
            var conflicting: [String] = []
            for row in chunk {
                if let key = row.entry.dedupeKey {
                    if let id = idOfKey[key] {
                        results[row.append][row.index] = .stored(id)
                    } else {
                        conflicting.append(key)
                    }
                } else {
                    guard let id = unkeyed.popFirst() else {
                        throw PostgresStoreError(.query, "inbox insert returned fewer ids than rows without a dedupe key")
                    }
                    results[row.append][row.index] = .stored(id)
                }
            }
            if !conflicting.isEmpty {
                var existing: [String: Int64] = [:]
                let rows = try await connection.query("SELECT id, dedupe_key FROM inbox WHERE dedupe_key = ANY(\(conflicting))", logger: logger)
                for try await (id, key) in rows.decode((Int64, String).self) { existing[key] = id }
                for row in chunk {
                    guard let key = row.entry.dedupeKey, idOfKey[key] == nil else { continue }
                    guard let id = existing[key] else {
                        throw PostgresStoreError(.query, "inbox insert was ignored but no duplicate exists")
                    }
                    results[row.append][row.index] = .duplicate(id)
                }
            }
        }
        for repeated in repeats {
            guard let first = results[repeated.first.append][repeated.first.index] else {
                throw PostgresStoreError(.query, "inbox batch lost the result of a repeated dedupe key")
            }
            results[repeated.append][repeated.index] = .duplicate(first.rowID)
        }
        // The payload names the batch's partitions, so only the instances that own one of them read the inbox.
        let partitions = Set(toInsert.map(\.entry.partition)).sorted().map(String.init).joined(separator: ",")
        try await connection.query("SELECT pg_notify('calgate_inbox', \(Self.inboxNotification(sender: instanceID, partitions: partitions)))", logger: logger)
        return try results.map { appendResults in
            try appendResults.map { result in
                guard let result else { throw PostgresStoreError(.query, "inbox batch left an entry without a result") }
                return result
            }
        }
    }

    /// Unprocessed entries past `cursor` (per appender: see the note at the top), oldest first.
    public func pending(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry] {
        let appenders = Array(cursor.positions.keys)
        let positions = appenders.map { cursor.position(of: $0) }
        return try await read("reading inbox") { connection in
            let rows = try await connection.query(
                """
                SELECT id, provider, channel_id, dedupe_key, kind, received_at, headers::text, body, attempts, appender
                FROM inbox i WHERE processed_at IS NULL
                  AND id > coalesce((SELECT c.last FROM unnest(\(appenders)::text[], \(positions)::int8[]) AS c(appender, last)
                                     WHERE c.appender = i.appender), 0)
                ORDER BY id LIMIT \(Int64(max(0, limit)))
                """, logger: logger)
            var result: [StoredInboxEntry] = []
            for try await (id, provider, channelID, dedupeKey, kind, receivedAt, headers, body, attempts, appender)
                in rows.decode((Int64, String, String, String?, String, Date, String, ByteBuffer, Int32, String).self)
            {
                guard let provider = Provider(rawValue: provider) else {
                    throw PostgresStoreError(.decoding, "inbox row \(id): column provider holds unknown provider \"\(provider)\"")
                }
                let entry = InboxEntry(
                    provider: provider, channelID: channelID, dedupeKey: dedupeKey, kind: kind, receivedAt: Self.ms(receivedAt),
                    headers: try Self.decodeHeaders(headers, row: id), body: Self.bytes(body)
                )
                result.append(StoredInboxEntry(id: id, entry: entry, attempts: Int(attempts), appender: appender))
            }
            return result
        }
    }

    /// The rows the scheduler routes: of the headers only the recorded calendar (its column; for rows from before
    /// it existed, extracted from the headers by PostgreSQL), no body.
    public func pendingRoutes(after cursor: InboxCursor, limit: Int) async throws -> [StoredInboxEntry] {
        try await pendingRoutes(after: cursor, limit: limit, partitions: nil)
    }

    /// `pendingRoutes(after:limit:)` of the rows in `partitions` (and rows stored before partitions were recorded).
    public func pendingRoutes(after cursor: InboxCursor, limit: Int, partitions: Set<Int>?) async throws -> [StoredInboxEntry] {
        let appenders = Array(cursor.positions.keys)
        let positions = appenders.map { cursor.position(of: $0) }
        let all = partitions == nil
        let owned = (partitions ?? []).sorted().map { Int32($0) }
        return try await read("reading inbox") { connection in
            let rows = try await connection.query(
                """
                SELECT id, provider, channel_id, kind, received_at, coalesce(calendar_key, headers ->> 'calgate.calendar_key'), appender
                FROM inbox i WHERE processed_at IS NULL
                  AND (\(all) OR partition = ANY(\(owned)::int4[]) OR partition IS NULL)
                  AND id > coalesce((SELECT c.last FROM unnest(\(appenders)::text[], \(positions)::int8[]) AS c(appender, last)
                                     WHERE c.appender = i.appender), 0)
                ORDER BY id LIMIT \(Int64(max(0, limit)))
                """, logger: logger)
            var result: [StoredInboxEntry] = []
            for try await (id, provider, channelID, kind, receivedAt, calendarKey, appender)
                in rows.decode((Int64, String, String, String, Date, String?, String).self)
            {
                guard let provider = Provider(rawValue: provider) else {
                    throw PostgresStoreError(.decoding, "inbox row \(id): column provider holds unknown provider \"\(provider)\"")
                }
                let entry = InboxEntry(
                    provider: provider, channelID: channelID, kind: kind, receivedAt: Self.ms(receivedAt),
                    headers: calendarKey.map { [InboxEntry.calendarKeyHeader: $0] } ?? [:]
                )
                result.append(StoredInboxEntry(id: id, entry: entry, attempts: 0, appender: appender))
            }
            return result
        }
    }

    /// Marks entries processed (the first time wins).
    public func markProcessed(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        let now = Self.ms(Date())
        try await transaction("marking inbox rows processed") { connection in
            try await connection.query(
                "UPDATE inbox SET processed_at = \(now) WHERE id = ANY(\(ids)) AND processed_at IS NULL", logger: logger
            )
        }
    }

    /// Which of `ids` are still unprocessed, in the order given.
    public func unprocessed(_ ids: [Int64]) async throws -> [Int64] {
        guard !ids.isEmpty else { return [] }
        let open = try await read("reading inbox") { connection in
            var open: Set<Int64> = []
            let rows = try await connection.query("SELECT id FROM inbox WHERE id = ANY(\(ids)) AND processed_at IS NULL", logger: logger)
            for try await id in rows.decode(Int64.self) { open.insert(id) }
            return open
        }
        return ids.filter { open.contains($0) }
    }

    /// Count and age of unprocessed entries.
    public func backlog() async throws -> InboxBacklog {
        try await read("reading inbox") { connection in
            let rows = try await connection.query(
                "SELECT COUNT(*), MIN(received_at) FROM inbox WHERE processed_at IS NULL", logger: logger
            )
            for try await (count, oldest) in rows.decode((Int64, Date?).self) {
                return InboxBacklog(count: Int(count), oldestReceivedAt: Self.ms(oldest))
            }
            return InboxBacklog(count: 0, oldestReceivedAt: nil)
        }
    }

    // MARK: Notifications

    /// The `calgate_inbox` payload: the appending instance, a space, the batch's partitions separated by commas.
    static func inboxNotification(sender: String, partitions: String) -> String {
        "\(sender.replacingOccurrences(of: " ", with: "_")) \(partitions)"
    }

    /// Whether a `calgate_inbox` payload concerns an instance owning `owned` (nil: all): true when it names one of
    /// them, or names none (an older instance's payload).
    static func inboxNotification(_ payload: String, concerns owned: Set<Int>?) -> Bool {
        guard let owned else { return true }
        guard let space = payload.firstIndex(of: " ") else { return true }
        for partition in payload[payload.index(after: space)...].split(separator: ",") {
            guard let number = Int(partition) else { return true }
            if owned.contains(number) { return true }
        }
        return false
    }

    // MARK: Headers

    /// The `headers` column: a flat JSON object of strings.
    static func encodeHeaders(_ headers: [String: String]) -> String {
        guard !headers.isEmpty else { return "{}" }
        return String(decoding: JSONValue.object(headers.mapValues { .string($0) }).serialized(), as: UTF8.self)
    }

    static func decodeHeaders(_ text: String, row: Int64) throws -> [String: String] {
        guard case .object(let fields)? = try? JSONValue.parse(Data(text.utf8)) else {
            throw PostgresStoreError(.decoding, "inbox row \(row): column headers is not a JSON object")
        }
        var headers: [String: String] = [:]
        for (name, value) in fields {
            guard case .string(let text) = value else {
                throw PostgresStoreError(.decoding, "inbox row \(row): column headers has a non-string value for \(name)")
            }
            headers[name] = text
        }
        return headers
    }
}
