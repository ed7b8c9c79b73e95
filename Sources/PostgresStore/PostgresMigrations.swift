import GatewayCore
import Logging
import PostgresNIO

/// The PostgreSQL schema as an ordered list of versioned migrations, recorded in `schema_migrations`.
///
/// Version 1 is the whole schema `SQLiteMigrations` reached in its twelve steps, with PostgreSQL types: instants are
/// `timestamptz`, sealed secrets and bodies `bytea`, ids identities. Adding a version is adding one entry.
public enum PostgresMigrations {
    /// One schema step.
    public struct Migration: Sendable {
        /// Version reached after this step.
        public let version: Int
        /// What it does.
        public let name: String
        /// The DDL statements, run in one transaction with the version row.
        public let statements: [String]
    }

    /// The advisory lock that serializes migrations of instances starting at once (`pg_advisory_xact_lock`).
    static let migrationLockKey: Int64 = 0x6361_6C67_6D69_6772  // "calgmigr"

    /// Every migration, in order.
    public static let all: [Migration] = [
        Migration(
            version: 1, name: "the gateway schema",
            statements: [
                """
                CREATE TABLE inbox (
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    appender text NOT NULL,
                    provider text NOT NULL,
                    channel_id text NOT NULL,
                    dedupe_key text UNIQUE,
                    kind text NOT NULL,
                    received_at timestamptz NOT NULL,
                    headers jsonb NOT NULL,
                    body bytea NOT NULL,
                    attempts integer NOT NULL DEFAULT 0,
                    processed_at timestamptz
                )
                """,
                "CREATE INDEX inbox_pending ON inbox (id) WHERE processed_at IS NULL",
                """
                CREATE TABLE gateway_meta (
                    key text PRIMARY KEY,
                    value text NOT NULL,
                    updated_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE google_channels (
                    id text PRIMARY KEY,
                    resource_id text NOT NULL,
                    sealed_token bytea NOT NULL,
                    calendar_key text NOT NULL,
                    expires_at timestamptz NOT NULL,
                    stopped_at timestamptz,
                    created_at timestamptz
                )
                """,
                "CREATE INDEX google_channels_calendar ON google_channels (calendar_key)",
                """
                CREATE TABLE appointments (
                    calendar_key text NOT NULL,
                    external_id text NOT NULL,
                    source text NOT NULL,
                    title text NOT NULL,
                    all_day boolean NOT NULL,
                    start_at timestamptz,
                    end_at timestamptz,
                    start_date text,
                    end_date text,
                    time_zone text,
                    status text NOT NULL,
                    recurrence text NOT NULL,
                    series_id text,
                    original_start text,
                    updated_at timestamptz,
                    attendees text NOT NULL DEFAULT '',
                    ical_uid text,
                    pushed_from text,
                    PRIMARY KEY (calendar_key, external_id)
                )
                """,
                "CREATE INDEX appointments_series ON appointments (calendar_key, series_id)",
                """
                CREATE TABLE sync_cursors (
                    calendar_key text PRIMARY KEY,
                    cursor text NOT NULL,
                    updated_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE connections (
                    id text PRIMARY KEY,
                    user_id text NOT NULL,
                    provider text NOT NULL,
                    state text NOT NULL,
                    state_reason text,
                    created_at timestamptz NOT NULL,
                    client_id text NOT NULL,
                    sealed_client_secret bytea NOT NULL,
                    sealed_refresh_token bytea NOT NULL,
                    next_retry_at timestamptz,
                    failing_since timestamptz,
                    account_type text,
                    account_id text,
                    visibility text NOT NULL DEFAULT 'only_me'
                )
                """,
                "CREATE INDEX connections_user ON connections (user_id)",
                "CREATE INDEX connections_account ON connections (account_id)",
                """
                CREATE TABLE connection_calendars (
                    connection_id text NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
                    calendar_id text NOT NULL,
                    name text NOT NULL,
                    selected boolean NOT NULL,
                    PRIMARY KEY (connection_id, calendar_id)
                )
                """,
                """
                CREATE TABLE graph_subscriptions (
                    id text PRIMARY KEY,
                    calendar_key text NOT NULL,
                    sealed_client_state bytea NOT NULL,
                    expires_at timestamptz NOT NULL,
                    removed_at timestamptz,
                    created_at timestamptz
                )
                """,
                "CREATE INDEX graph_subscriptions_calendar ON graph_subscriptions (calendar_key)",
                """
                CREATE TABLE appointment_categories (
                    calendar_key text NOT NULL,
                    external_id text NOT NULL,
                    category text NOT NULL,
                    PRIMARY KEY (calendar_key, external_id)
                )
                """,
                """
                CREATE TABLE leadcenter_appointments (
                    id text PRIMARY KEY,
                    user_id text NOT NULL,
                    account_id text NOT NULL,
                    title text NOT NULL,
                    all_day boolean NOT NULL,
                    start_at timestamptz,
                    end_at timestamptz,
                    start_date text,
                    end_date text,
                    time_zone text,
                    recurrence text NOT NULL,
                    category text,
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL,
                    deleted_at timestamptz,
                    push_status text NOT NULL DEFAULT 'no_target',
                    pushed_calendar_key text,
                    pushed_external_id text,
                    push_error text,
                    pushed_ical_uid text
                )
                """,
                "CREATE INDEX leadcenter_appointments_user ON leadcenter_appointments (user_id)",
                "CREATE INDEX leadcenter_appointments_pushed ON leadcenter_appointments (pushed_calendar_key, pushed_external_id)",
                """
                CREATE TABLE push_targets (
                    user_id text PRIMARY KEY,
                    calendar_key text NOT NULL
                )
                """,
                """
                CREATE TABLE push_jobs (
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    appointment_id text NOT NULL,
                    action text NOT NULL,
                    calendar_key text NOT NULL,
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL,
                    last_error text
                )
                """,
                "CREATE INDEX push_jobs_due ON push_jobs (next_attempt_at)",
                "CREATE INDEX push_jobs_appointment ON push_jobs (appointment_id, id)",
                """
                CREATE TABLE redtail_integrations (
                    account_id text PRIMARY KEY,
                    account_type text NOT NULL,
                    redtail_user_id text,
                    sealed_api_key bytea NOT NULL,
                    sealed_user_key bytea NOT NULL,
                    created_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE work_leases (
                    key text PRIMARY KEY,
                    owner text NOT NULL,
                    expires_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE work_log (
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    kind text NOT NULL,
                    key text NOT NULL,
                    owner text NOT NULL,
                    started_at timestamptz NOT NULL,
                    finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    inbox_rows bigint[] NOT NULL DEFAULT '{}',
                    outcome text NOT NULL
                )
                """,
                "CREATE INDEX work_log_finished ON work_log (finished_at)",
            ]),
        // One table for every provider's push subscriptions (SQLite's version 13). Rows are copied column for column,
        // the sealed secrets byte for byte (their sealing contexts stay `google_channel:<id>` /
        // `graph_subscription:<id>`, see `StoredPushSubscription.sealingContext`); the old tables go in the same
        // transaction. Instances of an older build must be stopped first: they still query the old tables.
        Migration(
            version: 2, name: "one push_subscriptions table for every provider",
            statements: [
                """
                CREATE TABLE push_subscriptions (
                    provider text NOT NULL,
                    id text NOT NULL,
                    calendar_key text NOT NULL,
                    resource_id text,
                    sealed_secret bytea NOT NULL,
                    expires_at timestamptz NOT NULL,
                    created_at timestamptz,
                    ended_at timestamptz,
                    PRIMARY KEY (provider, id)
                )
                """,
                "CREATE INDEX push_subscriptions_calendar ON push_subscriptions (provider, calendar_key)",
                """
                INSERT INTO push_subscriptions (provider, id, calendar_key, resource_id, sealed_secret, expires_at, created_at, ended_at)
                    SELECT 'google', id, calendar_key, resource_id, sealed_token, expires_at, created_at, stopped_at FROM google_channels
                """,
                """
                INSERT INTO push_subscriptions (provider, id, calendar_key, resource_id, sealed_secret, expires_at, created_at, ended_at)
                    SELECT 'microsoft', id, calendar_key, NULL, sealed_client_state, expires_at, created_at, removed_at FROM graph_subscriptions
                """,
                "DROP TABLE google_channels",
                "DROP TABLE graph_subscriptions",
            ]),
        // Sign-ins (SQLite's version 14): the unique state is claimed by one UPDATE, so of two instances receiving
        // the same callback only one proceeds.
        Migration(
            version: 3, name: "sign-in authorizations",
            statements: [
                """
                CREATE TABLE sign_in_authorizations (
                    id text PRIMARY KEY,
                    provider text NOT NULL,
                    user_id text NOT NULL,
                    account_id text,
                    visibility text NOT NULL,
                    reconnect_connection_id text,
                    state text NOT NULL UNIQUE,
                    sealed_verifier bytea NOT NULL,
                    status text NOT NULL,
                    failure_code text,
                    failure_message text,
                    connection_id text,
                    created_at timestamptz NOT NULL,
                    expires_at timestamptz NOT NULL,
                    claimed_at timestamptz,
                    finished_at timestamptz
                )
                """,
                "CREATE INDEX sign_in_authorizations_created ON sign_in_authorizations (created_at)",
            ]),
        // Partitioned ownership: each inbox row records its calendar and partition at append, instances heartbeat in
        // calgate_instances and lease partitions in partition_leases (one row per partition, so the partition count
        // is recorded in the schema). Rows appended before this version have no partition; every instance reads those.
        Migration(
            version: 4, name: "partitions: inbox partition column, instances and partition leases",
            statements: [
                "ALTER TABLE inbox ADD COLUMN calendar_key text, ADD COLUMN partition smallint",
                "CREATE INDEX inbox_partition_pending ON inbox (partition, id) WHERE processed_at IS NULL",
                """
                CREATE TABLE calgate_instances (
                    id text PRIMARY KEY,
                    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    heartbeat_at timestamptz NOT NULL,
                    expires_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE partition_leases (
                    partition smallint PRIMARY KEY CHECK (partition >= 0 AND partition < \(Partitions.count)),
                    owner text NOT NULL DEFAULT '',
                    expires_at timestamptz NOT NULL DEFAULT '-infinity',
                    acquired_at timestamptz
                )
                """,
                "INSERT INTO partition_leases (partition) SELECT generate_series(0, \(Partitions.count - 1))",
                "CREATE INDEX partition_leases_owner ON partition_leases (owner)",
            ]),
    ]

    /// The newest version this build knows.
    public static var latestVersion: Int { all.last?.version ?? 0 }

    /// Brings the database to `target` (`latestVersion` unless a test builds an older schema) in one transaction that
    /// holds the migration advisory lock, so of several instances starting at once one migrates and the others then
    /// find nothing to do. Refuses a database a newer calgate migrated.
    static func migrate(_ client: PostgresClient, to target: Int = latestVersion, logger: Logger) async throws {
        do {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLockKey))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version integer PRIMARY KEY,
                        applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
                    )
                    """, logger: logger)
                let current = try await currentVersion(connection, logger: logger)
                if current > latestVersion {
                    throw PostgresStoreError(
                        .newerSchema,
                        "the database was migrated by a newer calgate (schema \(current), this build knows \(latestVersion)); run the newer version or restore a backup"
                    )
                }
                for migration in all where migration.version > current && migration.version <= target {
                    do {
                        for statement in migration.statements {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await connection.query("INSERT INTO schema_migrations (version) VALUES (\(migration.version))", logger: logger)
                    } catch {
                        throw PostgresStoreError(
                            .migration, "migration \(migration.version) (\(migration.name)) failed: \(PostgresStoreError.reason(error))"
                        )
                    }
                    logger.info("postgres schema migrated", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                }
            }
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? PostgresStoreError { throw inner }
            throw PostgresStoreError(.migration, "migrating the schema failed: \(PostgresStoreError.reason(error))")
        }
    }

    /// The highest applied version (0 for an empty database).
    static func currentVersion(_ connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query("SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations", logger: logger)
        for try await version in rows.decode(Int64.self) { return Int(version) }
        return 0
    }
}
