/// The schema, as an ordered list of versioned migrations; adding a version is adding one entry.
public enum SQLiteMigrations {
    /// One schema step.
    public struct Migration: Sendable {
        /// Version reached after this step (`PRAGMA user_version`).
        public let version: Int
        /// What it does.
        public let name: String
        /// The DDL, run in one transaction with the version bump.
        public let sql: String
    }

    /// Every migration, in order.
    public static let all: [Migration] = [
        Migration(
            version: 1, name: "durable inbox",
            sql: """
                CREATE TABLE inbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    provider TEXT NOT NULL,
                    channel_id TEXT NOT NULL,
                    dedupe_key TEXT UNIQUE,
                    kind TEXT NOT NULL,
                    received_at_ms INTEGER NOT NULL,
                    headers TEXT NOT NULL,
                    body BLOB NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    processed_at_ms INTEGER
                );
                CREATE INDEX inbox_pending ON inbox (id) WHERE processed_at_ms IS NULL;
                """),
        Migration(
            version: 2, name: "gateway metadata and health probe",
            sql: """
                CREATE TABLE gateway_meta (
                    key TEXT PRIMARY KEY,
                    value TEXT NOT NULL,
                    updated_at_ms INTEGER NOT NULL
                );
                """),
        Migration(
            version: 3, name: "google push channels",
            sql: """
                CREATE TABLE google_channels (
                    id TEXT PRIMARY KEY,
                    resource_id TEXT NOT NULL,
                    sealed_token BLOB NOT NULL,
                    calendar_key TEXT NOT NULL,
                    expires_at_ms INTEGER NOT NULL,
                    stopped_at_ms INTEGER
                );
                CREATE INDEX google_channels_calendar ON google_channels (calendar_key);
                """),
        Migration(
            version: 4, name: "imported appointments and sync cursors",
            sql: """
                CREATE TABLE appointments (
                    calendar_key TEXT NOT NULL,
                    external_id TEXT NOT NULL,
                    source TEXT NOT NULL,
                    title TEXT NOT NULL,
                    all_day INTEGER NOT NULL,
                    start_ms INTEGER,
                    end_ms INTEGER,
                    start_date TEXT,
                    end_date TEXT,
                    time_zone TEXT,
                    status TEXT NOT NULL,
                    recurrence TEXT NOT NULL,
                    series_id TEXT,
                    original_start TEXT,
                    updated_at_ms INTEGER,
                    PRIMARY KEY (calendar_key, external_id)
                );
                CREATE INDEX appointments_series ON appointments (calendar_key, series_id);
                CREATE TABLE sync_cursors (
                    calendar_key TEXT PRIMARY KEY,
                    cursor TEXT NOT NULL,
                    updated_at_ms INTEGER NOT NULL
                );
                """),
        Migration(
            version: 5, name: "connections and their calendars",
            sql: """
                CREATE TABLE connections (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    state TEXT NOT NULL,
                    state_reason TEXT,
                    created_at_ms INTEGER NOT NULL,
                    client_id TEXT NOT NULL,
                    sealed_client_secret BLOB NOT NULL,
                    sealed_refresh_token BLOB NOT NULL
                );
                CREATE INDEX connections_user ON connections (user_id);
                CREATE TABLE connection_calendars (
                    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
                    calendar_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    selected INTEGER NOT NULL,
                    PRIMARY KEY (connection_id, calendar_id)
                );
                """),
        Migration(
            version: 6, name: "microsoft graph subscriptions",
            sql: """
                CREATE TABLE graph_subscriptions (
                    id TEXT PRIMARY KEY,
                    calendar_key TEXT NOT NULL,
                    sealed_client_state BLOB NOT NULL,
                    expires_at_ms INTEGER NOT NULL,
                    removed_at_ms INTEGER
                );
                CREATE INDEX graph_subscriptions_calendar ON graph_subscriptions (calendar_key);
                """),
        Migration(
            version: 7, name: "connection health, account type, subscription creation times",
            sql: """
                ALTER TABLE connections ADD COLUMN next_retry_at_ms INTEGER;
                ALTER TABLE connections ADD COLUMN failing_since_ms INTEGER;
                ALTER TABLE connections ADD COLUMN account_type TEXT;
                ALTER TABLE google_channels ADD COLUMN created_at_ms INTEGER;
                ALTER TABLE graph_subscriptions ADD COLUMN created_at_ms INTEGER;
                """),
        Migration(
            version: 8, name: "connection account and visibility, appointment categories, LeadCenter appointments",
            sql: """
                ALTER TABLE connections ADD COLUMN account_id TEXT;
                ALTER TABLE connections ADD COLUMN visibility TEXT NOT NULL DEFAULT 'only_me';
                CREATE INDEX connections_account ON connections (account_id);
                CREATE TABLE appointment_categories (
                    calendar_key TEXT NOT NULL,
                    external_id TEXT NOT NULL,
                    category TEXT NOT NULL,
                    PRIMARY KEY (calendar_key, external_id)
                );
                CREATE TABLE leadcenter_appointments (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    account_id TEXT NOT NULL,
                    title TEXT NOT NULL,
                    all_day INTEGER NOT NULL,
                    start_ms INTEGER,
                    end_ms INTEGER,
                    start_date TEXT,
                    end_date TEXT,
                    time_zone TEXT,
                    recurrence TEXT NOT NULL,
                    category TEXT,
                    created_at_ms INTEGER NOT NULL,
                    updated_at_ms INTEGER NOT NULL
                );
                CREATE INDEX leadcenter_appointments_user ON leadcenter_appointments (user_id);
                """),
        Migration(
            version: 9, name: "Add to calendar: push targets, push state, durable push jobs",
            sql: """
                CREATE TABLE push_targets (
                    user_id TEXT PRIMARY KEY,
                    calendar_key TEXT NOT NULL
                );
                ALTER TABLE leadcenter_appointments ADD COLUMN deleted_at_ms INTEGER;
                ALTER TABLE leadcenter_appointments ADD COLUMN push_status TEXT NOT NULL DEFAULT 'no_target';
                ALTER TABLE leadcenter_appointments ADD COLUMN pushed_calendar_key TEXT;
                ALTER TABLE leadcenter_appointments ADD COLUMN pushed_external_id TEXT;
                ALTER TABLE leadcenter_appointments ADD COLUMN push_error TEXT;
                CREATE INDEX leadcenter_appointments_pushed ON leadcenter_appointments (pushed_calendar_key, pushed_external_id);
                CREATE TABLE push_jobs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    appointment_id TEXT NOT NULL,
                    action TEXT NOT NULL,
                    calendar_key TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_ms INTEGER NOT NULL,
                    last_error TEXT
                );
                CREATE INDEX push_jobs_due ON push_jobs (next_attempt_ms);
                """),
        Migration(
            version: 10, name: "appointment attendees",
            sql: """
                ALTER TABLE appointments ADD COLUMN attendees TEXT NOT NULL DEFAULT '';
                """),
        Migration(
            version: 11, name: "main Redtail integrations",
            sql: """
                CREATE TABLE redtail_integrations (
                    account_id TEXT PRIMARY KEY,
                    account_type TEXT NOT NULL,
                    redtail_user_id TEXT,
                    sealed_api_key BLOB NOT NULL,
                    sealed_user_key BLOB NOT NULL,
                    created_at_ms INTEGER NOT NULL
                );
                """),
        Migration(
            version: 12, name: "echo links: iCalendar UIDs and push tags",
            sql: """
                ALTER TABLE appointments ADD COLUMN ical_uid TEXT;
                ALTER TABLE appointments ADD COLUMN pushed_from TEXT;
                ALTER TABLE leadcenter_appointments ADD COLUMN pushed_ical_uid TEXT;
                """),
        // One table for every provider's push subscriptions. Rows are copied column for column (the sealed secrets
        // byte for byte: their sealing contexts stay `google_channel:<id>` / `graph_subscription:<id>`, see
        // `StoredPushSubscription.sealingContext`), and the old tables go in the same transaction, so a database is
        // either wholly before or wholly after this step.
        Migration(
            version: 13, name: "one push_subscriptions table for every provider",
            sql: """
                CREATE TABLE push_subscriptions (
                    provider TEXT NOT NULL,
                    id TEXT NOT NULL,
                    calendar_key TEXT NOT NULL,
                    resource_id TEXT,
                    sealed_secret BLOB NOT NULL,
                    expires_at_ms INTEGER NOT NULL,
                    created_at_ms INTEGER,
                    ended_at_ms INTEGER,
                    PRIMARY KEY (provider, id)
                );
                CREATE INDEX push_subscriptions_calendar ON push_subscriptions (provider, calendar_key);
                INSERT INTO push_subscriptions (provider, id, calendar_key, resource_id, sealed_secret, expires_at_ms, created_at_ms, ended_at_ms)
                    SELECT 'google', id, calendar_key, resource_id, sealed_token, expires_at_ms, created_at_ms, stopped_at_ms
                    FROM google_channels;
                INSERT INTO push_subscriptions (provider, id, calendar_key, resource_id, sealed_secret, expires_at_ms, created_at_ms, ended_at_ms)
                    SELECT 'microsoft', id, calendar_key, NULL, sealed_client_state, expires_at_ms, created_at_ms, removed_at_ms
                    FROM graph_subscriptions;
                DROP TABLE google_channels;
                DROP TABLE graph_subscriptions;
                """),
        // Sign-ins (OAuth authorization code with PKCE): the state is unique so one UPDATE claims it once; the
        // verifier is sealed for `sign_in:<id>:<state>:code_verifier`.
        Migration(
            version: 14, name: "sign-in authorizations",
            sql: """
                CREATE TABLE sign_in_authorizations (
                    id TEXT PRIMARY KEY,
                    provider TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    account_id TEXT,
                    visibility TEXT NOT NULL,
                    reconnect_connection_id TEXT,
                    state TEXT NOT NULL UNIQUE,
                    sealed_verifier BLOB NOT NULL,
                    status TEXT NOT NULL,
                    failure_code TEXT,
                    failure_message TEXT,
                    connection_id TEXT,
                    created_at_ms INTEGER NOT NULL,
                    expires_at_ms INTEGER NOT NULL,
                    claimed_at_ms INTEGER,
                    finished_at_ms INTEGER
                );
                CREATE INDEX sign_in_authorizations_created ON sign_in_authorizations (created_at_ms);
                """),
    ]

    /// The newest version this build knows.
    public static var latestVersion: Int { all.last?.version ?? 0 }

    /// Brings `database` from its current version to `target`, one transaction per step.
    static func migrate(_ database: SQLiteDatabase, to target: Int = latestVersion) throws {
        let current = try userVersion(database)
        if current > latestVersion {
            throw SQLiteStoreError(
                .newerSchema, path: database.path,
                "was written by a newer calgate (schema \(current), this build knows \(latestVersion)); run the newer version or restore a backup"
            )
        }
        for migration in all where migration.version > current && migration.version <= target {
            do {
                try database.transaction {
                    try database.execute(migration.sql)
                    try database.execute("PRAGMA user_version = \(migration.version)")
                }
            } catch let error as SQLiteStoreError where error.code == .notADatabase {
                throw error
            } catch {
                throw SQLiteStoreError(.migration, path: database.path, "migration \(migration.version) (\(migration.name)) failed: \(error)")
            }
        }
    }

    static func userVersion(_ database: SQLiteDatabase) throws -> Int {
        let statement = try database.prepare("PRAGMA user_version")
        guard try statement.step() else { return 0 }
        let version = Int(statement.int64(0))
        try statement.run()
        return version
    }
}
