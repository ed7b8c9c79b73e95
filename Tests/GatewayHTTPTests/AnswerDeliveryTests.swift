import Foundation
import GatewayCore
@testable import GatewayHTTP
import TestSupport
import TLSTestClient
import Testing

/// Every path that closes a connection after an answer, over real TLS on loopback: the answer arrives whole before
/// the close, and every committed webhook row has its answer.
@Suite("Answer delivery", .serialized)
struct AnswerDeliveryTests {
    let channelID = "0badc0de-89ab-cdef-0123-456789abcdef"
    let token = "calendar=c1&nonce=delivery"

    func harness(_ configure: (inout GatewayConfiguration) -> Void = { _ in }) async throws -> GatewayHarness {
        let gateway = try await GatewayHarness(configure: configure)
        let sealed = try gateway.sealer.seal(Array(token.utf8), context: "google_channel:\(channelID)")
        try await gateway.store.saveGoogleChannel(StoredGoogleChannel(
            id: channelID, resourceID: "res-delivery", sealedToken: sealed, calendarKey: "conn-delivery/primary",
            expiresAt: Date().addingTimeInterval(3600), stoppedAt: nil
        ))
        return gateway
    }

    func push(_ number: Int, extra: String = "") -> String {
        "POST /webhooks/google HTTP/1.1\r\nHost: localhost\r\nX-Goog-Channel-ID: \(channelID)\r\n"
            + "X-Goog-Channel-Token: \(token)\r\nX-Goog-Resource-ID: res-delivery\r\n"
            + "X-Goog-Resource-State: exists\r\nX-Goog-Message-Number: \(number)\r\n\(extra)Content-Length: 0\r\n\r\n"
    }

    static func statuses(_ text: String) -> [Int] {
        text.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
    }

    func connect(_ gateway: GatewayHarness) async throws -> TLSTestClient {
        let options = TLSTestClientOptions(alpnProtocols: ["http/1.1"], caFile: gateway.certificates.caCertificate, handshakeTimeout: .seconds(10), ioTimeout: .seconds(10))
        return try await onThread { try TLSTestClient.connect(port: gateway.port, options: options) }
    }

    @Test func aClientThatHalfClosesAfterItsWebhookStillGetsTheAnswer() async throws {
        let gateway = try await harness()
        let client = try await connect(gateway)
        let text = try await onThread {
            try client.write(push(1) + push(2))
            client.shutdownWrite()
            return String(decoding: try client.readUntilClose(), as: UTF8.self)
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(Self.statuses(text) == [200, 200], "answered \(text.debugDescription)")
        let committed = try await gateway.store.pending(limit: 10).count
        #expect(committed == 2, "committed \(committed)")
        await gateway.shutdown()
    }
}

/// Runs blocking client work on a thread of its own, so Swift's cooperative threads are never blocked.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}
