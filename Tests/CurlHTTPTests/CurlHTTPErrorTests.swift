@testable import CurlHTTP
import Testing

/// URL redaction: nothing after `?` or `#`, and no `user:password@`, ever reaches an error message.
@Suite("CurlHTTPError")
struct CurlHTTPErrorTests {
    @Test(arguments: [
        ("https://host/path?token=abc", "https://host/path"),
        ("https://host/path#frag", "https://host/path"),
        ("https://user:pw@host:8443/a/b?x=1", "https://host:8443/a/b"),
        ("https://host/a@b/c", "https://host/a@b/c"),
        ("https://u@host", "https://host"),
        ("not a url?x", "not a url"),
    ])
    func redactsQueriesAndCredentials(url: String, expected: String) {
        #expect(CurlHTTPError.redact(url) == expected)
    }

    @Test func sensitivePartsAreThoseRedactionRemoves() {
        #expect(CurlHTTPError.sensitiveParts(of: "https://user:pw@host/p?token=abc") == ["token=abc", "user:pw"])
        #expect(CurlHTTPError.sensitiveParts(of: "https://host/p").isEmpty)
    }

    @Test func describesKindAndMessage() {
        let error = CurlHTTPError(kind: .timeout, message: "GET https://host/x: Operation timed out")
        #expect("\(error)" == "timeout: GET https://host/x: Operation timed out")
        #expect(error.kind != .other)
    }
}
