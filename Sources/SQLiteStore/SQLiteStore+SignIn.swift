import Foundation
import GatewayCore

extension SQLiteStore: SignInStore {
    static let signInColumns = """
        id, provider, user_id, account_id, visibility, reconnect_connection_id, state, sealed_verifier, status, failure_code,
        failure_message, connection_id, created_at_ms, expires_at_ms, claimed_at_ms, finished_at_ms
        """

    /// Inserts a new sign-in.
    public func createSignInAuthorization(_ authorization: SignInAuthorization) async throws {
        try await run { database in
            let statement = try database.prepare(
                """
                INSERT INTO sign_in_authorizations (id, provider, user_id, account_id, visibility, reconnect_connection_id, state,
                    sealed_verifier, status, created_at_ms, expires_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            statement.bind(1, authorization.id)
            statement.bind(2, authorization.provider.rawValue)
            statement.bind(3, authorization.userID)
            statement.bind(4, authorization.accountID)
            statement.bind(5, authorization.visibility.rawValue)
            statement.bind(6, authorization.reconnectConnectionID)
            statement.bind(7, authorization.state)
            statement.bind(8, blob: authorization.sealedVerifier)
            statement.bind(9, authorization.status.rawValue)
            statement.bind(10, Self.milliseconds(authorization.createdAt))
            statement.bind(11, Self.milliseconds(authorization.expiresAt))
            try statement.run()
        }
    }

    /// A sign-in by id.
    public func signInAuthorization(id: String) async throws -> SignInAuthorization? {
        try await run { database in
            try database.first("SELECT \(Self.signInColumns) FROM sign_in_authorizations WHERE id = ?", id) { statement in
                Self.signInAuthorization(statement)
            }
        }
    }

    /// Claims `state` with one `UPDATE … RETURNING`: only the first request finds it unclaimed.
    public func claimSignInState(_ state: String, at now: Date) async throws -> SignInStateClaim {
        try await run { database in
            let claim = try database.prepare(
                "UPDATE sign_in_authorizations SET claimed_at_ms = ? WHERE state = ? AND claimed_at_ms IS NULL RETURNING \(Self.signInColumns)"
            )
            claim.bind(1, Self.milliseconds(now))
            claim.bind(2, state)
            if try claim.step() {
                let row = Self.signInAuthorization(claim)
                try claim.run()
                return .claimed(row)
            }
            try claim.run()
            let existing = try database.prepare("SELECT \(Self.signInColumns) FROM sign_in_authorizations WHERE state = ?")
            existing.bind(1, state)
            guard try existing.step() else { return .unknown }
            let row = Self.signInAuthorization(existing)
            try existing.run()
            return .alreadyClaimed(row)
        }
    }

    /// Records the end of a still-pending sign-in.
    public func finishSignInAuthorization(_ authorization: SignInAuthorization) async throws -> Bool {
        try await run { database in
            let statement = try database.prepare(
                """
                UPDATE sign_in_authorizations SET status = ?, failure_code = ?, failure_message = ?, connection_id = ?, finished_at_ms = ?
                WHERE id = ? AND status = 'pending'
                """)
            statement.bind(1, authorization.status.rawValue)
            statement.bind(2, authorization.failure?.code.rawValue)
            statement.bind(3, authorization.failure?.message)
            statement.bind(4, authorization.connectionID)
            statement.bind(5, authorization.finishedAt.map(Self.milliseconds))
            statement.bind(6, authorization.id)
            try statement.run()
            return database.changes > 0
        }
    }

    /// Removes sign-ins created before `cutoff`.
    public func deleteSignInAuthorizations(createdBefore cutoff: Date) async throws -> Int {
        try await run { database in
            let statement = try database.prepare("DELETE FROM sign_in_authorizations WHERE created_at_ms < ?")
            statement.bind(1, Self.milliseconds(cutoff))
            try statement.run()
            return Int(database.changes)
        }
    }

    static func signInAuthorization(_ statement: SQLiteStatement) -> SignInAuthorization {
        var row = SignInAuthorization(
            id: statement.string(0) ?? "", provider: Provider(rawValue: statement.string(1) ?? "") ?? .google, userID: statement.string(2) ?? "",
            accountID: statement.isNull(3) ? nil : statement.string(3),
            visibility: Connection.Visibility(rawValue: statement.string(4) ?? "") ?? .onlyMe,
            reconnectConnectionID: statement.isNull(5) ? nil : statement.string(5), state: statement.string(6) ?? "",
            sealedVerifier: statement.blob(7), now: date(statement.int64(12))
        )
        row.status = SignInAuthorization.Status(rawValue: statement.string(8) ?? "") ?? .failed
        if !statement.isNull(9), let code = SignInFailure.Code(rawValue: statement.string(9) ?? "") {
            row.failure = SignInFailure(code, statement.string(10) ?? "")
        }
        row.connectionID = statement.isNull(11) ? nil : statement.string(11)
        row.expiresAt = date(statement.int64(13))
        row.claimedAt = statement.isNull(14) ? nil : date(statement.int64(14))
        row.finishedAt = statement.isNull(15) ? nil : date(statement.int64(15))
        return row
    }
}
