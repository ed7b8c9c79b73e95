import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import GatewayHTTP

/// Idle timeout and graceful shutdown over every request on a connection (`HTTPActivityStateMachine`, step by step on
/// a test clock), and the HTTP/1 header helpers of the event-loop webhook path.
@Suite("HTTP activity: idle timeout and graceful shutdown")
struct HTTPActivityTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func anIdleConnectionClosesAfterTheTimeoutFromItsLastActivity() {
        var m = HTTPActivityStateMachine(idleTimeout: .seconds(2), now: t0)
        #expect(m.connectionActive(now: t0) == .arm(t0 + .seconds(2)))
        m.requestHeadRead(now: t0 + .seconds(1))
        m.requestEndRead(now: t0 + .seconds(1))
        // Answering: the timer firing now does nothing, the answer's end arms it again.
        #expect(m.timerFired(now: t0 + .seconds(2)) == .none)
        #expect(m.responseEnded(now: t0 + .milliseconds(1500)) == .arm(t0 + .milliseconds(3500)))
        // Fired early (a timer armed before): re-arm to the real deadline, then close.
        #expect(m.timerFired(now: t0 + .seconds(3)) == .arm(t0 + .milliseconds(3500)))
        #expect(m.timerFired(now: t0 + .milliseconds(3500)) == .close)
    }

    @Test func aRequestStillBeingReadIsNotIdleWhileBytesArrive() {
        var m = HTTPActivityStateMachine(idleTimeout: .seconds(2), now: t0)
        _ = m.connectionActive(now: t0)
        m.requestHeadRead(now: t0)
        m.requestBodyRead(now: t0 + .seconds(1))
        #expect(m.timerFired(now: t0 + .seconds(2)) == .arm(t0 + .seconds(3)))
        // The body stalls: a request being read is closed once idle (the guard's body deadline is the other bound).
        #expect(m.timerFired(now: t0 + .seconds(3)) == .close)
    }

    @Test func noTimeoutMeansNoTimer() {
        var m = HTTPActivityStateMachine(idleTimeout: nil, now: t0)
        #expect(m.connectionActive(now: t0) == .none)
        m.requestHeadRead(now: t0)
        m.requestEndRead(now: t0)
        #expect(m.responseEnded(now: t0) == .none)
        #expect(m.timerFired(now: t0 + .seconds(3600)) == .none)
    }

    @Test func shutdownClosesAtOnceBetweenRequests() {
        var m = HTTPActivityStateMachine(idleTimeout: .seconds(2), now: t0)
        _ = m.connectionActive(now: t0)
        #expect(m.quiesce() == .close)
    }

    @Test func shutdownWaitsForEveryAnswerOwedPipelinedOnesIncluded() {
        var m = HTTPActivityStateMachine(idleTimeout: .seconds(2), now: t0)
        _ = m.connectionActive(now: t0)
        for _ in 0..<2 {
            m.requestHeadRead(now: t0)
            m.requestEndRead(now: t0)
        }
        #expect(m.quiesce() == .none)
        #expect(m.closeWhenAnswered)
        #expect(m.responseEnded(now: t0) == .none, "one answer still owed")
        #expect(m.responseEnded(now: t0) == .close)
    }

    @Test func theHandlerClosesAnIdleConnectionOnlyAfterTheTimeout() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: HTTPActivityHandler(idleTimeout: .seconds(2)), loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/w")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        loop.advanceTime(by: .seconds(3))
        #expect(channel.isActive, "answering a request it has read")
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        loop.advanceTime(by: .seconds(1))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive, "idle for the whole timeout after the answer")
    }

    @Test func theHandlerKeepsAShutdownEventFromTheRouterSideUntilTheWebhookIsAnswered() throws {
        let channel = EmbeddedChannel(handler: HTTPActivityHandler(idleTimeout: nil))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/w")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive)
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .noContent)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        #expect(!channel.isActive)
    }

    @Test func headerHelpersOnNIOHeaders() {
        #expect(WebhookIntake.hasPrefixIgnoringASCIICase("X-Goog-Channel-ID", "x-goog-"))
        #expect(!WebhookIntake.hasPrefixIgnoringASCIICase("X-Goo", "x-goog-"))
        #expect(!WebhookIntake.hasPrefixIgnoringASCIICase("Content-Type", "x-goog-"))
        #expect(HTTPActivityHandler.asksToClose(["Connection": "keep-alive, Close"]))
        #expect(!HTTPActivityHandler.asksToClose(["Connection": "keep-alive"]))
        #expect(GatewayHTTPError.framingError(HTTPHeaders([("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked")])) != nil)
        #expect(GatewayHTTPError.framingError(["Transfer-Encoding": "Chunked"]) == nil)
        #expect(GatewayHTTPError.framingError(["Content-Length": "3"]) == nil)
    }
}
