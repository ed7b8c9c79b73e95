import CalgateMacros
import Foundation

/// Why a request failed; the message names the method's URL without query, fragment or credentials.
///
/// Never put header values or bodies in a message: they carry tokens.
@MemberwiseInit
public struct CurlHTTPError: Error, CustomStringConvertible, Sendable {
    /// A failure class callers act on; compare with `==` (new classes may be added, so no exhaustive switch).
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Code: String, Sendable, Hashable {
            case timeout, connectFailed, tlsFailed, responseTooLarge, invalidURL, invalidRequest, shutDown, other
        }
        private let code: Code
        private init(_ code: Code) { self.code = code }

        /// The request took longer than its timeout (connecting, waiting in the queue or transferring).
        public static let timeout = Kind(.timeout)
        /// No connection could be made: refused, unreachable, or the name did not resolve.
        public static let connectFailed = Kind(.connectFailed)
        /// TLS failed: handshake, or the peer's certificate did not verify.
        public static let tlsFailed = Kind(.tlsFailed)
        /// The response body exceeded `maxResponseBodyBytes`.
        public static let responseTooLarge = Kind(.responseTooLarge)
        /// The URL was not an absolute, well-formed http(s) URL.
        public static let invalidURL = Kind(.invalidURL)
        /// The method or a header was not sendable (not a token, or a line break in a value).
        public static let invalidRequest = Kind(.invalidRequest)
        /// The client was shut down before the request finished.
        public static let shutDown = Kind(.shutDown)
        /// Anything else curl reported (connection reset, empty reply, protocol error, …).
        public static let other = Kind(.other)

        /// The case name, e.g. `timeout`.
        public var description: String { code.rawValue }
    }

    /// The failure class.
    public let kind: Kind
    /// What happened, in curl's own words where it gave some, and what was being fetched.
    public let message: String

    init(_ kind: Kind, _ message: String) {
        self.init(kind: kind, message: message)
    }

    /// `kind: message`.
    public var description: String { "\(kind): \(message)" }

    /// The query, fragment and user-info of a URL (the parts `redact` removes), longest first.
    static func sensitiveParts(of url: String) -> [String] {
        var parts: [String] = []
        if let start = url.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            parts.append(String(url[url.index(after: start)...]))
        }
        if let schemeEnd = url.range(of: "://") {
            let rest = url[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@") { parts.append(String(rest[..<at])) }
        }
        return parts.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    /// The URL without query, fragment or `user:password@` (any of them can carry credentials).
    static func redact(_ url: String) -> String {
        let withoutQuery = url.prefix { $0 != "?" && $0 != "#" }
        guard let schemeEnd = withoutQuery.range(of: "://") else { return String(withoutQuery) }
        let rest = withoutQuery[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" } ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return String(withoutQuery) }
        return String(withoutQuery[..<schemeEnd.upperBound]) + String(rest[rest.index(after: at)...])
    }
}
