import CurlHTTP
import CLibFuzzer
import Foundation
import GatewayCore
import GoogleCalendar

/// Every Google Calendar response decoder on arbitrary bodies; the first byte picks the decoder (and the status for
/// the error classifier). Decoded events also go through the mapper to appointments.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGoogleResponses(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Array(bytes.dropFirst())
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    switch bytes[0] % 5 {
    case 0:
        if let page = try? GoogleCalendarClient.decodeEventsPage(body) {
            for event in page.items { _ = try? GoogleEventMapper.change(for: event, calendarKey: "conn/primary") }
        }
    case 1: _ = try? GoogleCalendarClient.decodeCalendarList(body)
    case 2: _ = try? GoogleCalendarClient.decodeWatch(body)
    case 3:
        let status = [200, 400, 401][Int(bytes[0] / 5) % 3]
        _ = try? GoogleCalendarClient.decodeToken(CurlHTTPResponse(status: status, body: body), now: now)
    default:
        let status = [400, 401, 403, 404, 410, 429, 500, 503][Int(bytes[0] / 5) % 8]
        let retryAfter = String(decoding: body.prefix(8), as: UTF8.self)
        _ =
            GoogleCalendarClient.classify(
                CurlHTTPResponse(status: status, headers: [CurlHTTPHeader("Retry-After", retryAfter)], body: body), what: "fuzz"
            ).description
    }
    return 0
}

/// The executable's entry point: libFuzzer's driver with this target's callback.
@_cdecl("fuzz_google_responses_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzGoogleResponses(data, size) }
}
