import NIOCore
import Testing
@testable import GatewayHTTP

@Suite("Connection guard state machine")
struct ConnectionGuardStateMachineTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    func machine() -> ConnectionGuardStateMachine {
        ConnectionGuardStateMachine(headTimeout: .seconds(10), bodyTimeout: .seconds(30))
    }

    @Test func headDeadlineStartsAtTheFirstByteNotBefore() {
        var m = machine()
        #expect(m.bytesReceived(now: t0) == .arm(t0 + .seconds(10)))
        // More bytes of the same head do not extend the deadline (a trickling client gains nothing).
        #expect(m.bytesReceived(now: t0 + .seconds(5)) == .none)
        #expect(m.timerFired(now: t0 + .seconds(10)) == .rejectSlowHead)
        #expect(m.bytesReceived(now: t0 + .seconds(11)) == .none)
    }

    @Test func bodyDeadlineFollowsTheHead() {
        var m = machine()
        _ = m.bytesReceived(now: t0)
        #expect(m.headReceived(now: t0 + .seconds(1)) == .arm(t0 + .seconds(31)))
        // A timer left from the head phase fires early: re-arm for the body deadline.
        #expect(m.timerFired(now: t0 + .seconds(10)) == .arm(t0 + .seconds(31)))
        #expect(m.timerFired(now: t0 + .seconds(31)) == .closeSlowBody)
    }

    @Test func aCompleteRequestCancelsTheTimerAndGoesIdleAfterTheResponse() {
        var m = machine()
        _ = m.bytesReceived(now: t0)
        _ = m.headReceived(now: t0)
        #expect(m.requestEnded() == .cancelTimer)
        #expect(m.timerFired(now: t0 + .seconds(100)) == .none)
        m.responseHeadWritten(connectionClose: false)
        #expect(m.responseEnded(now: t0 + .seconds(1)) == .none)
        // Next request on the keep-alive connection gets a fresh head deadline.
        #expect(m.bytesReceived(now: t0 + .seconds(50)) == .arm(t0 + .seconds(60)))
    }

    @Test func pipelinedBytesDuringAResponseStartTheNextHeadDeadlineWhenItEnds() {
        var m = machine()
        _ = m.bytesReceived(now: t0)
        _ = m.headReceived(now: t0)
        _ = m.requestEnded()
        #expect(m.bytesReceived(now: t0 + .seconds(1)) == .none)
        #expect(m.responseEnded(now: t0 + .seconds(2)) == .arm(t0 + .seconds(12)))
    }

    @Test func connectionCloseResponseClosesAfterItsEnd() {
        var m = machine()
        _ = m.bytesReceived(now: t0)
        _ = m.headReceived(now: t0)
        // 413 answered before the body was read: the response ends while the request is still "reading body".
        m.responseHeadWritten(connectionClose: true)
        #expect(m.responseEnded(now: t0) == .closeAfterResponse)
        #expect(m.bytesReceived(now: t0) == .none)
        #expect(m.headReceived(now: t0) == .none)
    }

    @Test func earlyResponseWithoutCloseEndsTheRequest() {
        var m = machine()
        _ = m.bytesReceived(now: t0)
        _ = m.headReceived(now: t0)
        #expect(m.responseEnded(now: t0) == .cancelTimer)
        #expect(m.bytesReceived(now: t0 + .seconds(1)) == .arm(t0 + .seconds(11)))
    }
}
