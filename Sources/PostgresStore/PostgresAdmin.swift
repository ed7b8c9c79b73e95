import Logging
import PostgresNIO

/// One-off statements on a single connection, outside any store: creating and dropping test databases, and the
/// tests' look behind the store (who is connected, what `schema_migrations` holds).
enum PostgresAdmin {
    /// Runs `statements` one by one (outside a transaction, so `CREATE DATABASE` works); returns the first column of
    /// the last statement's first row as text, if any.
    @discardableResult
    static func execute(url text: String, _ statements: [String], logger: Logger = Logger(label: "calgate.postgres.admin")) async throws -> String? {
        let url = try PostgresURL(parsing: text)
        let configuration = try PostgresStore.connectionConfiguration(url, instanceID: "admin")
        let connection = try await PostgresListener.connect(configuration, url: url, logger: logger)
        do {
            var last: String?
            for statement in statements {
                last = nil
                let rows = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                for try await row in rows {
                    if last == nil, let cell = row.first { last = try? cell.decode(String?.self) ?? "NULL" }
                }
            }
            try? await connection.close()
            return last
        } catch {
            try? await connection.close()
            throw PostgresStoreError.wrap(error, "running admin statements on \(url.endpoint)")
        }
    }
}
