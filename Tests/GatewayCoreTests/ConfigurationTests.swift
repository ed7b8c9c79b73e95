import Foundation
import Testing
@testable import GatewayCore

@Suite("Configuration")
struct ConfigurationTests {
    @Test func defaultsServeOnOneMachine() {
        let config = GatewayConfiguration()
        #expect(config.listen.description == "127.0.0.1:8443")
        #expect(config.dataDirectory == "./data")
        #expect(config.effectiveDatabasePath == "./data/calgate.sqlite")
        #expect(config.routesDirectory == "routes")
    }

    @Test func parsesListenAddresses() throws {
        #expect(try ListenAddress(parsing: "0.0.0.0:443") == ListenAddress(host: "0.0.0.0", port: 443))
        #expect(try ListenAddress(parsing: "[::1]:8443") == ListenAddress(host: "::1", port: 8443))
        #expect(try ListenAddress(parsing: "localhost:0").port == 0)
        #expect(ListenAddress(host: "::1", port: 1).description == "[::1]:1")
        for bad in ["", "8443", ":8443", "host:", "host:99999", "host:-1", "::1:8443", "[::1]8443", "[::1]", "host:12ab"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try ListenAddress(parsing: bad) }
        }
    }

    @Test func readsAFullFile() throws {
        let json = """
            {"listen": "[::1]:9443", "data_dir": "/var/lib/calgate", "routes_dir": "/etc/calgate/routes",
             "tls": {"certificate": "/etc/c.pem", "private_key": "/etc/c.key", "session_resumption": false, "handshake_timeout_s": 5},
             "admin_token": "0123456789abcdef0123456789abcdef",
             "log": {"level": "DEBUG", "format": "json"},
             "limits": {"max_header_bytes": 8192, "max_header_count": 50, "idle_timeout_s": 30, "header_timeout_s": 5,
                        "body_timeout_s": 10, "max_connections": 100, "event_loop_threads": 1},
             "health": {"certificate_warning_days": 30, "inbox_backlog_degraded": 10, "inbox_backlog_failing": 20},
             "shutdown_grace_s": 3,
             "microsoft": {"token_url": "http://127.0.0.1:8601/common/oauth2/v2.0/token", "api_base_url": "http://127.0.0.1:8601/v1.0"}}
            """
        let config = try GatewayConfiguration.parse(Data(json.utf8), file: "c.json")
        #expect(config.microsoft.apiBaseURL == "http://127.0.0.1:8601/v1.0")
        #expect(config.microsoft.tokenURL.hasSuffix("/common/oauth2/v2.0/token"))
        #expect(GatewayConfiguration().microsoft.apiBaseURL == "https://graph.microsoft.com/v1.0")
        let tuned = try GatewayConfiguration.parse(Data(#"{"maintenance": {"renewal_check_interval_s": 60, "reconciliation_interval_s": 600, "partition_lease_s": 6}}"#.utf8), file: "m.json")
        #expect(tuned.maintenance.renewalCheckIntervalSeconds == 60)
        #expect(tuned.maintenance.reconciliationIntervalSeconds == 600)
        #expect(tuned.maintenance.renewalMinimumLeadSeconds == 86_400)
        #expect(tuned.maintenance.partitionLeaseSeconds == 6)
        #expect(GatewayConfiguration().maintenance.partitionLeaseSeconds == 10)
        #expect(config.listen == ListenAddress(host: "::1", port: 9443))
        #expect(config.effectiveDatabasePath == "/var/lib/calgate/calgate.sqlite")
        #expect(config.tls.certificatePath == "/etc/c.pem")
        #expect(config.tls.sessionResumption == false)
        #expect(config.logLevel == "debug")
        #expect(config.logFormat == .json)
        #expect(config.limits.maxConnections == 100)
        #expect(config.limits.eventLoopThreads == 1)
        #expect(GatewayConfiguration().limits.eventLoopThreads == nil, "one per core unless set")
        #expect(config.health.inboxBacklogFailing == 20)
        #expect(config.shutdownGraceSeconds == 3)
    }

    @Test func rejectsBadFilesWithTheSettingNamed() {
        let cases: [(String, String)] = [
            ("{", "c.json: is not valid JSON"),
            ("[]", "must be an object"),
            (#"{"lisen": "x:1"}"#, "lisen: is not a known key"),
            (#"{"listen": "nope"}"#, "listen"),
            (#"{"listen": 8443}"#, "listen: must be a string"),
            (#"{"limits": {"idle_timeout_s": 0}}"#, "limits.idle_timeout_s: must be between 1"),
            (#"{"limits": {"idle_timeout": 5}}"#, "limits.idle_timeout: is not a known key"),
            (#"{"limits": {"max_connections": true}}"#, "must be an integer, found a boolean"),
            (#"{"limits": {"event_loop_threads": 0}}"#, "limits.event_loop_threads: must be between 1"),
            (#"{"maintenance": {"partition_lease_s": 1}}"#, "maintenance.partition_lease_s: must be between 2"),
            (#"{"maintenance": {"partition_lease_s": 601}}"#, "maintenance.partition_lease_s: must be between 2"),
            (#"{"maintenance": {"partition_lease_s": "10"}}"#, "maintenance.partition_lease_s: must be an integer"),
            (#"{"limits": {"event_loop_threads": "2"}}"#, "limits.event_loop_threads: must be an integer"),
            (#"{"log": {"level": "loud"}}"#, "log.level: \"loud\" is not a log level"),
            (#"{"log": {"format": "xml"}}"#, "not a log format"),
            (#"{"tls": {"certificate": "/c.pem"}}"#, "must be set together"),
            (#"{"admin_token": "short"}"#, "at least 24 characters"),
            (#"{"admin_token": "has spaces in it but is long enough"}"#, "printable ASCII"),
            (#"{"health": {"inbox_backlog_degraded": 10, "inbox_backlog_failing": 10}}"#, "must be larger"),
            (#"{"data_dir": ""}"#, "data_dir: must not be empty"),
            (#"{"microsoft": {"tenant": "common"}}"#, "microsoft.tenant: is not a known key"),
            (#"{"microsoft": {"api_base_url": "graph.microsoft.com"}}"#, "microsoft.api_base_url"),
            (#"{"microsoft": {"token_url": 5}}"#, "microsoft.token_url: must be a string"),
            (#"{"microsoft": "https://graph.microsoft.com"}"#, "microsoft"),
            (#"{"maintenance": {"reconciliation_interval_s": 5}}"#, "maintenance.reconciliation_interval_s: must be between 60"),
            (#"{"maintenance": {"renewal_minimum_lead_s": 604800}}"#, "maintenance.renewal_minimum_lead_s"),
            (#"{"maintenance": {"sweep": 1}}"#, "maintenance.sweep: is not a known key"),
            (#"{"redtail": {"auth_scheme": "digest"}}"#, "redtail.auth_scheme: \"digest\" is not one of"),
            (#"{"redtail": {"poll_interval_s": 5}}"#, "redtail.poll_interval_s: must be between 30"),
            (#"{"redtail": {"base_url": "ftp://x"}}"#, "redtail.base_url"),
            (#"{"redtail": {"api_key": "k"}}"#, "redtail.api_key: is not a known key"),
            (#"{"max_connections_per_user": 0}"#, "max_connections_per_user: must be between 1"),
        ]
        for (json, expected) in cases {
            do {
                _ = try GatewayConfiguration.parse(Data(json.utf8), file: "c.json")
                Issue.record("accepted \(json)")
            } catch {
                #expect(error.description.contains(expected), "\(error.description) should contain \(expected)")
            }
        }
    }

    @Test func environmentOverridesTheFile() throws {
        let file = try GatewayConfiguration.parse(Data(#"{"listen": "127.0.0.1:1000", "log": {"level": "info"}}"#.utf8), file: "c.json")
        let config = try file.applying(environment: [
            "CALGATE_LISTEN": "127.0.0.1:2000", "CALGATE_LOG_LEVEL": "warning", "CALGATE_DATA_DIR": "/tmp/x",
            "CALGATE_ADMIN_TOKEN": String(repeating: "a", count: 32), "CALGATE_MAX_CONNECTIONS": "7",
            "UNRELATED": "1",
        ])
        #expect(config.listen.port == 2000)
        #expect(config.logLevel == "warning")
        #expect(config.dataDirectory == "/tmp/x")
        #expect(config.adminToken?.count == 32)
        #expect(config.limits.maxConnections == 7)
    }

    @Test func rejectsBadEnvironmentValuesNamingTheVariable() {
        let cases: [([String: String], String)] = [
            (["CALGATE_LISTEN": "x"], "CALGATE_LISTEN"),
            (["CALGATE_LISTEN": ""], "CALGATE_LISTEN: is set but empty"),
            (["CALGATE_LOG_LEVEL": "loud"], "CALGATE_LOG_LEVEL"),
            (["CALGATE_LOG_FORMAT": "xml"], "CALGATE_LOG_FORMAT"),
            (["CALGATE_ADMIN_TOKEN": "short"], "CALGATE_ADMIN_TOKEN"),
            (["CALGATE_MAX_CONNECTIONS": "many"], "CALGATE_MAX_CONNECTIONS"),
            (["CALGATE_TLS_CERT": "/c.pem"], "must be set together"),
        ]
        for (env, expected) in cases {
            do {
                _ = try GatewayConfiguration().applying(environment: env)
                Issue.record("accepted \(env)")
            } catch {
                #expect(error.description.contains(expected), "\(error.description) should contain \(expected)")
            }
        }
    }
}
