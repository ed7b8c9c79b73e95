import Foundation
import GatewayCore

extension SQLiteStore: GoogleChannelStore {
    /// Inserts or replaces a channel row.
    public func saveGoogleChannel(_ channel: StoredGoogleChannel) async throws {
        try await run { database in
            try database.transaction {
                let statement = try database.prepare("""
                    INSERT INTO google_channels (id, resource_id, sealed_token, calendar_key, expires_at_ms, stopped_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET resource_id = excluded.resource_id, sealed_token = excluded.sealed_token,
                        calendar_key = excluded.calendar_key, expires_at_ms = excluded.expires_at_ms,
                        stopped_at_ms = excluded.stopped_at_ms
                    """)
                statement.bind(1, channel.id)
                statement.bind(2, channel.resourceID)
                statement.bind(3, blob: channel.sealedToken)
                statement.bind(4, channel.calendarKey)
                statement.bind(5, Self.milliseconds(channel.expiresAt))
                statement.bind(6, channel.stoppedAt.map(Self.milliseconds))
                try statement.run()
            }
        }
    }

    /// The channel with `id`, or nil.
    public func googleChannel(id: String) async throws -> StoredGoogleChannel? {
        try await run { database in
            let statement = try database.prepare("""
                SELECT id, resource_id, sealed_token, calendar_key, expires_at_ms, stopped_at_ms FROM google_channels WHERE id = ?
                """)
            statement.bind(1, id)
            guard try statement.step() else { return nil }
            let channel = StoredGoogleChannel(
                id: statement.string(0) ?? "", resourceID: statement.string(1) ?? "", sealedToken: statement.blob(2),
                calendarKey: statement.string(3) ?? "", expiresAt: Self.date(statement.int64(4)),
                stoppedAt: statement.isNull(5) ? nil : Self.date(statement.int64(5))
            )
            try statement.run()
            return channel
        }
    }

    /// Marks the channel stopped.
    public func stopGoogleChannel(id: String, at: Date) async throws {
        let when = Self.milliseconds(at)
        try await run { database in
            let statement = try database.prepare("UPDATE google_channels SET stopped_at_ms = ? WHERE id = ? AND stopped_at_ms IS NULL")
            statement.bind(1, when)
            statement.bind(2, id)
            try statement.run()
        }
    }

    /// The calendar's channels not yet stopped, newest expiry first.
    public func liveGoogleChannels(calendarKey: String) async throws -> [StoredGoogleChannel] {
        try await run { database in
            let statement = try database.prepare("""
                SELECT id, resource_id, sealed_token, calendar_key, expires_at_ms, stopped_at_ms FROM google_channels
                WHERE calendar_key = ? AND stopped_at_ms IS NULL ORDER BY expires_at_ms DESC, id
                """)
            statement.bind(1, calendarKey)
            var rows: [StoredGoogleChannel] = []
            while try statement.step() {
                rows.append(StoredGoogleChannel(
                    id: statement.string(0) ?? "", resourceID: statement.string(1) ?? "", sealedToken: statement.blob(2),
                    calendarKey: statement.string(3) ?? "", expiresAt: Self.date(statement.int64(4)), stoppedAt: nil
                ))
            }
            return rows
        }
    }

    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
