import Foundation
import GatewayCore

extension SQLiteStore {
    /// Every sealed column, with the `SecretSealer` context its rows were sealed for (the key columns come first).
    static let sealedColumns: [(table: String, keys: [String], column: String, context: @Sendable ([String]) -> String)] = [
        ("connections", ["id"], "sealed_client_secret", { "connection:\($0[0]):client_secret" }),
        ("connections", ["id"], "sealed_refresh_token", { "connection:\($0[0]):refresh_token" }),
        ("push_subscriptions", ["provider", "id"], "sealed_secret", { pushSubscriptionContext(provider: $0[0], id: $0[1]) }),
        ("redtail_integrations", ["account_id"], "sealed_api_key", { "redtail_integration:\($0[0]):api_key" }),
        ("redtail_integrations", ["account_id"], "sealed_user_key", { "redtail_integration:\($0[0]):user_key" }),
    ]

    /// `StoredPushSubscription.sealingContext` of a row's key columns. Only valid provider ids are written; a row with
    /// another gets the generic form, which then fails to open, so the rotation stops with nothing changed.
    static func pushSubscriptionContext(provider: String, id: String) -> String {
        guard let provider = Provider(rawValue: provider) else { return "push_subscription:\(provider):\(id)" }
        return StoredPushSubscription.sealingContext(provider: provider, id: id)
    }

    /// Re-seals every stored secret in one transaction: `reseal` gets the sealed bytes and their context and returns
    /// the new sealed bytes (typically: open with any known key, seal with the new one). Nothing changes when it
    /// throws for any row. Returns how many values were re-sealed.
    public func resealAllSecrets(_ reseal: @escaping @Sendable (_ sealed: [UInt8], _ context: String) throws -> [UInt8]) async throws -> Int {
        try await run { database in
            try database.transaction {
                var count = 0
                for item in Self.sealedColumns {
                    let keyList = item.keys.joined(separator: ", ")
                    let select = try database.prepare("SELECT \(keyList), \(item.column) FROM \(item.table)")
                    var rows: [([String], [UInt8])] = []
                    while try select.step() {
                        let keys = (0..<item.keys.count).map { select.string(Int32($0)) ?? "" }
                        rows.append((keys, select.blob(Int32(item.keys.count))))
                    }
                    try select.run()
                    for (keys, sealed) in rows {
                        let resealed = try reseal(sealed, item.context(keys))
                        let condition = item.keys.enumerated().map { "\($0.element) = ?\($0.offset + 2)" }.joined(separator: " AND ")
                        let update = try database.prepare("UPDATE \(item.table) SET \(item.column) = ?1 WHERE \(condition)")
                        update.bind(1, blob: resealed)
                        for (index, key) in keys.enumerated() { update.bind(Int32(index + 2), key) }
                        try update.run()
                        count += 1
                    }
                }
                return count
            }
        }
    }

    /// Copies the WAL into the main file and truncates it, so no page holding an old sealed value stays in the WAL.
    public func checkpoint() async throws {
        try await run { database in
            try database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
    }
}
