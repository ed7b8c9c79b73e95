import Synchronization

/// The cancellation handshake for one `execute` call.
///
/// Task cancellation can arrive before the continuation exists, while the request is queued, or after it is done.
/// Submitting under this lock means a cancellation either sees `.submitted` (and the curl thread is told, which
/// finds the request queued, running or already gone) or marks `.cancelled` first (and submit refuses).
final class CurlRequestTicket: Sendable {
    private enum State { case new, submitted, cancelled }

    let id: Int
    private let state = Mutex(State.new)

    init(id: Int) { self.id = id }

    func submit(_ request: CurlHTTPRequest, continuation: CheckedContinuation<CurlHTTPResponse, any Error>, to worker: CurlWorker) {
        let submitted = state.withLock { state -> Bool in
            guard state == .new else { return false }
            state = .submitted
            worker.enqueue(id: id, request: request, continuation: continuation)
            return true
        }
        if !submitted { continuation.resume(throwing: CancellationError()) }
    }

    func cancel(on worker: CurlWorker) {
        let wasSubmitted = state.withLock { state -> Bool in
            defer { state = .cancelled }
            return state == .submitted
        }
        if wasSubmitted { worker.cancel(id: id) }
    }
}
