import Foundation

extension GatewayConfiguration {
    /// Environment variables read by `applying(environment:)`, with what they set.
    public static let environmentVariables: [(name: String, setting: String)] = [
        ("CALGATE_LISTEN", "listen"),
        ("CALGATE_DATA_DIR", "data_dir"),
        ("CALGATE_DATABASE", "database"),
        ("CALGATE_ROUTES_DIR", "routes_dir"),
        ("CALGATE_TLS_CERT", "tls.certificate"),
        ("CALGATE_TLS_KEY", "tls.private_key"),
        ("CALGATE_ADMIN_TOKEN", "admin_token"),
        ("CALGATE_API_TOKEN", "api_token"),
        ("CALGATE_PUBLIC_URL", "public_url"),
        ("CALGATE_LOG_LEVEL", "log.level"),
        ("CALGATE_LOG_FORMAT", "log.format"),
        ("CALGATE_MAX_CONNECTIONS", "limits.max_connections"),
        ("CALGATE_SECRET_KEY_FILE", "secret_key_file"),
        ("CALGATE_GOOGLE_CLIENT_ID", "google.client_id"),
        ("CALGATE_GOOGLE_CLIENT_SECRET", "google.client_secret"),
        ("CALGATE_MICROSOFT_CLIENT_ID", "microsoft.client_id"),
        ("CALGATE_MICROSOFT_CLIENT_SECRET", "microsoft.client_secret"),
        ("CALGATE_SIGN_IN_RESULT_URL", "sign_in_result_url"),
    ]

    static let logLevels: Set<String> = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Reads a JSON config file's bytes strictly (unknown keys rejected) over the defaults.
    public static func parse(_ data: Data, file: String) throws(ConfigurationError) -> GatewayConfiguration {
        let document: JSONValue
        do {
            document = try JSONValue.parse(data)
        } catch {
            throw ConfigurationError(setting: file, message: error.message)
        }
        do {
            return try parse(document)
        } catch {
            throw ConfigurationError(setting: "\(file): \(error.path)", message: error.message)
        }
    }

    private static func parse(_ document: JSONValue) throws(StrictJSONError) -> GatewayConfiguration {
        var config = GatewayConfiguration()
        let top = try StrictJSONObject(document, path: "")
        try top.requireOnlyKeys([
            "listen", "data_dir", "database", "routes_dir", "tls", "admin_token", "api_token", "public_url", "google", "microsoft", "redtail",
            "log", "limits", "health", "shutdown_grace_s", "maintenance", "max_connections_per_user",
            "admin_token_expires_at", "api_token_expires_at", "secret_key_file", "sign_in_result_url",
        ])
        if let listen = try top.string("listen") {
            do {
                config.listen = try ListenAddress(parsing: listen)
            } catch {
                throw StrictJSONError(path: "listen", message: error.message)
            }
        }
        if let value = try top.string("data_dir") { config.dataDirectory = try nonEmpty(value, top.qualified("data_dir")) }
        if let value = try top.string("database") { config.databasePath = try nonEmpty(value, top.qualified("database")) }
        if let value = try top.string("routes_dir") { config.routesDirectory = try nonEmpty(value, top.qualified("routes_dir")) }
        if let value = try top.string("admin_token") { config.adminToken = try validToken(value, path: "admin_token") }
        if let value = try top.integer("shutdown_grace_s", in: 0...3600) { config.shutdownGraceSeconds = Int(value) }
        if let value = try top.integer("max_connections_per_user", in: 1...1000) { config.maxConnectionsPerUser = Int(value) }
        if let value = try top.string("api_token") { config.apiToken = try validToken(value, path: "api_token") }
        if let value = try top.string("admin_token_expires_at") { config.adminTokenExpiresAt = try validInstant(value, path: "admin_token_expires_at") }
        if let value = try top.string("api_token_expires_at") { config.apiTokenExpiresAt = try validInstant(value, path: "api_token_expires_at") }
        if let value = try top.string("secret_key_file") { config.secretKeyFile = try nonEmpty(value, top.qualified("secret_key_file")) }
        if let value = try top.string("public_url") { config.publicURL = try validURL(value, path: "public_url", https: true) }
        if let value = try top.string("sign_in_result_url") {
            config.signInResultURL = try validResultURL(value, path: "sign_in_result_url")
        }
        if let google = try top.object("google") { try oauthProvider(google, into: &config.google) }
        if let microsoft = try top.object("microsoft") { try oauthProvider(microsoft, into: &config.microsoft) }
        if let redtail = try top.object("redtail") {
            try redtail.requireOnlyKeys(["base_url", "auth_scheme", "poll_interval_s"])
            if let v = try redtail.string("base_url") { config.redtail.baseURL = try validURL(v, path: redtail.qualified("base_url"), https: false) }
            if let v = try redtail.string("auth_scheme") {
                guard RedtailSettings.authSchemes.contains(v) else {
                    throw StrictJSONError(path: redtail.qualified("auth_scheme"), message: "\"\(v)\" is not one of \(RedtailSettings.authSchemes.sorted().joined(separator: ", "))")
                }
                config.redtail.authScheme = v
            }
            if let v = try redtail.integer("poll_interval_s", in: 30...86_400) { config.redtail.pollIntervalSeconds = Int(v) }
        }
        if let tls = try top.object("tls") {
            try tls.requireOnlyKeys(["certificate", "private_key", "dev_cert_dir", "session_resumption", "handshake_timeout_s"])
            config.tls.certificatePath = try tls.string("certificate")
            config.tls.privateKeyPath = try tls.string("private_key")
            if let value = try tls.string("dev_cert_dir") { config.tls.devCertificateDirectory = try nonEmpty(value, tls.qualified("dev_cert_dir")) }
            if let value = try tls.bool("session_resumption") { config.tls.sessionResumption = value }
            if let value = try tls.integer("handshake_timeout_s", in: 1...300) { config.tls.handshakeTimeoutSeconds = Int(value) }
        }
        if let log = try top.object("log") {
            try log.requireOnlyKeys(["level", "format"])
            if let level = try log.string("level") { config.logLevel = try validLevel(level, path: log.qualified("level")) }
            if let format = try log.string("format") { config.logFormat = try validFormat(format, path: log.qualified("format")) }
        }
        if let limits = try top.object("limits") {
            try limits.requireOnlyKeys([
                "max_header_bytes", "max_header_count", "idle_timeout_s", "header_timeout_s", "body_timeout_s",
                "max_connections", "event_loop_threads", "verification_failure_burst", "verification_failure_refill_s",
            ])
            if let v = try limits.integer("max_header_bytes", in: 1024...1_048_576) { config.limits.maxHeaderBytes = Int(v) }
            if let v = try limits.integer("max_header_count", in: 8...10_000) { config.limits.maxHeaderCount = Int(v) }
            if let v = try limits.integer("idle_timeout_s", in: 1...86_400) { config.limits.idleTimeoutSeconds = Int(v) }
            if let v = try limits.integer("header_timeout_s", in: 1...3_600) { config.limits.headerTimeoutSeconds = Int(v) }
            if let v = try limits.integer("body_timeout_s", in: 1...3_600) { config.limits.bodyTimeoutSeconds = Int(v) }
            if let v = try limits.integer("max_connections", in: 1...1_000_000) { config.limits.maxConnections = Int(v) }
            if let v = try limits.integer("event_loop_threads", in: 1...256) { config.limits.eventLoopThreads = Int(v) }
            if let v = try limits.integer("verification_failure_burst", in: 1...1_000_000) { config.limits.verificationFailureBurst = Int(v) }
            if let v = try limits.integer("verification_failure_refill_s", in: 1...86_400) { config.limits.verificationFailureRefillSeconds = Int(v) }
        }
        if let health = try top.object("health") {
            try health.requireOnlyKeys(["certificate_warning_days", "inbox_backlog_degraded", "inbox_backlog_failing"])
            if let v = try health.integer("certificate_warning_days", in: 0...365) { config.health.certificateWarningDays = Int(v) }
            if let v = try health.integer("inbox_backlog_degraded", in: 1...Int64(Int32.max)) { config.health.inboxBacklogDegraded = Int(v) }
            if let v = try health.integer("inbox_backlog_failing", in: 1...Int64(Int32.max)) { config.health.inboxBacklogFailing = Int(v) }
        }
        if let maintenance = try top.object("maintenance") {
            try maintenance.requireOnlyKeys(["renewal_check_interval_s", "renewal_minimum_lead_s", "reconciliation_interval_s", "partition_lease_s"])
            if let v = try maintenance.integer("renewal_check_interval_s", in: 1...86_400) { config.maintenance.renewalCheckIntervalSeconds = Int(v) }
            if let v = try maintenance.integer("renewal_minimum_lead_s", in: 60...(6 * 86_400)) { config.maintenance.renewalMinimumLeadSeconds = Int(v) }
            if let v = try maintenance.integer("reconciliation_interval_s", in: 60...(7 * 86_400)) { config.maintenance.reconciliationIntervalSeconds = Int(v) }
            if let v = try maintenance.integer("partition_lease_s", in: 2...600) { config.maintenance.partitionLeaseSeconds = Int(v) }
        }
        try config.checkConsistency(pathPrefix: "")
        return config
    }

    /// Applies `CALGATE_*` variables over this configuration.
    public func applying(environment: [String: String]) throws(ConfigurationError) -> GatewayConfiguration {
        var config = self
        func value(_ name: String) throws(ConfigurationError) -> String? {
            guard let raw = environment[name] else { return nil }
            guard !raw.isEmpty else { throw ConfigurationError(setting: name, message: "is set but empty; unset it or give a value") }
            return raw
        }
        if let v = try value("CALGATE_LISTEN") {
            do { config.listen = try ListenAddress(parsing: v) } catch { throw ConfigurationError(setting: "CALGATE_LISTEN", message: error.message) }
        }
        if let v = try value("CALGATE_DATA_DIR") { config.dataDirectory = v }
        if let v = try value("CALGATE_DATABASE") { config.databasePath = v }
        if let v = try value("CALGATE_ROUTES_DIR") { config.routesDirectory = v }
        if let v = try value("CALGATE_TLS_CERT") { config.tls.certificatePath = v }
        if let v = try value("CALGATE_TLS_KEY") { config.tls.privateKeyPath = v }
        if let v = try value("CALGATE_ADMIN_TOKEN") {
            do { config.adminToken = try Self.validToken(v, path: "CALGATE_ADMIN_TOKEN") } catch {
                throw ConfigurationError(setting: "CALGATE_ADMIN_TOKEN", message: error.message)
            }
        }
        if let v = try value("CALGATE_API_TOKEN") {
            do { config.apiToken = try Self.validToken(v, path: "CALGATE_API_TOKEN") } catch {
                throw ConfigurationError(setting: "CALGATE_API_TOKEN", message: error.message)
            }
        }
        if let v = try value("CALGATE_PUBLIC_URL") {
            do { config.publicURL = try Self.validURL(v, path: "", https: true) } catch {
                throw ConfigurationError(setting: "CALGATE_PUBLIC_URL", message: error.message)
            }
        }
        if let v = try value("CALGATE_LOG_LEVEL") {
            do { config.logLevel = try Self.validLevel(v, path: "") } catch { throw ConfigurationError(setting: "CALGATE_LOG_LEVEL", message: error.message) }
        }
        if let v = try value("CALGATE_LOG_FORMAT") {
            do { config.logFormat = try Self.validFormat(v, path: "") } catch { throw ConfigurationError(setting: "CALGATE_LOG_FORMAT", message: error.message) }
        }
        if let v = try value("CALGATE_MAX_CONNECTIONS") {
            guard let n = Int(v), (1...1_000_000).contains(n) else {
                throw ConfigurationError(setting: "CALGATE_MAX_CONNECTIONS", message: "\"\(v)\" must be an integer between 1 and 1000000")
            }
            config.limits.maxConnections = n
        }
        if let v = try value("CALGATE_SECRET_KEY_FILE") { config.secretKeyFile = v }
        if let v = try value("CALGATE_GOOGLE_CLIENT_ID") { config.google.clientID = v }
        if let v = try value("CALGATE_GOOGLE_CLIENT_SECRET") { config.google.clientSecret = v }
        if let v = try value("CALGATE_MICROSOFT_CLIENT_ID") { config.microsoft.clientID = v }
        if let v = try value("CALGATE_MICROSOFT_CLIENT_SECRET") { config.microsoft.clientSecret = v }
        if let v = try value("CALGATE_SIGN_IN_RESULT_URL") {
            do { config.signInResultURL = try Self.validResultURL(v, path: "") } catch {
                throw ConfigurationError(setting: "CALGATE_SIGN_IN_RESULT_URL", message: error.message)
            }
        }
        do { try config.checkConsistency(pathPrefix: "") } catch {
            throw ConfigurationError(setting: error.path, message: error.message)
        }
        return config
    }

    /// Checks settings that depend on each other.
    public func checkConsistency(pathPrefix: String) throws(StrictJSONError) {
        if (tls.certificatePath == nil) != (tls.privateKeyPath == nil) {
            throw StrictJSONError(
                path: "tls",
                message: "certificate and private_key must be set together (CALGATE_TLS_CERT / CALGATE_TLS_KEY); leave both unset to use the dev certificate"
            )
        }
        // A provider with half its sign-in client would hand users a consent page whose callback cannot finish.
        for (name, variable, clientID, clientSecret) in [
            ("google", "GOOGLE", google.clientID, google.clientSecret), ("microsoft", "MICROSOFT", microsoft.clientID, microsoft.clientSecret),
        ] where (clientID == nil) != (clientSecret == nil) {
            throw StrictJSONError(
                path: "\(name).\(clientID == nil ? "client_id" : "client_secret")",
                message:
                    "\(name) sign-in is half configured: set \(name).client_id and \(name).client_secret together (CALGATE_\(variable)_CLIENT_ID / CALGATE_\(variable)_CLIENT_SECRET), or neither to connect \(name) accounts only with refresh tokens"
            )
        }
        if health.inboxBacklogFailing <= health.inboxBacklogDegraded {
            throw StrictJSONError(path: "health.inbox_backlog_failing", message: "must be larger than health.inbox_backlog_degraded")
        }
    }

    /// Validates a log level name.
    public static func validLevel(_ text: String, path: String) throws(StrictJSONError) -> String {
        let lower = text.lowercased()
        guard logLevels.contains(lower) else {
            throw StrictJSONError(path: path, message: "\"\(text)\" is not a log level (\(logLevels.sorted().joined(separator: ", ")))")
        }
        return lower
    }

    static func validFormat(_ text: String, path: String) throws(StrictJSONError) -> LogFormat {
        guard let format = LogFormat(rawValue: text.lowercased()) else {
            throw StrictJSONError(path: path, message: "\"\(text)\" is not a log format (text, json)")
        }
        return format
    }

    /// Admin and API tokens must be long enough that guessing is hopeless and printable so headers carry them.
    public static func validToken(_ text: String, path: String) throws(StrictJSONError) -> String {
        guard text.utf8.count >= 24 else {
            throw StrictJSONError(path: path, message: "must be at least 24 characters (use a random value, e.g. `openssl rand -hex 32`)")
        }
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw StrictJSONError(path: path, message: "must be printable ASCII without spaces")
        }
        return text
    }

    /// An RFC 3339 instant with an explicit offset (`2027-01-31T00:00:00Z`).
    static func validInstant(_ text: String, path: String) throws(StrictJSONError) -> Date {
        guard let date = RFC3339.parse(text) else {
            throw StrictJSONError(path: path, message: "\"\(text)\" is not an RFC 3339 instant such as 2027-01-31T00:00:00Z")
        }
        return date
    }

    /// An absolute http(s) URL without a trailing slash; `https` demands TLS (providers push only to HTTPS).
    static func validURL(_ text: String, path: String, https: Bool) throws(StrictJSONError) -> String {
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), let scheme = url.scheme, url.host != nil, url.query == nil,
            scheme == "https" || (!https && scheme == "http")
        else {
            throw StrictJSONError(path: path, message: "\"\(text)\" must be an absolute \(https ? "https" : "http(s)") URL without a query")
        }
        return trimmed
    }

    /// `google` / `microsoft`: endpoints, the sign-in client and its scopes.
    static func oauthProvider(_ object: StrictJSONObject, into settings: inout OAuthProviderSettings) throws(StrictJSONError) {
        try object.requireOnlyKeys(["token_url", "api_base_url", "client_id", "client_secret", "authorize_url", "scopes"])
        if let v = try object.string("token_url") { settings.tokenURL = try validURL(v, path: object.qualified("token_url"), https: false) }
        if let v = try object.string("api_base_url") { settings.apiBaseURL = try validURL(v, path: object.qualified("api_base_url"), https: false) }
        if let v = try object.string("client_id") { settings.clientID = try nonEmpty(v, object.qualified("client_id")) }
        if let v = try object.string("client_secret") { settings.clientSecret = try nonEmpty(v, object.qualified("client_secret")) }
        if let v = try object.string("authorize_url") { settings.authorizeURL = try validURL(v, path: object.qualified("authorize_url"), https: false) }
        if let v = try scopes(object, "scopes") { settings.scopes = v }
    }

    /// A scope list: a non-empty array of non-empty strings without spaces.
    static func scopes(_ object: StrictJSONObject, _ name: String) throws(StrictJSONError) -> [String]? {
        guard let items = try object.array(name) else { return nil }
        var scopes: [String] = []
        for item in items {
            guard case .string(let scope) = item, !scope.isEmpty, !scope.contains(" ") else {
                throw StrictJSONError(path: object.qualified(name), message: "must be an array of scope strings without spaces")
            }
            scopes.append(scope)
        }
        guard !scopes.isEmpty else { throw StrictJSONError(path: object.qualified(name), message: "must name at least one scope") }
        return scopes
    }

    /// LeadCenter's sign-in result page: an absolute http(s) URL (it may carry a query; calgate appends to it).
    static func validResultURL(_ text: String, path: String) throws(StrictJSONError) -> String {
        guard let url = URL(string: text), let scheme = url.scheme, url.host != nil, scheme == "https" || scheme == "http", url.fragment == nil else {
            throw StrictJSONError(path: path, message: "\"\(text)\" must be an absolute http(s) URL without a fragment")
        }
        return text
    }

    private static func nonEmpty(_ text: String, _ path: String) throws(StrictJSONError) -> String {
        guard !text.isEmpty else { throw StrictJSONError(path: path, message: "must not be empty") }
        return text
    }
}
