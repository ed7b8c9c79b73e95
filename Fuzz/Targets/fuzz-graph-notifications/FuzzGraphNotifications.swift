import CLibFuzzer
import Foundation
import GatewayCore
import MicrosoftGraph

/// The Graph change- and lifecycle-notification decoders on arbitrary bodies. The first byte picks lifecycle or
/// change; every decoded item must become an inbox entry, and the query parser must handle the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGraphNotifications(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let lifecycle = bytes[0] & 1 == 1
    let body = Array(bytes.dropFirst())
    if let notifications = try? GraphNotificationDecoder.decode(body, lifecycle: lifecycle) {
        precondition(!notifications.isEmpty && notifications.count <= GraphNotificationDecoder.maximumItems)
        for notification in notifications {
            precondition(!notification.subscriptionID.isEmpty)
            let entry = GraphNotificationDecoder.inboxEntry(for: notification, receivedAt: Date(timeIntervalSince1970: 0))
            precondition(entry.channelID == notification.subscriptionID)
            precondition((entry.dedupeKey == nil) == lifecycle, "lifecycle notifications are never deduplicated, changes always")
        }
    }
    _ = GraphNotificationDecoder.validationToken(inQuery: String(decoding: body, as: UTF8.self))
    return 0
}

/// The executable's entry point: libFuzzer's driver with this target's callback.
@_cdecl("fuzz_graph_notifications_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzGraphNotifications(data, size) }
}
