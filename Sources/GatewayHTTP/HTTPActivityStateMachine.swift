import NIOCore

/// When one HTTP/1 connection closes for being idle or for a graceful shutdown, counted over every request on it —
/// the webhooks `WebhookAckHandler` answers on the event loop and the requests the router answers alike.
///
/// The rules are Hummingbird's `HTTPConnectionStateHandler`'s, which sees only the router's requests once webhooks are
/// answered before Hummingbird's HTTP types: an idle timeout closes a connection that has had no request bytes for
/// the timeout and is not answering a request it has read; a shutdown closes at once between requests, or after the
/// last answer owed. Pure: the handler feeds it events and carries out its actions.
struct HTTPActivityStateMachine {
    /// What the handler does next.
    enum Action: Equatable {
        case none
        /// Make sure a timer fires no later than this (an earlier one already armed may stay: firing early re-arms).
        case arm(NIODeadline)
        /// Close the connection (after flushing what was written).
        case close
    }

    let idleTimeout: TimeAmount?
    /// Requests whose head was read and whose answer has not ended.
    private(set) var requestsInProgress = 0
    /// A request's head has been read and its end not yet.
    private(set) var readingRequest = false
    private var lastActive: NIODeadline
    /// A shutdown arrived while answers were owed: close after the last one.
    private(set) var closeWhenAnswered = false

    init(idleTimeout: TimeAmount?, now: NIODeadline) {
        self.idleTimeout = idleTimeout
        self.lastActive = now
    }

    /// The connection is up: the idle clock starts.
    mutating func connectionActive(now: NIODeadline) -> Action {
        lastActive = now
        return idleTimeout.map { .arm(now + $0) } ?? .none
    }

    mutating func requestHeadRead(now: NIODeadline) {
        lastActive = now
        requestsInProgress += 1
        readingRequest = true
    }

    mutating func requestBodyRead(now: NIODeadline) {
        lastActive = now
    }

    mutating func requestEndRead(now: NIODeadline) {
        lastActive = now
        readingRequest = false
    }

    /// An answer's end was written.
    mutating func responseEnded(now: NIODeadline) -> Action {
        requestsInProgress = max(0, requestsInProgress - 1)
        guard requestsInProgress == 0 else { return .none }
        if closeWhenAnswered { return .close }
        lastActive = now
        return idleTimeout.map { .arm(now + $0) } ?? .none
    }

    /// The armed timer fired.
    mutating func timerFired(now: NIODeadline) -> Action {
        guard let idleTimeout else { return .none }
        // Answering a request it has read: the answer's end arms the timer again.
        if !readingRequest && requestsInProgress > 0 { return .none }
        let deadline = lastActive + idleTimeout
        return now >= deadline ? .close : .arm(deadline)
    }

    /// The server is shutting down gracefully (`ChannelShouldQuiesceEvent`).
    mutating func quiesce() -> Action {
        guard requestsInProgress > 0 else { return .close }
        closeWhenAnswered = true
        return .none
    }
}
