import ArgumentParser
import CurlHTTP
import Foundation
import GatewayCore
import GatewayHTTP

/// `calgate status`: the console's overview as a terminal table, read from `GET /admin/api/overview` with the admin
/// token (the configured one, or `<data_dir>/admin-token`).
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show connections, inbox backlog, notification and sync rates, missed-by-push counts and subscription renewals of a running gateway."
    )

    @OptionGroup var options: ServeOptions

    @Option(name: .customLong("url"), help: "The gateway's base URL. Default https://<listen address> (127.0.0.1 for a wildcard listen).")
    var url: String?

    @Option(name: .customLong("cacert"), help: "CA certificate to trust. Default: the dev CA in the certificate directory when no certificate is configured.")
    var caFile: String?

    @Flag(name: .customLong("json"), help: "Print the overview document as JSON instead of tables.")
    var json = false

    func run() async throws {
        let config = try options.loadConfiguration()
        let token = try adminToken(config)
        let base = try baseURL(config)
        var clientConfiguration = CurlHTTPClient.Configuration()
        clientConfiguration.requestTimeout = .seconds(10)
        clientConfiguration.caBundlePath = try trustedCA(config)
        let client = try CurlHTTPClient(configuration: clientConfiguration)
        let response: CurlHTTPResponse
        do {
            response = try await client.execute(
                CurlHTTPRequest(
                    url: base + "/admin/api/overview", headers: [CurlHTTPHeader("Authorization", "Bearer \(token)")]
                ))
        } catch {
            await client.shutdown()
            throw CLIError("cannot reach the gateway at \(base): \(error) (is it running? pass --url and --cacert if it listens elsewhere)")
        }
        await client.shutdown()
        switch response.status {
        case 200: break
        case 401: throw CLIError("the gateway at \(base) refused the admin token; check admin_token / <data_dir>/admin-token (--data-dir)")
        default: throw CLIError("the gateway at \(base) answered \(response.status) to /admin/api/overview: \(String(decoding: response.body.prefix(300), as: UTF8.self))")
        }
        let document: JSONValue
        do { document = try JSONValue.parse(Data(response.body)) } catch {
            throw CLIError("the gateway at \(base) sent an overview that is not JSON: \(error.message)")
        }
        if json {
            FileHandle.standardOutput.write(Data(document.serialized()) + Data("\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data(StatusReport(document: document, base: base).text.utf8))
        }
    }

    func adminToken(_ config: GatewayConfiguration) throws -> String {
        if let token = config.adminToken { return token }
        let file = AdminTokenFile.path(dataDirectory: config.dataDirectory)
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw CLIError("\(file): no admin token to read; pass --data-dir of the running gateway, or set CALGATE_ADMIN_TOKEN")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func baseURL(_ config: GatewayConfiguration) throws -> String {
        if let url {
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else { throw CLIError("--url \"\(url)\" must start with https://") }
            return url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        var host = config.listen.host
        if host == "0.0.0.0" { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        return host.contains(":") ? "https://[\(host)]:\(config.listen.port)" : "https://\(host):\(config.listen.port)"
    }

    func trustedCA(_ config: GatewayConfiguration) throws -> String? {
        if let caFile {
            guard FileManager.default.fileExists(atPath: caFile) else { throw CLIError("--cacert \(caFile) does not exist") }
            return caFile
        }
        guard config.tls.certificatePath == nil else { return nil }
        let devCA = (config.tls.devCertificateDirectory as NSString).appendingPathComponent("dev-ca.pem")
        return FileManager.default.fileExists(atPath: devCA) ? devCA : nil
    }
}

/// The overview document as aligned text tables.
struct StatusReport {
    let document: JSONValue
    let base: String

    func value(_ path: String...) -> JSONValue? {
        var node: JSONValue? = document
        for key in path {
            guard case .object(let object)? = node else { return nil }
            node = object[key]
        }
        return node
    }

    func int(_ path: String...) -> Int {
        var node: JSONValue? = document
        for key in path {
            guard case .object(let object)? = node else { return 0 }
            node = object[key]
        }
        if case .integer(let number)? = node { return Int(number) }
        return 0
    }

    func string(_ node: JSONValue?) -> String {
        if case .string(let text)? = node { return text }
        return ""
    }

    static func table(_ header: [String], _ rows: [[String]], numeric: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return numeric.contains(index) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces) + "\n"
        }
        return line(header) + rows.map(line).joined()
    }

    static func duration(_ seconds: Double) -> String {
        let total = Int(max(0, seconds))
        if total < 60 { return "\(total) s" }
        if total < 3600 { return "\(total / 60) min" }
        if total < 86_400 { return "\(total / 3600) h \(total % 3600 / 60) min" }
        return "\(total / 86_400) d \(total % 86_400 / 3600) h"
    }

    var text: String {
        var out = "calgate at \(base): \(string(value("status")))   (\(string(value("generated_at"))))\n\n"
        let providers = ["google", "microsoft", "redtail"]
        out += Self.table(
            ["PROVIDER", "ACTIVE", "DEGRADED", "NEEDS_RECONNECT", "DISCONNECTED", "ACCEPTED/MIN", "SYNCS/MIN", "FAILED/MIN", "MISSED_BY_PUSH"],
            providers.map { provider in
                [
                    provider, String(int("connections", provider, "active")), String(int("connections", provider, "degraded")),
                    String(int("connections", provider, "needs_reconnect")), String(int("connections", provider, "disconnected")),
                    String(int("last_minute", "notifications_accepted", provider)),
                    String(int("last_minute", "syncs_succeeded", provider) + int("last_minute", "syncs_failed", provider)),
                    String(int("last_minute", "syncs_failed", provider)),
                    provider == "redtail" ? "-" : String(int("missed_by_push", provider)),
                ]
            },
            numeric: Set(1...8)
        )
        let oldest: String
        if case .integer(let age)? = value("inbox", "oldest_age_s") { oldest = Self.duration(Double(age)) } else { oldest = "-" }
        out += "\nInbox backlog: \(int("inbox", "backlog")) (oldest waiting \(oldest))   Running syncs: \(int("running_syncs"))\n"
        out += "Renewals due in 24 h: \(int("renewals_due_24h"))   Lapsed subscriptions: \(int("lapsed_subscriptions"))\n"
        if case .object(let rejected)? = value("last_minute", "notifications_rejected"), !rejected.isEmpty {
            out += "\nNotifications rejected in the last minute:\n"
            out += Self.table(
                ["PROVIDER/REASON", "COUNT"],
                rejected.sorted { $0.key < $1.key }.map { key, count in
                    if case .integer(let number) = count { return [key, String(number)] }
                    return [key, "?"]
                }, numeric: [1])
        } else {
            out += "Notifications rejected in the last minute: none\n"
        }
        if case .array(let owners)? = value("partitions", "owners") {
            let me = string(value("partitions", "this_instance"))
            out += "\nPartitions (\(int("partitions", "count")) in all), by instance:\n"
            out += Self.table(
                ["INSTANCE", "PARTITIONS", "HEARTBEAT"],
                owners.map { item in
                    guard case .object(let fields) = item else { return ["?", "", ""] }
                    var count = 0
                    if case .integer(let number)? = fields["partitions"] { count = Int(number) }
                    let name = string(fields["instance"])
                    return [name + (name == me ? " (this one)" : ""), String(count), fields["live"] == .bool(false) ? "lapsed" : "live"]
                }, numeric: [1])
        }
        let formatter = ISO8601DateFormatter()
        let now = formatter.date(from: string(value("generated_at"))) ?? Date()
        if case .array(let subscriptions)? = value("subscriptions"), !subscriptions.isEmpty {
            out += "\nSubscriptions:\n"
            let rows: [[String]] = subscriptions.map { item in
                guard case .object(let fields) = item else { return ["?", "", "", "", "", ""] }
                let lapsed = fields["lapsed"] == .bool(true)
                let expires = formatter.date(from: string(fields["expires_at"])) ?? now
                let renew = formatter.date(from: string(fields["renew_at"])) ?? now
                return [
                    string(fields["provider"]), string(fields["connection_id"]), string(fields["calendar_name"]),
                    lapsed ? "lapsed \(Self.duration(now.timeIntervalSince(expires))) ago" : Self.duration(expires.timeIntervalSince(now)),
                    lapsed ? "-" : renew <= now ? "overdue" : Self.duration(renew.timeIntervalSince(now)),
                ]
            }
            out += Self.table(["PROVIDER", "CONNECTION", "CALENDAR", "EXPIRES IN", "RENEWAL IN"], rows)
        } else {
            out += "\nSubscriptions: none live\n"
        }
        return out
    }
}
