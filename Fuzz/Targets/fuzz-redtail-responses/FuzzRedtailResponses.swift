import CurlHTTP
import CLibFuzzer
import Foundation
import GatewayCore
import Redtail

/// Every Redtail response decoder on arbitrary bodies; the first byte picks the decoder (and the status for the
/// error classifier). Decoded activities also go through the mapper to appointments.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRedtailResponses(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Array(bytes.dropFirst())
    switch bytes[0] % 3 {
    case 0: _ = try? RedtailClient.decodeAuthentication(body)
    case 1:
        if let page = try? RedtailClient.decodeActivities(body) {
            precondition(page.totalPages >= 1)
            for activity in page.activities { _ = try? RedtailActivityMapper.appointment(activity, calendarKey: "redtail/1") }
        }
    default:
        let status = [400, 401, 403, 404, 429, 500, 502, 503][Int(bytes[0] / 3) % 8]
        let retryAfter = String(decoding: body.prefix(8), as: UTF8.self)
        _ =
            RedtailClient.classify(
                CurlHTTPResponse(status: status, headers: [CurlHTTPHeader("Retry-After", retryAfter)], body: body), what: "fuzz"
            ).description
    }
    return 0
}

/// The executable's entry point: libFuzzer's driver with this target's callback.
@_cdecl("fuzz_redtail_responses_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzRedtailResponses(data, size) }
}
