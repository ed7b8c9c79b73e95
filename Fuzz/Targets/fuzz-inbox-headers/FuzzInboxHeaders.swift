import CLibFuzzer
import Foundation
import SQLiteStore

/// The inbox headers codec: decoding arbitrary column text never crashes, and whatever it decodes survives an
/// encode/decode round trip unchanged; a dictionary built from the input round-trips too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInboxHeaders(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    let decoded = InboxHeadersCodec.decode(text)
    precondition(InboxHeadersCodec.decode(InboxHeadersCodec.encode(decoded)) == decoded, "decoded headers do not round-trip")
    // Pairs separated by 0xFF bytes (never valid UTF-8, so they cannot appear inside a key or value).
    let parts = bytes.split(separator: 0xFF, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    var headers: [String: String] = [:]
    var index = 0
    while index + 1 < parts.count {
        headers[parts[index]] = parts[index + 1]
        index += 2
    }
    precondition(InboxHeadersCodec.decode(InboxHeadersCodec.encode(headers)) == headers, "encoded headers do not round-trip")
    return 0
}

/// The executable's entry point: libFuzzer's driver with this target's callback.
@_cdecl("fuzz_inbox_headers_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzInboxHeaders(data, size) }
}
