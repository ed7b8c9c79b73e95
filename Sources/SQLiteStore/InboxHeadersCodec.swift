import Foundation
import GatewayCore

/// The inbox's `headers` column: a flat JSON object of strings with sorted keys.
///
/// Hand-written because it runs for every acknowledged webhook: Foundation's `JSONSerialization` with sorted keys
/// cost more than the insert itself (a locale-aware key sort and bridging through `NSDictionary`). Encoding runs on
/// the appending thread, not the store's single database thread.
public enum InboxHeadersCodec {
    /// `{"a":"1","b":"2"}` with keys in byte order; `{}` when empty.
    public static func encode(_ headers: [String: String]) -> String {
        guard !headers.isEmpty else { return "{}" }
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(64 * headers.count)
        for (index, key) in headers.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendString(headers[key]!, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The object `encode` (or `JSONSerialization`, in earlier versions) wrote; `[:]` for text that is not a flat
    /// object of strings. Read with `JSONValue.parse`, which handles `\/` and `\uXXXX` surrogate pairs.
    public static func decode(_ text: String) -> [String: String] {
        guard case .object(let fields)? = try? JSONValue.parse(Data(text.utf8)) else { return [:] }
        var headers: [String: String] = [:]
        for (name, value) in fields {
            guard case .string(let text) = value else { return [:] }
            headers[name] = text
        }
        return headers
    }
}
