/// One HTTP header field.
public struct CurlHTTPHeader: Sendable, Hashable {
    /// Field name as sent or received.
    public var name: String
    /// Field value.
    public var value: String

    /// Creates a header.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// An outbound request.
public struct CurlHTTPRequest: Sendable {
    /// Method (`GET`, `POST`, `PATCH`, …).
    public var method: String
    /// Absolute `http` or `https` URL.
    public var url: String
    /// Request headers.
    public var headers: [CurlHTTPHeader]
    /// Body bytes, copied into curl; nil sends none.
    public var body: [UInt8]?
    /// Total time allowed for this request; nil uses the client's default.
    public var timeout: Duration?

    /// Creates a request.
    public init(method: String = "GET", url: String, headers: [CurlHTTPHeader] = [], body: [UInt8]? = nil, timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// A response: the final status, its headers and the body.
public struct CurlHTTPResponse: Sendable {
    /// Status code of the last response (after any 100-continue).
    public var status: Int
    /// Headers of the last response.
    public var headers: [CurlHTTPHeader]
    /// Body bytes.
    public var body: [UInt8]
    /// `HTTP/1.1` or `HTTP/2`.
    public var httpVersion: String

    /// First value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }
}

/// Why a request failed; the message names the URL without its query (queries can carry tokens).
public struct CurlHTTPError: Error, CustomStringConvertible, Sendable {
    /// Failure classes callers act on.
    public enum Kind: Sendable, Hashable {
        /// The request took longer than its timeout.
        case timeout
        /// No connection could be made.
        case connectFailed
        /// TLS failed (handshake or certificate verification).
        case tlsFailed
        /// The body exceeded the client's limit.
        case responseTooLarge
        /// The URL was not usable.
        case invalidURL
        /// The client was shut down.
        case shutDown
        /// Anything else curl reported.
        case other
    }

    /// The failure class.
    public let kind: Kind
    /// What happened, with curl's own words.
    public let message: String

    /// `kind: message`.
    public var description: String { "\(kind): \(message)" }

    static func redact(_ url: String) -> String {
        String(url.prefix { $0 != "?" && $0 != "#" })
    }
}
