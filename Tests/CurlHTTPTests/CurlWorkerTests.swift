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

    @Test func shutdownIsIdempotentAndQuick() async throws {
        let client = try CurlHTTPClient()
        let start = ContinuousClock.now
        await client.shutdown()
        await client.shutdown()
        // Guards against a shutdown that waits on its poll timeout or hangs, not a speed target: the parallel
        // suite on two cores delayed the thread's wake-up past 0.5 s.
        #expect(ContinuousClock.now - start < .seconds(3))
    }

    @Test func millisecondsRoundUpAndStayInRange() {
        #expect(CurlWorker.milliseconds(.milliseconds(300)) == 300)
        #expect(CurlWorker.milliseconds(.microseconds(1500)) == 2)
        #expect(CurlWorker.milliseconds(.zero) == 1, "0 would mean no timeout to curl")
        #expect(CurlWorker.milliseconds(.seconds(-5)) == 1)
        #expect(CurlWorker.milliseconds(.seconds(Int64.max)) == 86_400 * 24 * 1000)
    }
}
