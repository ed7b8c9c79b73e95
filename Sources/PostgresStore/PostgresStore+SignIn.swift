import Foundation
import GatewayCore
import PostgresNIO

extension PostgresStore: SignInStore {
    static let signInColumns = """
        id, provider, user_id, account_id, visibility, reconnect_connection_id, state, sealed_verifier, status, failure_code,
        failure_message, connection_id, created_at, expires_at, claimed_at, finished_at
        """

    /// Inserts a new sign-in.
    public func createSignInAuthorization(_ authorization: SignInAuthorization) async throws {
        try await transaction("saving sign_in_authorizations row") { db in
            try await db.query(
                """
                INSERT INTO sign_in_authorizations (id, provider, user_id, account_id, visibility, reconnect_connection_id, state,
                    sealed_verifier, status, created_at, expires_at)
                VALUES (\(authorization.id), \(authorization.provider.rawValue), \(authorization.userID), \(authorization.accountID),
                    \(authorization.visibility.rawValue), \(authorization.reconnectConnectionID), \(authorization.state),
                    \(ByteBuffer(bytes: authorization.sealedVerifier)), \(authorization.status.rawValue), \(Self.ms(authorization.createdAt)),
                    \(Self.ms(authorization.expiresAt)))
                """, logger: logger)
        }
    }

    /// A sign-in by id.
    public func signInAuthorization(id: String) async throws -> SignInAuthorization? {
        try await read("reading sign_in_authorizations") { db in
            var query: PostgresQuery = "WHERE id = \(id)"
            query.sql = "SELECT \(Self.signInColumns) FROM sign_in_authorizations " + query.sql
            return try await Self.signInAuthorizations(db.query(query, logger: logger)).first
        }
    }

    /// Claims `state` with one `UPDATE … RETURNING`: of concurrent requests (on any instance) only one finds it
    /// unclaimed.
    public func claimSignInState(_ state: String, at now: Date) async throws -> SignInStateClaim {
        try await transaction("claiming a sign-in state") { db in
            var claim: PostgresQuery = "SET claimed_at = \(Self.ms(now)) WHERE state = \(state) AND claimed_at IS NULL"
            claim.sql = "UPDATE sign_in_authorizations " + claim.sql + " RETURNING \(Self.signInColumns)"
            if let row = try await Self.signInAuthorizations(db.query(claim, logger: logger)).first { return .claimed(row) }
            var existing: PostgresQuery = "WHERE state = \(state)"
            existing.sql = "SELECT \(Self.signInColumns) FROM sign_in_authorizations " + existing.sql
            guard let row = try await Self.signInAuthorizations(db.query(existing, logger: logger)).first else { return .unknown }
            return .alreadyClaimed(row)
        }
    }

    /// Records the end of a still-pending sign-in.
    public func finishSignInAuthorization(_ authorization: SignInAuthorization) async throws -> Bool {
        try await transaction("finishing a sign_in_authorizations row") { db in
            let rows = try await db.query(
                """
                UPDATE sign_in_authorizations SET status = \(authorization.status.rawValue), failure_code = \(authorization.failure?.code.rawValue),
                    failure_message = \(authorization.failure?.message), connection_id = \(authorization.connectionID),
                    finished_at = \(Self.ms(authorization.finishedAt))
                WHERE id = \(authorization.id) AND status = 'pending' RETURNING id
                """, logger: logger)
            return try await Self.count(rows) > 0
        }
    }

    /// Removes sign-ins created before `cutoff`.
    public func deleteSignInAuthorizations(createdBefore cutoff: Date) async throws -> Int {
        try await transaction("removing old sign_in_authorizations rows") { db in
            try await Self.count(db.query("DELETE FROM sign_in_authorizations WHERE created_at < \(Self.ms(cutoff)) RETURNING id", logger: logger))
        }
    }

    static func signInAuthorizations(_ rows: PostgresRowSequence) async throws -> [SignInAuthorization] {
        var result: [SignInAuthorization] = []
        for try await row in rows {
            let (id, provider, userID, accountID, visibility, reconnect, state, verifier, status, code, message, connectionID, createdAt, expiresAt) =
                try row.decode(
                    (String, String, String, String?, String, String?, String, ByteBuffer, String, String?, String?, String?, Date, Date).self,
                    context: .default)
            let random = row.makeRandomAccess()
            let claimedAt = try random[14].decode(Date?.self, context: .default)
            let finishedAt = try random[15].decode(Date?.self, context: .default)
            var item = SignInAuthorization(
                id: id, provider: Provider(rawValue: provider) ?? .google, userID: userID, accountID: accountID,
                visibility: Connection.Visibility(rawValue: visibility) ?? .onlyMe, reconnectConnectionID: reconnect, state: state,
                sealedVerifier: bytes(verifier), now: createdAt
            )
            item.status = SignInAuthorization.Status(rawValue: status) ?? .failed
            if let code, let kind = SignInFailure.Code(rawValue: code) { item.failure = SignInFailure(kind, message ?? "") }
            item.connectionID = connectionID
            item.expiresAt = expiresAt
            item.claimedAt = claimedAt
            item.finishedAt = finishedAt
            result.append(item)
        }
        return result
    }
}
