import Foundation
import Testing
import TestSupport

/// Every webhook row the gateway commits got an answer the client received: Google pushes over keep-alive, `Connection:
/// close`, pipelined and half-closing connections, while the certificate is reloaded every second and the gateway is
/// restarted gracefully once. This runs `scripts/ack_delivery_test.py` (the same test `scripts/ack-delivery-test` runs
/// at full size) with the debug binary, at a size that finishes well inside CI's budget.
@Suite("Ack delivery", .serialized)
struct AckDeliveryTests {
    @Test func everyCommittedWebhookIsAnswered() async throws {
        let script = CalgateProcess.repositoryRoot.appendingPathComponent("scripts/ack_delivery_test.py").path
        let (status, output) = try await ChildProcess.run(
            "/usr/bin/env",
            [
                "python3", script, "--calgate", CalgateProcess.binary, "--requests", "3000", "--senders", "4",
                "--deadline", "60", "--seed", "20261205",
            ], timeout: .seconds(150))
        let verdict = output.split(separator: "\n").last { $0.hasPrefix("ack-delivery: ") && $0.contains(" committed, ") }.map(String.init)
        #expect(status == 0, "ack delivery test failed:\n\(output.suffix(6_000))")
        let line = try #require(verdict, "no verdict line:\n\(output.suffix(6_000))")
        #expect(line.hasSuffix(" 0 unanswered"), "\(line)")
        let committed = Int(line.dropFirst("ack-delivery: ".count).prefix { $0.isNumber }) ?? 0
        #expect(committed > 2_500, "most of the 3,000 requests are committed (a few are lost in transit at the restart): \(line)")
    }
}
