import CalgateMacros

/// A response: the final status, its headers and the body.
@MemberwiseInit
public struct CurlHTTPResponse: Sendable {
    /// Status code of the last response (informational 1xx responses are skipped).
    public var status: Int
    /// Headers of the last response, in the order received.
    public var headers: [CurlHTTPHeader] = []
    /// Body bytes (decoded if the server compressed them).
    public var body: [UInt8] = []
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2` or `HTTP/3`.
    public var httpVersion: String = "HTTP/1.1"

    /// First value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        headers.first { Self.sameName($0.name, name) }?.value
    }

    /// Every value of a header, by case-insensitive name, in order.
    public func headers(named name: String) -> [String] {
        headers.filter { Self.sameName($0.name, name) }.map(\.value)
    }

    /// ASCII case-insensitive comparison (header names are ASCII tokens; no locale or Unicode folding).
    private static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count
            && zip(a.utf8, b.utf8).allSatisfy { x, y in
                x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
            }
    }
}
