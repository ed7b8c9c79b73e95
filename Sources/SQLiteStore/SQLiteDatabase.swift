import CSQLite
import Foundation

/// One SQLite connection with a statement cache.
///
/// Not thread-safe by design (opened `SQLITE_OPEN_NOMUTEX`): `SQLiteStore` confines each instance to its own
/// dedicated thread, which is why this type is `@unchecked Sendable` only for handing it to that thread.
final class SQLiteDatabase: @unchecked Sendable {
    let path: String
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    init(path: String, busyTimeoutMilliseconds: Int32) throws {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let reason = db.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(rc)"
            sqlite3_close_v2(db)
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
                throw SQLiteStoreError(.open, path: path, "cannot open the database: directory \(directory) does not exist (create it or change data_dir)")
            }
            throw SQLiteStoreError(.open, path: path, "cannot open the database (\(reason)); check the path and its permissions")
        }
        handle = db
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
        sqlite3_extended_result_codes(db, 1)
    }

    deinit { close() }

    /// Finalizes every statement and closes the connection.
    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    var isOpen: Bool { handle != nil }

    private func db() throws -> OpaquePointer {
        guard let handle else { throw SQLiteStoreError(.closed, path: path, "the store is closed") }
        return handle
    }

    func errorMessage() -> String {
        handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed"
    }

    /// Runs one or more statements without results.
    func execute(_ sql: String) throws {
        let db = try db()
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? errorMessage()
            sqlite3_free(error)
            throw failure(rc, message)
        }
    }

    func failure(_ rc: Int32, _ message: String) -> SQLiteStoreError {
        let primary = rc & 0xFF
        if primary == SQLITE_NOTADB {
            return SQLiteStoreError(.notADatabase, path: path, "is not a calgate SQLite database (\(message)); move it away or point database elsewhere")
        }
        return SQLiteStoreError(.query, path: path, "\(message) (SQLite code \(rc))")
    }

    /// A cached prepared statement, reset and cleared for reuse.
    func prepare(_ sql: String) throws -> SQLiteStatement {
        let db = try db()
        if let cached = statements[sql] {
            sqlite3_reset(cached)
            sqlite3_clear_bindings(cached)
            return SQLiteStatement(handle: cached, database: self)
        }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw failure(rc, errorMessage()) }
        statements[sql] = statement
        return SQLiteStatement(handle: statement, database: self)
    }

    /// Runs `body` in `BEGIN IMMEDIATE … COMMIT`, rolling back when it throws or the commit fails.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    var lastInsertRowID: Int64 { handle.map { sqlite3_last_insert_rowid($0) } ?? 0 }
    var changes: Int32 { handle.map { sqlite3_changes($0) } ?? 0 }
}

/// A prepared statement borrowed from the cache for one execution.
struct SQLiteStatement {
    let handle: OpaquePointer
    unowned let database: SQLiteDatabase

    func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    func bind(_ index: Int32, _ value: String?) {
        if let value { sqlite3_bind_text(handle, index, value, -1, calgate_sqlite_transient()) } else { sqlite3_bind_null(handle, index) }
    }

    func bind(_ index: Int32, blob: [UInt8]) {
        // A zero-length blob still binds as a blob, not NULL (the column is NOT NULL).
        guard !blob.isEmpty else {
            sqlite3_bind_zeroblob(handle, index, 0)
            return
        }
        _ = blob.withUnsafeBytes { raw in
            sqlite3_bind_blob(handle, index, raw.baseAddress, Int32(raw.count), calgate_sqlite_transient())
        }
    }

    /// Steps once; true while a row is available.
    func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw database.failure(rc, database.errorMessage())
        }
    }

    /// Steps to completion, ignoring rows.
    func run() throws {
        while try step() {}
        sqlite3_reset(handle)
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func string(_ column: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, column) else { return nil }
        return String(cString: text)
    }
    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let pointer = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// What `SQLiteDatabase.run(_:_:)` binds: text and integers, and NULL for a nil one.
protocol SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32)
}

extension String: SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) { statement.bind(index, self) }
}

extension Int64: SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) { statement.bind(index, self) }
}

extension Optional: SQLiteBindable where Wrapped: SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) {
        if let value = self { value.bind(to: statement, at: index) } else { statement.bindNull(index) }
    }
}

extension SQLiteStatement {
    func bindNull(_ index: Int32) { sqlite3_bind_null(handle, index) }
}

extension SQLiteDatabase {
    /// Prepares `sql` (from the statement cache), binds `values` to its parameters in order and steps it to
    /// completion; returns how many rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: any SQLiteBindable...) throws -> Int32 {
        let statement = try prepare(sql)
        for (offset, value) in values.enumerated() { value.bind(to: statement, at: Int32(offset + 1)) }
        try statement.run()
        return changes
    }
}

extension SQLiteDatabase {
    /// The first row of `sql` with `values` bound to its parameters, as `read` makes it; nil when there is none.
    func first<T>(_ sql: String, _ values: any SQLiteBindable..., read: (SQLiteStatement) throws -> T) throws -> T? {
        let statement = try prepare(sql)
        for (offset, value) in values.enumerated() { value.bind(to: statement, at: Int32(offset + 1)) }
        guard try statement.step() else { return nil }
        let row = try read(statement)
        try statement.run()
        return row
    }
}
