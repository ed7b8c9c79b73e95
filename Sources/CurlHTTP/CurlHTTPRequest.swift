import CalgateMacros

/// An outbound request.
@MemberwiseInit
public struct CurlHTTPRequest: Sendable {
    /// Method (`GET`, `POST`, `PATCH`, …); any token is sent as is.
    public var method: String = "GET"
    /// Absolute `http` or `https` URL.
    public var url: String
    /// Request headers, sent in order; an empty value is sent as an empty header. `Content-Length` is ignored
    /// (curl derives it from `body`); `User-Agent`, `Content-Type` and `Expect` replace curl's defaults.
    public var headers: [CurlHTTPHeader] = []
    /// Body bytes, copied into curl; nil sends none (`POST`, `PUT` and `PATCH` then send an empty body).
    public var body: [UInt8]? = nil
    /// Total time allowed for this request, including time queued behind `maxConcurrentRequests`; nil uses the
    /// client's `requestTimeout`.
    public var timeout: Duration? = nil
}

extension CurlHTTPRequest {
    /// Rejects what curl would silently truncate or what would let a value inject protocol lines.
    func validate() throws(CurlHTTPError) {
        let url = self.url
        let lowered = url.prefix(8).lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else {
            throw CurlHTTPError(.invalidURL, "\(CurlHTTPError.redact(url)) is not an absolute http(s) URL")
        }
        // curl reads the URL as a C string: a NUL would cut it short; control characters are never valid in a URL.
        guard !url.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }) else {
            throw CurlHTTPError(.invalidURL, "\(CurlHTTPError.redact(url)) contains spaces or control characters")
        }
        guard !method.isEmpty, method.utf8.allSatisfy(Self.isTokenByte) else {
            throw CurlHTTPError(.invalidRequest, "\(CurlHTTPError.redact(url)): method is not an HTTP token")
        }
        for header in headers {
            guard !header.name.isEmpty, header.name.utf8.allSatisfy(Self.isTokenByte) else {
                throw CurlHTTPError(.invalidRequest, "\(CurlHTTPError.redact(url)): header name is not an HTTP token")
            }
            // The value is never quoted in the message: headers carry credentials.
            guard !header.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw CurlHTTPError(.invalidRequest, "\(CurlHTTPError.redact(url)): header \(header.name) has a line break or NUL in its value")
            }
        }
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
