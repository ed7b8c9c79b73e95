import Logging
import PostgresNIO

/// One-off statements on a single connection, outside any store: creating and dropping test databases, and the
/// tests' look behind the store (who is connected, what `schema_migrations` holds, databases at an older schema).
enum PostgresAdmin {
    /// Migrates the database at `url` to `target` and no further, as a store of the build that stopped there would
    /// have: the migration tests build an older schema this way, fill it, then open it with the current store.
    static func migrate(url text: String, to target: Int, logger: Logger = Logger(label: "calgate.postgres.admin")) async throws {
        let url = try PostgresURL(parsing: text)
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: try PostgresStore.clientTLS(url)
        )
        configuration.options.maximumConnections = 1
        configuration.options.connectTimeout = .seconds(5)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let runTask = Task { await client.run() }
        do {
            try await withTimeout(seconds: 60, "migrating \(url.endpoint)/\(url.database) to version \(target)") {
                try await PostgresMigrations.migrate(client, to: target, logger: logger)
            }
        } catch {
            runTask.cancel()
            await runTask.value
            throw error
        }
        runTask.cancel()
        await runTask.value
    }

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
