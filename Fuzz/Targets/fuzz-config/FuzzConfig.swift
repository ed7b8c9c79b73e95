import CLibFuzzer
import Foundation
import GatewayCore

/// The configuration loader on arbitrary bytes: a configuration or a `ConfigurationError`, never a crash. Bytes after
/// a NUL are read as `NAME=value` lines for `applying(environment:)`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
    var environment: [String: String] = [:]
    if split < bytes.endIndex {
        for line in String(decoding: bytes[(split + 1)...], as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
        }
    }
    guard let configuration = try? GatewayConfiguration.parse(Data(bytes[..<split]), file: "fuzz.json") else { return 0 }
    _ = try? configuration.checkConsistency(pathPrefix: "fuzz.json: ")
    if let applied = try? configuration.applying(environment: environment) {
        _ = try? applied.checkConsistency(pathPrefix: "environment: ")
    }
    _ = try? ListenAddress(parsing: String(decoding: bytes[..<split].prefix(64), as: UTF8.self))
    return 0
}

/// The executable's entry point: libFuzzer's driver with this target's callback.
@_cdecl("fuzz_config_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzConfig(data, size) }
}
