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
        var out: [UInt8] = []
        // Keys and values as they are plus quotes, colon and comma; escapes (rare) grow it.
        out.reserveCapacity(2 + headers.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 })
        out.append(UInt8(ascii: "{"))
        for (index, key) in headers.keys.sorted(by: precedesInByteOrder).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendString(headers[key]!, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Byte order of the UTF-8 forms (what `JSONSerialization`'s sorted keys gave for ASCII names), by `memcmp`.
    static func precedesInByteOrder(_ left: String, _ right: String) -> Bool {
        var left = left
        var right = right
        return left.withUTF8 { a in
            right.withUTF8 { b in
                let common = min(a.count, b.count)
                let order = common == 0 ? 0 : memcmp(a.baseAddress!, b.baseAddress!, common)
                return order != 0 ? order < 0 : a.count < b.count
            }
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// `text` as a JSON string: runs that need no escape are copied whole.
    private static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                appendEscaped(byte, to: &out)
                runStart = index + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ byte: UInt8, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
        case 0x0A: out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(UInt8(ascii: "r"))
        case 0x09: out.append(UInt8(ascii: "t"))
        default:
            out.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
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
