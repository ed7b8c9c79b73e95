import Foundation
import GatewayCore

extension SQLiteStore: RedtailIntegrationStore {
    /// Inserts or replaces an integration.
    public func saveRedtailIntegration(_ integration: RedtailIntegration) async throws {
        try await run { database in
            let statement = try database.prepare(
                """
                INSERT INTO redtail_integrations (account_id, account_type, redtail_user_id, sealed_api_key, sealed_user_key, created_at_ms)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(account_id) DO UPDATE SET account_type = excluded.account_type, redtail_user_id = excluded.redtail_user_id,
                    sealed_api_key = excluded.sealed_api_key, sealed_user_key = excluded.sealed_user_key
                """)
            statement.bind(1, integration.accountID)
            statement.bind(2, integration.accountType)
            statement.bind(3, integration.redtailUserID)
            statement.bind(4, blob: integration.sealedAPIKey)
            statement.bind(5, blob: integration.sealedUserKey)
            statement.bind(6, Self.milliseconds(integration.createdAt))
            try statement.run()
        }
    }

    /// An account's integration.
    public func redtailIntegration(accountID: String) async throws -> RedtailIntegration? {
        try await run { database in
            try database.first(
                """
                SELECT account_id, account_type, redtail_user_id, sealed_api_key, sealed_user_key, created_at_ms
                FROM redtail_integrations WHERE account_id = ?
                """, accountID
            ) { statement in
                RedtailIntegration(
                    accountID: statement.string(0) ?? "", accountType: statement.string(1) ?? "",
                    redtailUserID: statement.isNull(2) ? nil : statement.string(2), sealedAPIKey: statement.blob(3),
                    sealedUserKey: statement.blob(4), createdAt: Self.date(statement.int64(5))
                )
            }
        }
    }

    /// Removes it.
    public func deleteRedtailIntegration(accountID: String) async throws -> Bool {
        try await run { database in
            try database.run("DELETE FROM redtail_integrations WHERE account_id = ?", accountID) > 0
        }
    }
}
