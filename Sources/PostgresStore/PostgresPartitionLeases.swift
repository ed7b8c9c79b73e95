import Foundation
import GatewayCore
import PostgresNIO

/// Partition leases shared by every instance on the database: `calgate_instances` (one heartbeat row per instance)
/// and `partition_leases` (one row per partition: owner and `expires_at` on the database clock, so instances' clocks
/// need not agree). A heartbeat is one transaction: record this instance alive, renew its leases and count the live
/// instances (one statement), then give back what is beyond its fair share or claim free and lapsed partitions up to
/// it (`FOR UPDATE SKIP LOCKED`, so instances claiming at once never wait for each other or take the same one).
public final class PostgresPartitionLeases: PartitionLeasing {
    private let store: PostgresStore

    init(store: PostgresStore) {
        self.store = store
    }

    /// See `PartitionLeasing.heartbeat(owner:duration:)`.
    public func heartbeat(owner: String, duration: TimeInterval) async throws -> PartitionHeartbeat {
        let seconds = max(0, duration)
        let logger = store.logger
        return try await store.transaction("partition heartbeat") { connection in
            try await connection.query(
                """
                INSERT INTO calgate_instances (id, heartbeat_at, expires_at)
                VALUES (\(owner), clock_timestamp(), clock_timestamp() + make_interval(secs => \(seconds)))
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
                """, logger: logger)
            var owned: Set<Int> = []
            var live = 1
            let renewed = try await connection.query(
                """
                WITH renewed AS (
                    UPDATE partition_leases SET expires_at = clock_timestamp() + make_interval(secs => \(seconds))
                    WHERE owner = \(owner) AND expires_at > clock_timestamp() RETURNING partition
                )
                SELECT (SELECT count(*) FROM calgate_instances WHERE expires_at > clock_timestamp()),
                       array(SELECT partition::int4 FROM renewed)
                """, logger: logger)
            for try await (count, partitions) in renewed.decode((Int64, [Int32]).self) {
                live = max(1, Int(count))
                owned = Set(partitions.map(Int.init))
            }
            let plan = PartitionPlan.plan(owned: owned, liveInstances: live)
            if !plan.release.isEmpty {
                let release = plan.release.map { Int32($0) }
                try await connection.query(
                    """
                    UPDATE partition_leases SET owner = '', expires_at = '-infinity'
                    WHERE owner = \(owner) AND partition = ANY(\(release)::int4[])
                    """, logger: logger)
                owned.subtract(plan.release)
            }
            if plan.claim > 0 {
                let claimed = try await connection.query(
                    """
                    UPDATE partition_leases SET owner = \(owner), expires_at = clock_timestamp() + make_interval(secs => \(seconds)),
                           acquired_at = clock_timestamp()
                    WHERE partition IN (
                        SELECT partition FROM partition_leases WHERE expires_at <= clock_timestamp()
                        ORDER BY partition LIMIT \(Int64(plan.claim)) FOR UPDATE SKIP LOCKED
                    ) RETURNING partition::int4
                    """, logger: logger)
                for try await partition in claimed.decode(Int32.self) { owned.insert(Int(partition)) }
            }
            return PartitionHeartbeat(owned: owned, liveInstances: live)
        }
    }

    /// See `PartitionLeasing.leave(owner:)`.
    public func leave(owner: String) async throws {
        let logger = store.logger
        try await store.transaction("leaving the partitions") { connection in
            try await connection.query(
                "UPDATE partition_leases SET owner = '', expires_at = '-infinity' WHERE owner = \(owner)", logger: logger
            )
            try await connection.query("DELETE FROM calgate_instances WHERE id = \(owner)", logger: logger)
        }
    }

    /// See `PartitionLeasing.owners()`: instances that heartbeat within the last minute, with their live leases.
    public func owners() async throws -> [PartitionOwnerSummary] {
        let logger = store.logger
        return try await store.read("reading partition owners") { connection in
            let rows = try await connection.query(
                """
                SELECT i.id, count(l.partition), i.expires_at > clock_timestamp()
                FROM calgate_instances i
                LEFT JOIN partition_leases l ON l.owner = i.id AND l.expires_at > clock_timestamp()
                WHERE i.expires_at > clock_timestamp() - interval '1 minute'
                GROUP BY i.id, i.expires_at ORDER BY 2 DESC, 1
                """, logger: logger)
            var owners: [PartitionOwnerSummary] = []
            for try await (owner, count, live) in rows.decode((String, Int64, Bool).self) {
                owners.append(PartitionOwnerSummary(owner: owner, partitions: Int(count), live: live))
            }
            return owners
        }
    }
}
