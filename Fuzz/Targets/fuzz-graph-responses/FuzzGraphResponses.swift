import CurlHTTP
import CLibFuzzer
import Foundation
import GatewayCore
import MicrosoftGraph

/// Every Microsoft Graph response decoder on arbitrary bodies; the first byte picks the decoder (and the status for
/// the error classifier). Decoded delta items also go through the mapper (time zones, recurrence) to appointments,
/// and every link a page yields must point back at the configured base.
let base = "https://graph.example.test/v1.0"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGraphResponses(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Array(bytes.dropFirst())
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    switch bytes[0] % 6 {
    case 0:
        if let page = try? GraphClient.decodeDeltaPage(body, apiBaseURL: base) {
            precondition((page.nextLink == nil) != (page.deltaLink == nil))
            for link in [page.nextLink, page.deltaLink].compactMap({ $0 }) { precondition(link.hasPrefix(base + "/")) }
            for item in page.items { _ = try? GraphEventMapper.changes(for: item, calendarKey: "conn/cal") }
        }
    case 1:
        if let item = try? GraphClient.decodeEvent(body) { _ = try? GraphEventMapper.changes(for: item, calendarKey: "conn/cal") }
    case 2:
        if let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
            let page = try? GraphClient.decodeCalendarPage(object, apiBaseURL: base)
        {
            if let next = page.nextLink { precondition(next.hasPrefix(base + "/")) }
        }
    case 3: _ = try? GraphClient.subscription(CurlHTTPResponse(status: 201, body: body), what: "fuzz")
    case 4:
        let status = [200, 400, 401][Int(bytes[0] / 6) % 3]
        _ = try? GraphClient.decodeToken(CurlHTTPResponse(status: status, body: body), now: now)
    default:
        let status = [400, 401, 403, 404, 410, 429, 500, 503][Int(bytes[0] / 6) % 8]
        let retryAfter = String(decoding: body.prefix(8), as: UTF8.self)
        _ =
            GraphClient.classify(
                CurlHTTPResponse(status: status, headers: [CurlHTTPHeader("Retry-After", retryAfter)], body: body), what: "fuzz"
            ).description
    }
    return 0
}

/// The executable's entry point: libFuzzer's driver with this target's callback.
@_cdecl("fuzz_graph_responses_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzGraphResponses(data, size) }
}
