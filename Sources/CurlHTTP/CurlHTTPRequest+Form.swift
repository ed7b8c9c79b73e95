extension CurlHTTPRequest {
    /// A POST of an `application/x-www-form-urlencoded` body that asks for JSON back: what OAuth token endpoints take.
    public static func formPost(_ url: String, body: String, timeout: Duration? = nil) -> CurlHTTPRequest {
        CurlHTTPRequest(
            method: "POST", url: url,
            headers: [CurlHTTPHeader("Content-Type", "application/x-www-form-urlencoded"), CurlHTTPHeader("Accept", "application/json")],
            body: Array(body.utf8), timeout: timeout
        )
    }

    /// `application/x-www-form-urlencoded` fields, every byte of names and values but the unreserved ones
    /// (`A-Z a-z 0-9 - . _ ~`) percent-encoded.
    public static func formBody(_ fields: [(String, String)]) -> String {
        fields.map { percentEncoded($0.0) + "=" + percentEncoded($0.1) }.joined(separator: "&")
    }

    /// `text` with every byte but the unreserved ones percent-encoded (also right for one URL path segment).
    public static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
