import NIOCore

/// Decides when a connection has taken too long to send a request head or body.
///
/// A plain value: the two `ConnectionGuard` handlers feed it events and carry out the action it returns, so the
/// timing rules are tested one event at a time. The head deadline starts at the first byte of a request (not when
/// the connection went idle, which the idle timeout covers), so a slowloris client trickling bytes is cut however
/// steadily it trickles.
public struct ConnectionGuardStateMachine: Sendable {
    /// Where the current request is.
    enum State: Equatable {
        /// Between requests: no deadline (the idle timeout applies).
        case idle
        /// Bytes of a head have arrived; the whole head must arrive by the deadline.
        case readingHead(deadline: NIODeadline)
        /// The head is parsed; the body must finish by the deadline.
        case readingBody(deadline: NIODeadline)
        /// The request is complete and being answered; bytes arriving now belong to a pipelined request.
        case responding(pipelinedBytes: Bool)
        /// The connection is being closed.
        case closed
    }

    /// What the handler must do.
    public enum Action: Equatable, Sendable {
        /// Nothing.
        case none
        /// (Re)arm the one timer for this deadline.
        case arm(NIODeadline)
        /// Cancel the timer.
        case cancelTimer
        /// Head too slow: answer 408 and close.
        case rejectSlowHead
        /// Body too slow: close (a response may be in progress, so nothing is written).
        case closeSlowBody
        /// Close after this response has been written (the response asked for `Connection: close`).
        case closeAfterResponse
    }

    private(set) var state: State = .idle
    private var closeRequested = false
    let headTimeout: TimeAmount
    let bodyTimeout: TimeAmount

    /// Creates the machine with the two read deadlines.
    public init(headTimeout: TimeAmount, bodyTimeout: TimeAmount) {
        self.headTimeout = headTimeout
        self.bodyTimeout = bodyTimeout
    }

    /// Raw bytes arrived from the client.
    public mutating func bytesReceived(now: NIODeadline) -> Action {
        switch state {
        case .idle:
            let deadline = now + headTimeout
            state = .readingHead(deadline: deadline)
            return .arm(deadline)
        case .responding:
            state = .responding(pipelinedBytes: true)
            return .none
        case .readingHead, .readingBody, .closed:
            return .none
        }
    }

    /// The HTTP decoder produced a request head.
    public mutating func headReceived(now: NIODeadline) -> Action {
        guard state != .closed else { return .none }
        let deadline = now + bodyTimeout
        state = .readingBody(deadline: deadline)
        return .arm(deadline)
    }

    /// The HTTP decoder produced the end of the request.
    public mutating func requestEnded() -> Action {
        guard state != .closed else { return .none }
        state = .responding(pipelinedBytes: false)
        return .cancelTimer
    }

    /// A response head is being written; `connectionClose` when it carries `Connection: close`.
    public mutating func responseHeadWritten(connectionClose: Bool) {
        if connectionClose { closeRequested = true }
    }

    /// The response's end was written.
    public mutating func responseEnded(now: NIODeadline) -> Action {
        if closeRequested {
            state = .closed
            return .closeAfterResponse
        }
        switch state {
        case .responding(pipelinedBytes: true):
            let deadline = now + headTimeout
            state = .readingHead(deadline: deadline)
            return .arm(deadline)
        case .responding(pipelinedBytes: false):
            state = .idle
            return .none
        case .idle, .readingHead, .readingBody, .closed:
            // A response written before its request finished (e.g. 413 on Content-Length): the request is over.
            state = .idle
            return .cancelTimer
        }
    }

    /// The timer armed earlier fired.
    public mutating func timerFired(now: NIODeadline) -> Action {
        switch state {
        case .readingHead(let deadline):
            if now >= deadline {
                state = .closed
                return .rejectSlowHead
            }
            return .arm(deadline)
        case .readingBody(let deadline):
            if now >= deadline {
                state = .closed
                return .closeSlowBody
            }
            return .arm(deadline)
        case .idle, .responding, .closed:
            return .none
        }
    }
}
