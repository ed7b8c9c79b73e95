import CLibFuzzer
import Foundation
import GatewayCore
import GoogleCalendar

/// The Google push verifier on arbitrary headers. Input: the first byte is the body length, the rest `name: value`
/// lines. The verifier must accept only pushes matching the channel, and every accepted one must carry its dedupe key.
let channel = GoogleChannel(
    id: "chan-1", resourceID: "res-primary-1", token: "tok-secret", calendarKey: "conn/primary",
    expiresAt: Date(timeIntervalSince1970: 1_900_000_000)
)
let verifier = GoogleChannelVerifier()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGoogleHeaders(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var headers: [String: String] = [:]
    for line in String(decoding: bytes.dropFirst(), as: UTF8.self).split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].drop(while: { $0 == " " })
        headers[name] = String(value)
    }
    let bodyLength = Int(bytes[0] & 0x03)
    let lookup = verifier.channelID(in: headers) == channel.id ? channel : nil
    switch verifier.verify(headers: headers, bodyLength: bodyLength, channel: lookup, receivedAt: Date(timeIntervalSince1970: 0)) {
    case .success(let push):
        precondition(bodyLength == 0, "accepted a push with a body")
        precondition(headers["x-goog-channel-token"] == channel.token, "accepted a wrong token")
        precondition(headers["x-goog-resource-id"] == channel.resourceID, "accepted a wrong resource")
        precondition(push.entry.dedupeKey == "google:\(channel.id):\(push.messageNumber)", "dedupe key does not name the message")
        precondition(push.messageNumber > 0)
    case .failure(let rejection):
        _ = rejection.rawValue
    }
    if let expiration = headers["x-goog-channel-expiration"] { _ = GoogleChannelVerifier.parseExpiration(expiration) }
    return 0
}

/// The executable's entry point: libFuzzer's driver with this target's callback.
@_cdecl("fuzz_google_headers_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzGoogleHeaders(data, size) }
}
