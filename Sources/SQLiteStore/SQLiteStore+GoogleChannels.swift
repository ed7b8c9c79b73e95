import Foundation
import GatewayCore

extension SQLiteStore: GoogleChannelStore {
    /// Inserts or replaces a channel row.
    public func saveGoogleChannel(_ channel: StoredGoogleChannel) async throws {
        defer { credentialsChanged() }
        try await run { database in
            let statement = try database.prepare("""
                INSERT INTO google_channels (id, resource_id, sealed_token, calendar_key, expires_at_ms, stopped_at_ms, created_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET resource_id = excluded.resource_id, sealed_token = excluded.sealed_token,
                    calendar_key = excluded.calendar_key, expires_at_ms = excluded.expires_at_ms,
                    stopped_at_ms = excluded.stopped_at_ms, created_at_ms = excluded.created_at_ms
                """)
            statement.bind(1, channel.id)
            statement.bind(2, channel.resourceID)
            statement.bind(3, blob: channel.sealedToken)
            statement.bind(4, channel.calendarKey)
            statement.bind(5, Self.milliseconds(channel.expiresAt))
            statement.bind(6, channel.stoppedAt.map(Self.milliseconds))
            statement.bind(7, channel.createdAt.map(Self.milliseconds))
            try statement.run()
        }
    }

    /// The channel with `id`, or nil.
    public func googleChannel(id: String) async throws -> StoredGoogleChannel? {
        try await run { database in
            let statement = try database.prepare(Self.channelColumns + " WHERE id = ?")
            statement.bind(1, id)
            guard try statement.step() else { return nil }
            let channel = Self.readChannel(statement)
            try statement.run()
            return channel
        }
    }

    /// Marks the channel stopped (the first stop time wins).
    public func stopGoogleChannel(id: String, at: Date) async throws {
        let when = Self.milliseconds(at)
        defer { credentialsChanged() }
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
            let statement = try database.prepare(
                Self.channelColumns + " WHERE calendar_key = ? AND stopped_at_ms IS NULL ORDER BY expires_at_ms DESC, id"
            )
            statement.bind(1, calendarKey)
            var rows: [StoredGoogleChannel] = []
            while try statement.step() { rows.append(Self.readChannel(statement)) }
            return rows
        }
    }

    /// Every channel not yet stopped.
    public func allLiveGoogleChannels() async throws -> [StoredGoogleChannel] {
        try await run { database in
            let statement = try database.prepare(
                Self.channelColumns + " WHERE stopped_at_ms IS NULL ORDER BY calendar_key, expires_at_ms DESC, id"
            )
            var rows: [StoredGoogleChannel] = []
            while try statement.step() { rows.append(Self.readChannel(statement)) }
            return rows
        }
    }

    static let channelColumns =
        "SELECT id, resource_id, sealed_token, calendar_key, expires_at_ms, stopped_at_ms, created_at_ms FROM google_channels"

    static func readChannel(_ statement: SQLiteStatement) -> StoredGoogleChannel {
        StoredGoogleChannel(
            id: statement.string(0) ?? "", resourceID: statement.string(1) ?? "", sealedToken: statement.blob(2),
            calendarKey: statement.string(3) ?? "", expiresAt: date(statement.int64(4)),
            stoppedAt: statement.isNull(5) ? nil : date(statement.int64(5)),
            createdAt: statement.isNull(6) ? nil : date(statement.int64(6))
        )
    }

    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
