import CalgateMacros
import Foundation

/// Every setting of `calgate serve`, each with a default that serves on one machine.
///
/// Precedence, lowest first: built-in defaults, the JSON config file, `CALGATE_*` environment variables, then
/// command-line flags (applied by the executable).
public struct GatewayConfiguration: Sendable, Hashable {
    /// Address the TLS listener binds.
    public var listen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8443)
    /// Directory for the database, generated tokens and dev certificates' default location.
    public var dataDirectory: String = "./data"
    /// SQLite file (`nil` means `<dataDirectory>/calgate.sqlite`), or a `postgres://` URL: several instances then share
    /// that PostgreSQL database.
    public var databasePath: String?
    /// Directory of route files (`*.json`).
    public var routesDirectory: String = "routes"
    /// TLS settings.
    public var tls = TLSSettings()
    /// Admin bearer token; `nil` means read or generate `<dataDirectory>/admin-token`.
    public var adminToken: String?
    /// LeadCenter API bearer token; `nil` means read or generate `<dataDirectory>/api-token`.
    public var apiToken: String?
    /// After this instant the admin token is refused (401) until a new one is configured; `nil`: it does not expire.
    public var adminTokenExpiresAt: Date?
    /// After this instant the API token is refused (401) until a new one is configured; `nil`: it does not expire.
    public var apiTokenExpiresAt: Date?
    /// File holding the 64-hex-character key that seals stored secrets; `nil` means `<dataDirectory>/secret.key`
    /// (generated on first start). `CALGATE_SECRET_KEY` (64 hex) overrides both.
    public var secretKeyFile: String?
    /// The public HTTPS base URL providers push to; `nil` means `https://<listen>`.
    public var publicURL: String?
    /// Google endpoints (production unless pointed at the simulator).
    public var google = OAuthProviderSettings.google
    /// Microsoft endpoints (production unless pointed at the simulator).
    public var microsoft = OAuthProviderSettings.microsoft
    /// Redtail endpoint, auth scheme and poll interval.
    public var redtail = RedtailSettings()
    /// Log level name (trace, debug, info, notice, warning, error, critical).
    public var logLevel: String = "info"
    /// Log line format.
    public var logFormat: LogFormat = .text
    /// HTTP limits and timeouts.
    public var limits = HTTPLimits()
    /// Thresholds for `/admin/health`.
    public var health = HealthThresholds()
    /// Longest time graceful shutdown waits for in-flight requests, in seconds.
    public var shutdownGraceSeconds: Int = 10
    /// Connections a user may have (the plan's limit); more are refused with 409.
    public var maxConnectionsPerUser = 10
    /// Subscription renewal and the reconciliation sweep.
    public var maintenance = MaintenanceSettings()
    /// LeadCenter's page the sign-in callback redirects to with `authorization_id`, `status` and (on failure)
    /// `reason`; nil: the callback answers a small HTML result page itself.
    public var signInResultURL: String?

    /// How channels and subscriptions are kept alive and calendars kept converged.
    public struct MaintenanceSettings: Sendable, Hashable {
        /// How often the renewal job looks at every channel and subscription, in seconds.
        public var renewalCheckIntervalSeconds = 300
        /// Renew at the latest this long before expiry (or at a quarter of the life, whichever is earlier), in seconds.
        public var renewalMinimumLeadSeconds = 86_400
        /// Every synced calendar gets a delta sync at least this often, in seconds.
        public var reconciliationIntervalSeconds = 3600
        /// On PostgreSQL, how long an instance's partition leases last without a heartbeat, in seconds: how soon the
        /// others take over the partitions of an instance that died (it heartbeats every quarter of this).
        public var partitionLeaseSeconds = 10
        /// Creates defaults.
        public init() {}
    }

    /// Creates the default configuration.
    public init() {}

    /// The secret key file in force.
    public var effectiveSecretKeyFile: String {
        secretKeyFile ?? (dataDirectory as NSString).appendingPathComponent("secret.key")
    }

    /// The SQLite path in force (meaningless when `postgresURL` is set).
    public var effectiveDatabasePath: String {
        databasePath ?? (dataDirectory as NSString).appendingPathComponent("calgate.sqlite")
    }

    /// The PostgreSQL connection URL when `database` is one (`postgres://` or `postgresql://`): several instances
    /// then share that database. Nil means SQLite, the default.
    public var postgresURL: String? {
        guard let databasePath, Self.isPostgresURL(databasePath) else { return nil }
        return databasePath
    }

    /// Whether `value` names a PostgreSQL database rather than an SQLite file.
    public static func isPostgresURL(_ value: String) -> Bool {
        let lower = value.lowercased()
        return lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://")
    }

    /// Where the database is, for logs and status: the SQLite path, or the PostgreSQL URL without its password.
    public var databaseDescription: String {
        guard let url = postgresURL else { return effectiveDatabasePath }
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", range: scheme.upperBound..<url.endIndex) else { return url }
        let userInfo = url[scheme.upperBound..<at.lowerBound]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at.lowerBound...])
    }

    /// The public base URL in force.
    public var effectivePublicURL: String { publicURL ?? "https://\(listen)" }
    /// Where an OAuth provider's token endpoint, API and consent page are, and the sign-in client calgate uses there
    /// (`google.*`, `microsoft.*`); `.google` and `.microsoft` are the production defaults.
    public struct OAuthProviderSettings: Sendable, Hashable {
        /// OAuth token endpoint.
        public var tokenURL: String
        /// API base URL (Google's ends in `/calendar/v3`, Graph's in `/v1.0`).
        public var apiBaseURL: String
        /// OAuth client id for sign-in (`*.client_id`); nil: users connect only with a refresh token.
        public var clientID: String?
        /// Its client secret (`*.client_secret`); set together with `clientID`.
        public var clientSecret: String?
        /// The authorization endpoint (the consent page).
        public var authorizeURL: String
        /// Scopes asked for at sign-in.
        public var scopes: [String]
        /// Whether sign-in is configured.
        public var signInConfigured: Bool { clientID != nil && clientSecret != nil }

        /// Google: scopes for events read/write (sync, channels, push-out) and the calendar list.
        public static let google = OAuthProviderSettings(
            tokenURL: "https://oauth2.googleapis.com/token", apiBaseURL: "https://www.googleapis.com/calendar/v3",
            authorizeURL: "https://accounts.google.com/o/oauth2/v2/auth",
            scopes: ["https://www.googleapis.com/auth/calendar.events", "https://www.googleapis.com/auth/calendar.calendarlist.readonly"]
        )

        /// Entra ID v2 (`common` accepts work, school and personal accounts) and Microsoft Graph.
        public static let microsoft = OAuthProviderSettings(
            tokenURL: "https://login.microsoftonline.com/common/oauth2/v2.0/token", apiBaseURL: "https://graph.microsoft.com/v1.0",
            authorizeURL: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize", scopes: ["Calendars.ReadWrite", "offline_access"]
        )

        /// Settings without a sign-in client.
        public init(tokenURL: String, apiBaseURL: String, authorizeURL: String, scopes: [String]) {
            self.tokenURL = tokenURL
            self.apiBaseURL = apiBaseURL
            self.authorizeURL = authorizeURL
            self.scopes = scopes
        }
    }

    /// Where Redtail's public API is, how calgate authenticates with the UserKey, and how often it polls.
    public struct RedtailSettings: Sendable, Hashable {
        /// The UserKey schemes calgate speaks.
        public static let authSchemes: Set<String> = ["userkeyauth", "basic_userkey_header"]
        /// Base URL ending in `/api/public/v1` (Redtail's hosts vary per deployment).
        public var baseURL = "https://crm.redtailtechnology.com/api/public/v1"
        /// `userkeyauth` (documented) or `basic_userkey_header` (seen in integrations).
        public var authScheme = "userkeyauth"
        /// Seconds between polls of each connection (jittered).
        public var pollIntervalSeconds = 300
        /// Creates defaults.
        public init() {}
    }

    /// Log line formats.
    public enum LogFormat: String, Sendable, Hashable, CaseIterable {
        /// Human-readable lines.
        case text
        /// One JSON object per line.
        case json
    }

    /// Certificate files and handshake settings.
    public struct TLSSettings: Sendable, Hashable {
        /// PEM certificate chain; `nil` uses (and if needed generates) the dev certificate in `certs/`.
        public var certificatePath: String?
        /// PEM private key; required when `certificatePath` is set.
        public var privateKeyPath: String?
        /// Directory where `certs dev` writes and `serve` looks for the dev certificate.
        public var devCertificateDirectory: String = "certs"
        /// Session tickets and cache (turned off to benchmark full handshakes).
        public var sessionResumption: Bool = true
        /// A client that has not finished its handshake by then is cut, in seconds.
        public var handshakeTimeoutSeconds: Int = 10
        /// Creates defaults.
        public init() {}
    }

    /// Limits that keep slow or hostile clients from holding resources.
    public struct HTTPLimits: Sendable, Hashable {
        /// Largest total size of a request's header block.
        public var maxHeaderBytes: Int = 16 * 1024
        /// Most header fields in one request.
        public var maxHeaderCount: Int = 100
        /// Keep-alive connections idle this long are closed, in seconds.
        public var idleTimeoutSeconds: Int = 60
        /// A request head must arrive within this many seconds of its first byte.
        public var headerTimeoutSeconds: Int = 10
        /// A request body must arrive within this many seconds of its head.
        public var bodyTimeoutSeconds: Int = 30
        /// Most open connections; beyond it new connections wait in the accept backlog.
        public var maxConnections: Int = 4096
        /// Event-loop threads serving connections; `nil` means one per CPU core.
        public var eventLoopThreads: Int?
        /// Failed verifications (forged webhooks, wrong tokens) one source address may have in a row before it is
        /// answered 429 without being verified.
        public var verificationFailureBurst: Int = 30
        /// Seconds for one failed verification to be forgiven.
        public var verificationFailureRefillSeconds: Int = 2
        /// Creates defaults.
        public init() {}
    }

    /// When the health endpoint reports degraded or failing.
    public struct HealthThresholds: Sendable, Hashable {
        /// Certificate expiring within this many days → degraded.
        public var certificateWarningDays: Int = 14
        /// More unprocessed inbox rows than this → degraded.
        public var inboxBacklogDegraded: Int = 1_000
        /// More unprocessed inbox rows than this → failing.
        public var inboxBacklogFailing: Int = 100_000
        /// Creates defaults.
        public init() {}
    }
}

/// A `HOST:PORT` listen address (`[::1]:8443` for IPv6).
@MemberwiseInit
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP literal, without brackets.
    public var host: String
    /// TCP port; 0 picks a free one.
    public var port: Int

    /// Parses `HOST:PORT` or `[V6]:PORT`.
    public init(parsing text: String) throws(ConfigurationError) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ConfigurationError(setting: "listen", message: "\"\(text)\" is not HOST:PORT (IPv6 as [::1]:8443)")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw ConfigurationError(setting: "listen", message: "\"\(text)\" is not HOST:PORT (IPv6 as [::1]:8443)")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty else {
            throw ConfigurationError(setting: "listen", message: "\"\(text)\" has no host")
        }
        guard let port = Int(portText), (0...65_535).contains(port) else {
            throw ConfigurationError(setting: "listen", message: "\"\(text)\" has no port between 0 and 65535")
        }
        self.host = String(host)
        self.port = port
    }

    /// `host:port`, bracketing IPv6 literals.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A setting that cannot be used: names it and says what is wrong.
@MemberwiseInit
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The setting, as a config-file path or environment variable.
    public let setting: String
    /// What is wrong and what to do.
    public let message: String

    /// `setting: message`.
    public var description: String { "\(setting): \(message)" }
}
