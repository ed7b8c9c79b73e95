import Foundation
import GatewayCore
import PostgresNIO

extension PostgresStore: ConnectionStore {
    /// Inserts a connection; an existing id is an error.
    public func createConnection(_ connection: Connection, credentials: SealedCredentials) async throws {
        try await transaction("inserting connections row \(connection.id)") { db in
            try await db.query(
                """
                INSERT INTO connections (id, user_id, provider, state, state_reason, created_at, client_id,
                    sealed_client_secret, sealed_refresh_token, account_type, account_id, visibility)
                VALUES (\(connection.id), \(connection.userID), \(connection.provider.rawValue), \(connection.state.rawValue),
                    \(connection.stateReason), \(Self.ms(connection.createdAt)), \(credentials.clientID),
                    \(ByteBuffer(bytes: credentials.sealedClientSecret)), \(ByteBuffer(bytes: credentials.sealedRefreshToken)),
                    \(connection.accountType), \(connection.accountID), \(connection.visibility.rawValue))
                """, logger: logger)
        }
    }

    /// One connection.
    public func connection(id: String) async throws -> Connection? {
        try await readConnections("WHERE id = \(id)").first
    }

    /// All connections, or one user's, oldest first.
    public func connections(userID: String?) async throws -> [Connection] {
        if let userID {
            return try await readConnections("WHERE user_id = \(userID) ORDER BY created_at, id COLLATE \"C\"")
        }
        return try await readConnections("ORDER BY created_at, id COLLATE \"C\"")
    }

    private func readConnections(_ filter: PostgresQuery) async throws -> [Connection] {
        var query = filter
        query.sql = """
            SELECT id, user_id, provider, state, state_reason, created_at, next_retry_at, failing_since, account_type,
                   account_id, visibility FROM connections
            """ + " " + query.sql
        return try await read("reading connections") { db in
            var rows: [Connection] = []
            for try await (id, userID, provider, state, reason, createdAt, nextRetryAt, failingSince, accountType, accountID, visibility)
                in try await db.query(query, logger: logger)
                .decode((String, String, String, String, String?, Date, Date?, Date?, String?, String?, String).self)
            {
                // Unknown enum values read as SQLiteStore reads them: a provider defaults to google, a state to
                // needs_reconnect (sync stops rather than running on a state it does not know), visibility to only_me.
                rows.append(
                    Connection(
                        id: id, userID: userID, provider: Provider(rawValue: provider) ?? .google,
                        state: Connection.State(rawValue: state) ?? .needsReconnect, stateReason: reason,
                        createdAt: Self.ms(createdAt), nextRetryAt: Self.ms(nextRetryAt), failingSince: Self.ms(failingSince),
                        accountType: accountType, accountID: accountID,
                        visibility: Connection.Visibility(rawValue: visibility) ?? .onlyMe
                    ))
            }
            return rows
        }
    }

    /// Sealed credentials.
    public func credentials(connectionID: String) async throws -> SealedCredentials? {
        try await read("reading connections credentials") { db in
            let rows = try await db.query(
                "SELECT client_id, sealed_client_secret, sealed_refresh_token FROM connections WHERE id = \(connectionID)", logger: logger
            )
            for try await (clientID, secret, token) in rows.decode((String, ByteBuffer, ByteBuffer).self) {
                return SealedCredentials(clientID: clientID, sealedClientSecret: Self.bytes(secret), sealedRefreshToken: Self.bytes(token))
            }
            return nil
        }
    }

    /// Replaces the sealed credentials; throws when the connection does not exist.
    public func updateCredentials(connectionID: String, _ credentials: SealedCredentials) async throws {
        try await transaction("updating connections credentials") { db in
            let rows = try await db.query(
                """
                UPDATE connections SET client_id = \(credentials.clientID),
                    sealed_client_secret = \(ByteBuffer(bytes: credentials.sealedClientSecret)),
                    sealed_refresh_token = \(ByteBuffer(bytes: credentials.sealedRefreshToken))
                WHERE id = \(connectionID) RETURNING id
                """, logger: logger)
            var updated = 0
            for try await _ in rows { updated += 1 }
            guard updated == 1 else { throw PostgresStoreError(.notFound, "connection \(connectionID) does not exist") }
        }
    }

    /// Changes the visibility.
    public func setConnectionVisibility(id: String, _ visibility: Connection.Visibility) async throws {
        try await transaction("updating connections visibility") { db in
            try await db.query("UPDATE connections SET visibility = \(visibility.rawValue) WHERE id = \(id)", logger: logger)
        }
    }

    /// Sets the account.
    public func setConnectionAccount(id: String, accountID: String) async throws {
        try await transaction("updating connections account_id") { db in
            try await db.query("UPDATE connections SET account_id = \(accountID) WHERE id = \(id)", logger: logger)
        }
    }

    /// Stores the health fields.
    public func setConnectionHealth(id: String, _ health: ConnectionHealth) async throws {
        try await transaction("updating connections health") { db in
            try await db.query(
                """
                UPDATE connections SET state = \(health.state.rawValue), state_reason = \(health.reason),
                    next_retry_at = \(Self.ms(health.nextRetryAt)), failing_since = \(Self.ms(health.failingSince))
                WHERE id = \(id)
                """, logger: logger)
        }
    }

    /// Sets the sync state (and clears the retry fields).
    public func setConnectionState(id: String, state: Connection.State, reason: String?) async throws {
        try await transaction("updating connections state") { db in
            try await db.query(
                """
                UPDATE connections SET state = \(state.rawValue), state_reason = \(reason), next_retry_at = NULL, failing_since = NULL
                WHERE id = \(id)
                """, logger: logger)
        }
    }

    /// Replaces the calendar list in one transaction.
    public func saveCalendars(connectionID: String, _ calendars: [ConnectionCalendar]) async throws {
        try await transaction("saving connection_calendars") { db in
            try await db.query("DELETE FROM connection_calendars WHERE connection_id = \(connectionID)", logger: logger)
            guard !calendars.isEmpty else { return }
            try await db.query(
                """
                INSERT INTO connection_calendars (connection_id, calendar_id, name, selected)
                SELECT \(connectionID), * FROM unnest(\(calendars.map(\.calendarID))::text[], \(calendars.map(\.name))::text[],
                    \(calendars.map(\.selected))::boolean[])
                """, logger: logger)
        }
    }

    /// The calendars, by id.
    public func calendars(connectionID: String) async throws -> [ConnectionCalendar] {
        try await read("reading connection_calendars") { db in
            let rows = try await db.query(
                "SELECT calendar_id, name, selected FROM connection_calendars WHERE connection_id = \(connectionID) ORDER BY calendar_id COLLATE \"C\"",
                logger: logger
            )
            var result: [ConnectionCalendar] = []
            for try await (calendarID, name, selected) in rows.decode((String, String, Bool).self) {
                result.append(ConnectionCalendar(connectionID: connectionID, calendarID: calendarID, name: name, selected: selected))
            }
            return result
        }
    }
}

extension PostgresStore: RedtailIntegrationStore {
    /// Inserts or replaces an integration (an existing row keeps its `created_at`, as in SQLiteStore).
    public func saveRedtailIntegration(_ integration: RedtailIntegration) async throws {
        try await transaction("saving redtail_integrations row") { db in
            try await db.query(
                """
                INSERT INTO redtail_integrations (account_id, account_type, redtail_user_id, sealed_api_key, sealed_user_key, created_at)
                VALUES (\(integration.accountID), \(integration.accountType), \(integration.redtailUserID),
                    \(ByteBuffer(bytes: integration.sealedAPIKey)), \(ByteBuffer(bytes: integration.sealedUserKey)), \(Self.ms(integration.createdAt)))
                ON CONFLICT (account_id) DO UPDATE SET account_type = excluded.account_type, redtail_user_id = excluded.redtail_user_id,
                    sealed_api_key = excluded.sealed_api_key, sealed_user_key = excluded.sealed_user_key
                """, logger: logger)
        }
    }

    /// An account's integration.
    public func redtailIntegration(accountID: String) async throws -> RedtailIntegration? {
        try await read("reading redtail_integrations") { db in
            let rows = try await db.query(
                """
                SELECT account_id, account_type, redtail_user_id, sealed_api_key, sealed_user_key, created_at
                FROM redtail_integrations WHERE account_id = \(accountID)
                """, logger: logger)
            for try await (account, type, userID, apiKey, userKey, createdAt)
                in rows.decode((String, String, String?, ByteBuffer, ByteBuffer, Date).self)
            {
                return RedtailIntegration(
                    accountID: account, accountType: type, redtailUserID: userID, sealedAPIKey: Self.bytes(apiKey),
                    sealedUserKey: Self.bytes(userKey), createdAt: Self.ms(createdAt)
                )
            }
            return nil
        }
    }

    /// Removes it; false when there was none.
    public func deleteRedtailIntegration(accountID: String) async throws -> Bool {
        try await transaction("deleting redtail_integrations row") { db in
            let rows = try await db.query("DELETE FROM redtail_integrations WHERE account_id = \(accountID) RETURNING account_id", logger: logger)
            var deleted = false
            for try await _ in rows { deleted = true }
            return deleted
        }
    }
}
