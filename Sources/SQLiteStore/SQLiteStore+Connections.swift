import Foundation
import GatewayCore

extension SQLiteStore: ConnectionStore {
    /// Inserts a connection; an existing id is an error.
    public func createConnection(_ connection: Connection, credentials: SealedCredentials) async throws {
        try await run { database in
            try database.transaction {
                let statement = try database.prepare(
                    """
                    INSERT INTO connections (id, user_id, provider, state, state_reason, created_at_ms, client_id,
                        sealed_client_secret, sealed_refresh_token, account_type, account_id, visibility)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
                statement.bind(1, connection.id)
                statement.bind(2, connection.userID)
                statement.bind(3, connection.provider.rawValue)
                statement.bind(4, connection.state.rawValue)
                statement.bind(5, connection.stateReason)
                statement.bind(6, Self.milliseconds(connection.createdAt))
                statement.bind(7, credentials.clientID)
                statement.bind(8, blob: credentials.sealedClientSecret)
                statement.bind(9, blob: credentials.sealedRefreshToken)
                statement.bind(10, connection.accountType)
                statement.bind(11, connection.accountID)
                statement.bind(12, connection.visibility.rawValue)
                try statement.run()
            }
        }
    }

    /// One connection.
    public func connection(id: String) async throws -> Connection? {
        try await run { database in
            try database.first(Self.connectionColumns + " WHERE id = ?", id) { statement in
                Self.readConnection(statement)
            }
        }
    }

    /// All connections, or one user's, oldest first.
    public func connections(userID: String?) async throws -> [Connection] {
        try await run { database in
            let statement: SQLiteStatement
            if let userID {
                statement = try database.prepare(Self.connectionColumns + " WHERE user_id = ? ORDER BY created_at_ms, id")
                statement.bind(1, userID)
            } else {
                statement = try database.prepare(Self.connectionColumns + " ORDER BY created_at_ms, id")
            }
            var rows: [Connection] = []
            while try statement.step() { rows.append(Self.readConnection(statement)) }
            return rows
        }
    }

    /// Sealed credentials.
    public func credentials(connectionID: String) async throws -> SealedCredentials? {
        try await run { database in
            try database.first("SELECT client_id, sealed_client_secret, sealed_refresh_token FROM connections WHERE id = ?", connectionID) { statement in
                SealedCredentials(
                    clientID: statement.string(0) ?? "", sealedClientSecret: statement.blob(1), sealedRefreshToken: statement.blob(2)
                )
            }
        }
    }

    /// Replaces the sealed credentials.
    public func updateCredentials(connectionID: String, _ credentials: SealedCredentials) async throws {
        try await run { database in
            let statement = try database.prepare(
                "UPDATE connections SET client_id = ?, sealed_client_secret = ?, sealed_refresh_token = ? WHERE id = ?"
            )
            statement.bind(1, credentials.clientID)
            statement.bind(2, blob: credentials.sealedClientSecret)
            statement.bind(3, blob: credentials.sealedRefreshToken)
            statement.bind(4, connectionID)
            try statement.run()
            guard database.changes == 1 else { throw SQLiteStoreError(.notFound, path: database.path, "connection \(connectionID) does not exist") }
        }
    }

    /// Changes the visibility.
    public func setConnectionVisibility(id: String, _ visibility: Connection.Visibility) async throws {
        try await run { database in
            try database.run("UPDATE connections SET visibility = ? WHERE id = ?", visibility.rawValue, id)
        }
    }

    /// Sets the account.
    public func setConnectionAccount(id: String, accountID: String) async throws {
        try await run { database in
            try database.run("UPDATE connections SET account_id = ? WHERE id = ?", accountID, id)
        }
    }

    /// Stores the health fields.
    public func setConnectionHealth(id: String, _ health: ConnectionHealth) async throws {
        try await run { database in
            try database.run("UPDATE connections SET state = ?, state_reason = ?, next_retry_at_ms = ?, failing_since_ms = ? WHERE id = ?", health.state.rawValue, health.reason, health.nextRetryAt.map(Self.milliseconds), health.failingSince.map(Self.milliseconds), id)
        }
    }

    /// Sets the sync state.
    public func setConnectionState(id: String, state: Connection.State, reason: String?) async throws {
        try await run { database in
            try database.run("UPDATE connections SET state = ?, state_reason = ?, next_retry_at_ms = NULL, failing_since_ms = NULL WHERE id = ?", state.rawValue, reason, id)
        }
    }

    /// Replaces the calendar list.
    public func saveCalendars(connectionID: String, _ calendars: [ConnectionCalendar]) async throws {
        try await run { database in
            try database.transaction {
                try database.run("DELETE FROM connection_calendars WHERE connection_id = ?", connectionID)
                for calendar in calendars {
                    try database.run("INSERT INTO connection_calendars (connection_id, calendar_id, name, selected) VALUES (?, ?, ?, ?)", connectionID, calendar.calendarID, calendar.name, Int64(calendar.selected ? 1 : 0))
                }
            }
        }
    }

    /// The calendars, by id.
    public func calendars(connectionID: String) async throws -> [ConnectionCalendar] {
        try await run { database in
            let statement = try database.prepare(
                "SELECT calendar_id, name, selected FROM connection_calendars WHERE connection_id = ? ORDER BY calendar_id"
            )
            statement.bind(1, connectionID)
            var rows: [ConnectionCalendar] = []
            while try statement.step() {
                rows.append(
                    ConnectionCalendar(
                        connectionID: connectionID, calendarID: statement.string(0) ?? "", name: statement.string(1) ?? "",
                        selected: statement.int64(2) != 0
                    ))
            }
            return rows
        }
    }

    static let connectionColumns = """
        SELECT id, user_id, provider, state, state_reason, created_at_ms, next_retry_at_ms, failing_since_ms, account_type,
               account_id, visibility FROM connections
        """

    static func readConnection(_ statement: SQLiteStatement) -> Connection {
        Connection(
            id: statement.string(0) ?? "", userID: statement.string(1) ?? "",
            provider: Provider(rawValue: statement.string(2) ?? "") ?? .google,
            state: Connection.State(rawValue: statement.string(3) ?? "") ?? .needsReconnect,
            stateReason: statement.isNull(4) ? nil : statement.string(4),
            createdAt: date(statement.int64(5)),
            nextRetryAt: statement.isNull(6) ? nil : date(statement.int64(6)),
            failingSince: statement.isNull(7) ? nil : date(statement.int64(7)),
            accountType: statement.isNull(8) ? nil : statement.string(8),
            accountID: statement.isNull(9) ? nil : statement.string(9),
            visibility: Connection.Visibility(rawValue: statement.string(10) ?? "") ?? .onlyMe
        )
    }
}
