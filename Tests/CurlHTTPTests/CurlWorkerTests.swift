@testable import CurlHTTP
import Testing

/// The curl thread's lifetime.
@Suite("CurlWorker")
struct CurlWorkerTests {
    @Test func aDroppedClientStopsItsThread() async throws {
        weak var worker: CurlWorker?
        do {
            let client = try CurlHTTPClient()
            worker = client.worker
        }
        // The thread holds the worker until its loop returns, so the worker going away means the thread ended.
        let deadline = ContinuousClock.now + .seconds(3)
        while worker != nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(worker == nil)
    }

    @Test func shutdownWakesTheLoopAndIsIdempotent() async throws {
        // The idle poll sleeps 120 s here, so a shutdown that waited for it instead of waking the loop would take that
        // long; a working one returns at once. The bound is far from both: on two loaded cores the thread's wake-up
        // and the continuation's resumption once took 4.6 s (a 3 s bound failed in CI).
        let worker = try CurlWorker(configuration: .init(), idlePollMilliseconds: 120_000)
        try await Task.sleep(for: .milliseconds(200))  // the loop is in its poll
        let start = ContinuousClock.now
        await worker.shutdown()
        await worker.shutdown()
        #expect(ContinuousClock.now - start < .seconds(60))
    }

    @Test func millisecondsRoundUpAndStayInRange() {
        #expect(CurlWorker.milliseconds(.milliseconds(300)) == 300)
        #expect(CurlWorker.milliseconds(.microseconds(1500)) == 2)
        #expect(CurlWorker.milliseconds(.zero) == 1, "0 would mean no timeout to curl")
        #expect(CurlWorker.milliseconds(.seconds(-5)) == 1)
        #expect(CurlWorker.milliseconds(.seconds(Int64.max)) == 86_400 * 24 * 1000)
    }
}
