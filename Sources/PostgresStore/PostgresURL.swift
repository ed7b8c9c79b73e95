import Foundation

/// A parsed `postgres://user[:password]@host[:port]/database[?sslmode=…]` URL.
///
/// Hand-parsed rather than through `URLComponents` so every error can say which part is wrong without ever
/// repeating the URL (it may hold the password).
struct PostgresURL: Sendable, Equatable {
    enum SSLMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    var user: String
    var password: String?
    var host: String
    var port: Int
    var database: String
    var sslMode: SSLMode

    /// `host:port` for messages (never the user or password).
    var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    init(parsing text: String) throws(PostgresStoreError) {
        func bad(_ what: String) -> PostgresStoreError {
            PostgresStoreError(.invalidURL, "invalid database URL: \(what) (expected postgres://user[:password]@host[:port]/database)")
        }
        let rest: Substring
        if let range = text.range(of: "://") {
            let scheme = text[..<range.lowerBound].lowercased()
            guard scheme == "postgres" || scheme == "postgresql" else {
                // The scheme is printable: it is before any credentials.
                throw bad("the scheme must be postgres:// or postgresql://, not \(scheme.prefix(20))://")
            }
            rest = text[range.upperBound...]
        } else {
            throw bad("the scheme must be postgres:// or postgresql://")
        }
        // Authority ends at the first '/', '?' or '#'; the password may contain '/', so split at the last '@' first.
        var authorityAndPath = rest
        var query: Substring = ""
        if let mark = authorityAndPath.firstIndex(of: "?") {
            query = authorityAndPath[authorityAndPath.index(after: mark)...]
            authorityAndPath = authorityAndPath[..<mark]
        }
        var userInfo: Substring?
        var hostAndPath = authorityAndPath
        if let at = authorityAndPath.lastIndex(of: "@") {
            userInfo = authorityAndPath[..<at]
            hostAndPath = authorityAndPath[authorityAndPath.index(after: at)...]
        }
        let hostPort: Substring
        var path: Substring = ""
        if let slash = hostAndPath.firstIndex(of: "/") {
            hostPort = hostAndPath[..<slash]
            path = hostAndPath[hostAndPath.index(after: slash)...]
        } else {
            hostPort = hostAndPath
        }

        // Host and port; an IPv6 literal is bracketed.
        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw bad("an IPv6 host is missing its closing ]") }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("unexpected text after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = hostPort
        }
        guard !host.isEmpty else { throw bad("the host is missing") }
        var port = 5432
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw bad("the port must be a number from 1 to 65535, not \"\(portText.prefix(12))\"")
            }
            port = value
        }

        guard let user = userInfo.map({ $0.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false) }),
            let first = user.first, !first.isEmpty
        else {
            throw bad("the user name is missing (user@host)")
        }
        guard let userName = String(first).removingPercentEncoding else { throw bad("the user name has a bad %-escape") }
        var password: String?
        if user.count > 1 {
            guard let decoded = String(user[1]).removingPercentEncoding else { throw bad("the password has a bad %-escape") }
            password = decoded
        }

        guard !path.isEmpty else { throw bad("the database name is missing (…/database)") }
        guard let database = String(path).removingPercentEncoding, !database.isEmpty, !database.contains("/") else {
            throw bad("the database name is not valid")
        }

        // TLS stays off unless the URL asks for it (loopback clusters, the tests and the scale-out set-up have none).
        var sslMode: SSLMode = .disable
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0]
            let value = parts.count > 1 ? parts[1] : ""
            switch key {
            case "sslmode":
                guard let mode = SSLMode(rawValue: String(value)) else {
                    throw bad("sslmode must be disable, prefer or require, not \"\(value.prefix(20))\"")
                }
                sslMode = mode
            default:
                throw bad("unknown parameter \"\(key.prefix(30))\" (only sslmode is understood)")
            }
        }

        self.user = userName
        self.password = password
        self.host = String(host)
        self.port = port
        self.database = database
        self.sslMode = sslMode
    }
}
