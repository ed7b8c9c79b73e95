import PostgresNIO

/// A PostgreSQL store failure, in words an operator can act on. Never carries the connection password: URL errors
/// name the part that is wrong, server errors carry the server's message, not the URL.
public struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure it is.
    public enum Code: Sendable, Hashable {
        /// The connection URL is malformed.
        case invalidURL
        /// The server could not be reached or refused the connection.
        case connect
        /// The database was migrated by a newer calgate.
        case newerSchema
        /// A migration failed.
        case migration
        /// A statement failed.
        case query
        /// A row held a NULL or a value of the wrong type where the store expects something else.
        case decoding
        /// The store is closed.
        case closed
        /// A row the write needs does not exist.
        case notFound
    }

    /// What kind of failure it is.
    public let code: Code
    /// What went wrong.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// True when the store was already closed.
    public var isClosed: Bool { code == .closed }

    /// `postgres: message`.
    public var description: String { "postgres: \(message)" }

    /// Wraps a postgres-nio error with what the store was doing. postgres-nio's own `description` is deliberately
    /// generic, so this pulls out the server's SQLSTATE and message, or the connection failure underneath.
    static func wrap(_ error: any Error, _ doing: String, code: Code = .query) -> any Error {
        if error is PostgresStoreError || error is CancellationError { return error }
        return PostgresStoreError(code, "\(doing): \(reason(error))")
    }

    /// A short reason for a postgres-nio error (server message and SQLSTATE, or the socket error).
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as PostgresStoreError:
            return error.message
        case let error as PSQLError:
            if let server = error.serverInfo {
                let message = server[.message] ?? "server error"
                let state = server[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                let detail = server[.detail].map { "; \($0)" } ?? ""
                return message + state + detail
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        case let error as PostgresTransactionError:
            if let closure = error.closureError { return reason(closure) }
            if let begin = error.beginError { return "BEGIN failed: " + reason(begin) }
            if let commit = error.commitError { return "COMMIT failed: " + reason(commit) }
            if let rollback = error.rollbackError { return "ROLLBACK failed: " + reason(rollback) }
            return "transaction failed"
        case let error as PostgresDecodingError:
            return "column \(error.columnName) (type \(error.postgresType)) cannot be read as \(error.targetType): \(error.code)"
        default:
            return "\(error)"
        }
    }

    /// The SQLSTATE of a server error, if `error` is one (through a transaction error).
    static func sqlState(_ error: any Error) -> String? {
        switch error {
        case let error as PSQLError: return error.serverInfo?[.sqlState]
        case let error as PostgresTransactionError: return error.closureError.flatMap(sqlState)
        default: return nil
        }
    }
}
