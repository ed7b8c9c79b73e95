import Foundation
import GatewayCore

/// Everything the console's overview and `calgate status` show, gathered once per request from the store, the
/// activity log and the sync services. Holds no secret: channel tokens and clientState never leave the store rows.
struct ConsoleOverview: Sendable {
    /// One live Google channel or Graph subscription.
    struct Subscription: Sendable {
        var provider: Provider
        var id, calendarKey, calendarName, userID: String
        var expiresAt, renewAt: Date
        var lapsed: Bool

        var connectionID: String { ConnectionCalendar.parts(of: calendarKey)?.connectionID ?? "" }
        var calendarID: String { ConnectionCalendar.parts(of: calendarKey)?.calendarID ?? calendarKey }
    }

    /// One connection with its calendars.
    struct ConnectionSummary: Sendable {
        var connection: Connection
        var calendars: [ConnectionCalendar]
        var lastSync: GatewayActivity.SyncRecord?
    }

    var generatedAt: Date
    var status: HealthStatus
    var connections: [ConnectionSummary]
    var backlog: InboxBacklog
    var lastMinute: GatewayActivity.Rates
    var missedByPush: [Provider: Int]
    var runningSyncs: Int
    var subscriptions: [Subscription]
    /// This instance's name as a partition owner.
    var instance: String = ""
    /// Who owns how many partitions (`Partitions`): every live instance on PostgreSQL, this one alone otherwise.
    var partitionOwners: [PartitionOwnerSummary] = []

    /// Connections per provider and state.
    func count(_ provider: Provider, _ state: Connection.State) -> Int {
        connections.filter { $0.connection.provider == provider && $0.connection.state == state }.count
    }

    /// Live subscriptions whose planned renewal falls within the next 24 hours (or is already overdue).
    var renewalsDueIn24Hours: Int {
        subscriptions.filter { !$0.lapsed && $0.renewAt <= generatedAt.addingTimeInterval(86_400) }.count
    }

    var lapsedCount: Int { subscriptions.filter(\.lapsed).count }

    /// Reads the store and the services. A store error propagates (the page answers 503).
    static func gather(
        store: any GatewayStore, activity: GatewayActivity, operations: (any ConsoleOperations)?, renewal: RenewalPolicy,
        status: HealthStatus, now: Date
    ) async throws -> ConsoleOverview {
        var summaries: [ConnectionSummary] = []
        var calendarNames: [String: (name: String, user: String)] = [:]
        for connection in try await store.connections(userID: nil) {
            let calendars = try await store.calendars(connectionID: connection.id)
            for calendar in calendars { calendarNames[calendar.calendarKey] = (calendar.name, connection.userID) }
            let last = calendars.compactMap { activity.lastSync(calendarKey: $0.calendarKey) }.max { $0.finishedAt < $1.finishedAt }
            summaries.append(ConnectionSummary(connection: connection, calendars: calendars, lastSync: last))
        }
        summaries.sort { ($0.connection.createdAt, $0.connection.id) < ($1.connection.createdAt, $1.connection.id) }
        var subscriptions: [Subscription] = []
        func add(_ provider: Provider, _ id: String, _ key: String, _ createdAt: Date?, _ expiresAt: Date) {
            let named = calendarNames[key]
            subscriptions.append(
                Subscription(
                    provider: provider, id: id, calendarKey: key, calendarName: named?.name ?? ConnectionCalendar.parts(of: key)?.calendarID ?? key,
                    userID: named?.user ?? "", expiresAt: expiresAt,
                    renewAt: expiresAt.addingTimeInterval(-renewal.lead(id: id, createdAt: createdAt, expiresAt: expiresAt)),
                    lapsed: expiresAt <= now
                ))
        }
        // Every provider with connections, built-in or plugged in, from the one push-subscription store.
        for provider in Self.providers(of: summaries) {
            for row in try await store.allLivePushSubscriptions(provider: provider) { add(provider, row.id, row.calendarKey, row.createdAt, row.expiresAt) }
        }
        subscriptions.sort { ($0.lapsed ? 0 : 1, $0.expiresAt, $0.id) < ($1.lapsed ? 0 : 1, $1.expiresAt, $1.id) }
        let leases = store.workLeases
        let owners = try await leases.partitionLeasing?.owners() ?? [PartitionOwnerSummary(owner: leases.owner, partitions: Partitions.count)]
        return ConsoleOverview(
            generatedAt: now, status: status, connections: summaries, backlog: try await store.backlog(), lastMinute: activity.lastMinute(),
            missedByPush: operations?.missedByPush() ?? [:], runningSyncs: operations?.runningSyncs() ?? 0, subscriptions: subscriptions,
            instance: leases.owner, partitionOwners: owners
        )
    }

    /// The built-in providers, then any other provider a connection belongs to.
    var providers: [Provider] { Self.providers(of: connections) }

    /// The built-in providers, then any other provider one of `connections` belongs to, in order of appearance.
    static func providers(of connections: [ConnectionSummary]) -> [Provider] {
        var seen = Set(Provider.builtIn)
        return Provider.builtIn + connections.map(\.connection.provider).filter { seen.insert($0).inserted }
    }

    /// The `GET /admin/api/overview` document `calgate status` reads.
    var json: JSONValue {
        let formatter = ISO8601DateFormatter()
        var byProvider: [String: JSONValue] = [:]
        for provider in providers {
            var states: [String: JSONValue] = [:]
            for state in [Connection.State.active, .degraded, .needsReconnect, .disconnected] {
                states[state.rawValue] = .integer(Int64(count(provider, state)))
            }
            states["total"] = .integer(Int64(connections.filter { $0.connection.provider == provider }.count))
            byProvider[provider.rawValue] = .object(states)
        }
        func perProvider(_ values: [Provider: Int]) -> JSONValue {
            .object(Dictionary(uniqueKeysWithValues: providers.map { ($0.rawValue, JSONValue.integer(Int64(values[$0] ?? 0))) }))
        }
        return .object([
            "generated_at": .string(formatter.string(from: generatedAt)),
            "status": .string(status.rawValue),
            "connections": .object(byProvider),
            "inbox": .object([
                "backlog": .integer(Int64(backlog.count)),
                "oldest_age_s": backlog.oldestReceivedAt.map { .integer(Int64(max(0, generatedAt.timeIntervalSince($0)))) } ?? .null,
            ]),
            "last_minute": .object([
                "notifications_accepted": perProvider(lastMinute.accepted),
                "notifications_rejected": .object(lastMinute.rejected.mapValues { .integer(Int64($0)) }),
                "syncs_succeeded": perProvider(lastMinute.syncsSucceeded),
                "syncs_failed": perProvider(lastMinute.syncsFailed),
            ]),
            "missed_by_push": perProvider(missedByPush),
            "running_syncs": .integer(Int64(runningSyncs)),
            "renewals_due_24h": .integer(Int64(renewalsDueIn24Hours)),
            "lapsed_subscriptions": .integer(Int64(lapsedCount)),
            "partitions": .object([
                "count": .integer(Int64(Partitions.count)),
                "this_instance": .string(instance),
                "owners": .array(
                    partitionOwners.map { owner in
                        .object(["instance": .string(owner.owner), "partitions": .integer(Int64(owner.partitions)), "live": .bool(owner.live)])
                    }),
            ]),
            "subscriptions": .array(
                subscriptions.map { subscription in
                    .object([
                        "provider": .string(subscription.provider.rawValue), "id": .string(subscription.id),
                        "connection_id": .string(subscription.connectionID), "calendar_id": .string(subscription.calendarID),
                        "calendar_name": .string(subscription.calendarName),
                        "expires_at": .string(formatter.string(from: subscription.expiresAt)),
                        "renew_at": .string(formatter.string(from: subscription.renewAt)), "lapsed": .bool(subscription.lapsed),
                    ])
                }),
        ])
    }
}
