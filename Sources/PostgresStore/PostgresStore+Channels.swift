import Foundation
import GatewayCore
import PostgresNIO

/// Google channels and Graph subscriptions: the rows pushes are verified against. Every write also NOTIFYs
/// `calgate_credentials` in its transaction, so other instances drop their cached verification secrets, and bumps
/// this instance's `webhookCredentialsVersion` after the commit (as SQLiteStore does, even when no row changed).
extension PostgresStore: GoogleChannelStore, GraphSubscriptionStore {
    /// Runs a channel or subscription write with the NOTIFY, then bumps the version.
    private func credentialsWrite(_ what: String, _ body: (PostgresConnection) async throws -> Void) async throws {
        defer { credentialsChanged() }
        try await transaction(what) { connection in
            try await body(connection)
            try await connection.query("SELECT pg_notify('calgate_credentials', \(instanceID))", logger: logger)
        }
    }

    // MARK: Google channels

    /// Inserts or replaces a channel row.
    public func saveGoogleChannel(_ channel: StoredGoogleChannel) async throws {
        try await credentialsWrite("saving google_channels row \(channel.id)") { connection in
            try await connection.query("""
                INSERT INTO google_channels (id, resource_id, sealed_token, calendar_key, expires_at, stopped_at, created_at)
                VALUES (\(channel.id), \(channel.resourceID), \(ByteBuffer(bytes: channel.sealedToken)), \(channel.calendarKey),
                        \(Self.ms(channel.expiresAt)), \(Self.ms(channel.stoppedAt)), \(Self.ms(channel.createdAt)))
                ON CONFLICT (id) DO UPDATE SET resource_id = excluded.resource_id, sealed_token = excluded.sealed_token,
                    calendar_key = excluded.calendar_key, expires_at = excluded.expires_at,
                    stopped_at = excluded.stopped_at, created_at = excluded.created_at
                """, logger: logger)
        }
    }

    /// The channel with `id`, or nil.
    public func googleChannel(id: String) async throws -> StoredGoogleChannel? {
        try await googleChannels("WHERE id = \(id)").first
    }

    /// Marks the channel stopped (the first stop time wins).
    public func stopGoogleChannel(id: String, at: Date) async throws {
        try await credentialsWrite("stopping google_channels row \(id)") { connection in
            try await connection.query(
                "UPDATE google_channels SET stopped_at = \(Self.ms(at)) WHERE id = \(id) AND stopped_at IS NULL", logger: logger
            )
        }
    }

    /// The calendar's channels not yet stopped, newest expiry first.
    public func liveGoogleChannels(calendarKey: String) async throws -> [StoredGoogleChannel] {
        try await googleChannels("WHERE calendar_key = \(calendarKey) AND stopped_at IS NULL ORDER BY expires_at DESC, id COLLATE \"C\"")
    }

    /// Every channel not yet stopped, by calendar then newest expiry first.
    public func allLiveGoogleChannels() async throws -> [StoredGoogleChannel] {
        try await googleChannels("WHERE stopped_at IS NULL ORDER BY calendar_key COLLATE \"C\", expires_at DESC, id COLLATE \"C\"")
    }

    private func googleChannels(_ filter: PostgresQuery) async throws -> [StoredGoogleChannel] {
        var query = filter
        query.sql = "SELECT id, resource_id, sealed_token, calendar_key, expires_at, stopped_at, created_at FROM google_channels " + query.sql
        return try await read("reading google_channels") { connection in
            var rows: [StoredGoogleChannel] = []
            for try await (id, resourceID, token, calendarKey, expiresAt, stoppedAt, createdAt)
                in try await connection.query(query, logger: logger).decode((String, String, ByteBuffer, String, Date, Date?, Date?).self) {
                rows.append(StoredGoogleChannel(
                    id: id, resourceID: resourceID, sealedToken: Self.bytes(token), calendarKey: calendarKey,
                    expiresAt: Self.ms(expiresAt), stoppedAt: Self.ms(stoppedAt), createdAt: Self.ms(createdAt)
                ))
            }
            return rows
        }
    }

    // MARK: Graph subscriptions

    /// Inserts or replaces a subscription row (an existing row keeps its `created_at`, as in SQLiteStore).
    public func saveGraphSubscription(_ subscription: StoredGraphSubscription) async throws {
        try await credentialsWrite("saving graph_subscriptions row \(subscription.id)") { connection in
            try await connection.query("""
                INSERT INTO graph_subscriptions (id, calendar_key, sealed_client_state, expires_at, removed_at, created_at)
                VALUES (\(subscription.id), \(subscription.calendarKey), \(ByteBuffer(bytes: subscription.sealedClientState)),
                        \(Self.ms(subscription.expiresAt)), \(Self.ms(subscription.removedAt)), \(Self.ms(subscription.createdAt)))
                ON CONFLICT (id) DO UPDATE SET calendar_key = excluded.calendar_key,
                    sealed_client_state = excluded.sealed_client_state, expires_at = excluded.expires_at,
                    removed_at = excluded.removed_at
                """, logger: logger)
        }
    }

    /// One subscription, removed or not.
    public func graphSubscription(id: String) async throws -> StoredGraphSubscription? {
        try await graphSubscriptions("WHERE id = \(id)").first
    }

    /// The calendar's subscriptions not yet removed, newest expiry first.
    public func liveGraphSubscriptions(calendarKey: String) async throws -> [StoredGraphSubscription] {
        try await graphSubscriptions("WHERE calendar_key = \(calendarKey) AND removed_at IS NULL ORDER BY expires_at DESC, id COLLATE \"C\"")
    }

    /// Every live subscription, by calendar then newest expiry first.
    public func allLiveGraphSubscriptions() async throws -> [StoredGraphSubscription] {
        try await graphSubscriptions("WHERE removed_at IS NULL ORDER BY calendar_key COLLATE \"C\", expires_at DESC, id COLLATE \"C\"")
    }

    /// Marks the subscription removed (the first removal time wins).
    public func markGraphSubscriptionRemoved(id: String, at: Date) async throws {
        try await credentialsWrite("removing graph_subscriptions row \(id)") { connection in
            try await connection.query(
                "UPDATE graph_subscriptions SET removed_at = \(Self.ms(at)) WHERE id = \(id) AND removed_at IS NULL", logger: logger
            )
        }
    }

    /// Stores a renewed expiry and when the renewal happened.
    public func updateGraphSubscriptionExpiry(id: String, expiresAt: Date, renewedAt: Date) async throws {
        try await credentialsWrite("renewing graph_subscriptions row \(id)") { connection in
            try await connection.query(
                "UPDATE graph_subscriptions SET expires_at = \(Self.ms(expiresAt)), created_at = \(Self.ms(renewedAt)) WHERE id = \(id)",
                logger: logger
            )
        }
    }

    private func graphSubscriptions(_ filter: PostgresQuery) async throws -> [StoredGraphSubscription] {
        var query = filter
        query.sql = "SELECT id, calendar_key, sealed_client_state, expires_at, removed_at, created_at FROM graph_subscriptions " + query.sql
        return try await read("reading graph_subscriptions") { connection in
            var rows: [StoredGraphSubscription] = []
            for try await (id, calendarKey, clientState, expiresAt, removedAt, createdAt)
                in try await connection.query(query, logger: logger).decode((String, String, ByteBuffer, Date, Date?, Date?).self) {
                rows.append(StoredGraphSubscription(
                    id: id, calendarKey: calendarKey, sealedClientState: Self.bytes(clientState),
                    expiresAt: Self.ms(expiresAt), removedAt: Self.ms(removedAt), createdAt: Self.ms(createdAt)
                ))
            }
            return rows
        }
    }
}
