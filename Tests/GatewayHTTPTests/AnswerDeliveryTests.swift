import Foundation
import SQLiteStore
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
        try await gateway.store.saveGoogleChannel(
            StoredGoogleChannel(
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

    /// Statuses answered, and whether the server then closed, for `text` sent on one connection (read to the close).
    func exchange(_ gateway: GatewayHarness, _ text: String, halfClose: Bool = false) async throws -> String {
        let client = try await connect(gateway)
        return try await onThread {
            try client.write(text)
            if halfClose { client.shutdownWrite() }
            let answer = String(decoding: try client.readUntilClose(), as: UTF8.self)
            client.close()
            return answer
        }
    }

    func committed(_ gateway: GatewayHarness) async throws -> [String] {
        try await gateway.store.pending(limit: 100).compactMap(\.entry.dedupeKey).sorted()
    }

    @Test func aWebhookWithConnectionCloseIsAnsweredWholeThenClosed() async throws {
        let gateway = try await harness()
        let text = try await exchange(gateway, push(1, extra: "Connection: close\r\n"))
        #expect(Self.statuses(text) == [200])
        #expect(text.lowercased().contains("connection: close"))
        #expect(text.hasSuffix("\r\n\r\n"), "the answer ends with its head (Content-Length: 0): \(text.debugDescription)")
        #expect(try await committed(gateway) == ["google:\(channelID):1"])
        await gateway.shutdown()
    }

    @Test func aRouterRequestWithConnectionCloseIsAnsweredWithConnectionCloseThenClosed() async throws {
        let gateway = try await harness()
        let text = try await exchange(gateway, "GET /admin/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        #expect(Self.statuses(text) == [200])
        // Without it a client keeps the connection for its next request and finds it dead.
        #expect(text.lowercased().contains("connection: close"), "\(text)")
        await gateway.shutdown()
    }

    @Test func pipelinedRequestsEndingInConnectionCloseAreAllAnsweredAndNothingAfterIsCommitted() async throws {
        let gateway = try await harness()
        let text = try await exchange(
            gateway,
            push(1) + "GET /admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n" + push(2, extra: "Connection: close\r\n") + push(3)
        )
        #expect(Self.statuses(text) == [200, 200, 200])
        // The request after the closing one is neither answered nor committed.
        #expect(try await committed(gateway) == ["google:\(channelID):1", "google:\(channelID):2"])
        await gateway.shutdown()
    }

    @Test func aRouterRequestThatClosesStopsTheWebhooksPipelinedBehindIt() async throws {
        let gateway = try await harness()
        let text = try await exchange(
            gateway, push(1) + "GET /admin/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" + push(2)
        )
        #expect(Self.statuses(text) == [200, 200])
        #expect(try await committed(gateway) == ["google:\(channelID):1"])
        await gateway.shutdown()
    }

    @Test func aClientThatHalfClosesBehindPipelinedWebhooksAndRouterRequestsGetsEveryAnswer() async throws {
        let gateway = try await harness()
        let text = try await exchange(
            gateway, push(1) + "GET /admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n" + push(2) + push(3), halfClose: true
        )
        #expect(Self.statuses(text) == [200, 200, 200, 200])
        #expect(try await committed(gateway).count == 3)
        await gateway.shutdown()
    }

    @Test func theLastRequestBeforeTheIdleTimeoutIsAnsweredBeforeTheClose() async throws {
        let gateway = try await harness { $0.limits.idleTimeoutSeconds = 1 }
        let client = try await connect(gateway)
        let text = try await onThread {
            try client.write(push(1))
            Thread.sleep(forTimeInterval: 0.5)
            try client.write(push(2))
            // No further request: the idle timeout closes the connection after the second answer.
            return String(decoding: try client.readUntilClose(timeout: .seconds(5)), as: UTF8.self)
        }
        #expect(Self.statuses(text) == [200, 200])
        #expect(try await committed(gateway).count == 2)
        await gateway.shutdown()
    }

    @Test func refusalsThatCloseAreDeliveredWholeEvenWithTheBodyStillArriving() async throws {
        let gateway = try await harness()
        // 413 for a body sent anyway, with a pipelined request behind it that is never read.
        let big = String(repeating: "x", count: 300_000)
        let tooLarge = try await exchange(
            gateway,
            "POST /webhooks/microsoft HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 300000\r\n\r\n"
                + big + push(1)
        )
        #expect(Self.statuses(tooLarge) == [413])
        // 400 for bad framing (two Content-Length values), then more bytes the server must drop, not reset over.
        let badFraming = try await exchange(
            gateway,
            push(2).replacingOccurrences(of: "Content-Length: 0\r\n", with: "Content-Length: 0\r\nContent-Length: 5\r\n") + push(3)
        )
        #expect(Self.statuses(badFraming) == [400])
        #expect(try await committed(gateway).isEmpty)
        await gateway.shutdown()
    }

    @Test func gracefulShutdownAnswersEveryCommittedWebhookInFlight() async throws {
        let gateway = try await harness()
        let clients = try await withThrowingTaskGroup(of: TLSTestClient.self) { group in
            for _ in 0..<8 { group.addTask { try await connect(gateway) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Every client sends a burst; the shutdown starts while they are being committed and answered.
        let readers = Task {
            try await withThrowingTaskGroup(of: String.self) { group in
                for (index, client) in clients.enumerated() {
                    group.addTask {
                        try await onThread {
                            try client.write((0..<10).map { push(index * 100 + $0) }.joined())
                            return String(decoding: (try? client.readUntilClose(timeout: .seconds(10))) ?? [], as: UTF8.self)
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        await gateway.shutdownKeepingFiles()
        let answered = try await readers.value.map { Self.statuses($0).filter { $0 == 200 }.count }.reduce(0, +)
        let store = try SQLiteStore(path: gateway.databasePath)
        let rows = try await store.pending(limit: 1_000).count
        await store.close()
        #expect(rows == answered, "\(rows) rows committed, \(answered) answered")
        #expect(rows > 0)
        try? FileManager.default.removeItem(atPath: gateway.directory)
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
