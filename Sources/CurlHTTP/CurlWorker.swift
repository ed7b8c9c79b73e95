import CCurl
import Foundation
import Synchronization

/// Runs one client's `curl_multi` loop on its own thread.
///
/// `@unchecked Sendable` because it owns C handles confined to the loop thread: `multi`, `share`, every easy handle,
/// and the loop-only tables (`running`, `runningByID`, `waiting`, `pool`) are touched only there. Other threads reach
/// the loop only through `inbox`, and call `curl_multi_wakeup` (which libcurl allows from any thread) only under
/// `inbox`'s lock while `stopped` is false; the loop sets `stopped` under that lock before it frees `multi`.
final class CurlWorker: @unchecked Sendable {
    struct Submission {
        let id: Int
        let request: CurlHTTPRequest
        let continuation: CheckedContinuation<CurlHTTPResponse, any Error>
        /// The request's whole budget counts from `execute`, so time spent queued is not granted twice.
        let deadline: ContinuousClock.Instant
    }

    private struct Inbox {
        var submissions: [Submission] = []
        var cancellations: [Int] = []
        var shuttingDown = false
        var stopped = false
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let configuration: CurlHTTPClient.Configuration
    /// How long the loop sleeps in `curl_multi_poll` with nothing queued; submissions, cancellations and shutdown wake
    /// it at once (`curl_multi_wakeup`).
    private let idlePollMilliseconds: Int32
    private let multi: UnsafeMutableRawPointer
    /// DNS answers and TLS sessions shared by all pooled handles (connections are shared by `multi` itself).
    private let share: UnsafeMutableRawPointer
    private let inbox = Mutex(Inbox())
    private let ids = Atomic<Int>(0)

    // Loop thread only.
    private var running: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var runningByID: [Int: UnsafeMutableRawPointer] = [:]
    private var waiting: [Submission] = []
    private var pool: [UnsafeMutableRawPointer] = []

    init(configuration: CurlHTTPClient.Configuration, idlePollMilliseconds: Int32 = 1000) throws(CurlHTTPError) {
        guard let multi = curl_multi_init() else { throw CurlHTTPError(.other, "curl_multi_init failed") }
        guard let share = curl_share_init() else {
            curl_multi_cleanup(multi)
            throw CurlHTTPError(.other, "curl_share_init failed")
        }
        // One thread uses the share, so it needs no lock callbacks.
        calgate_curl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_DNS.rawValue))
        calgate_curl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_SSL_SESSION.rawValue))
        // Keep enough idle connections for every concurrent request plus a few hosts (token, API, gateway).
        calgate_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(8, configuration.maxConcurrentRequests))
        var configuration = configuration
        configuration.maxConcurrentRequests = max(1, configuration.maxConcurrentRequests)
        self.configuration = configuration
        self.idlePollMilliseconds = idlePollMilliseconds
        self.multi = multi
        self.share = share
        let thread = Thread { [self] in self.loop() }
        thread.name = "calgate-curl"
        thread.start()
    }

    func nextID() -> Int { ids.wrappingAdd(1, ordering: .relaxed).newValue }

    /// Hands a request to the loop, or fails it at once if the client is shutting down.
    func enqueue(id: Int, request: CurlHTTPRequest, continuation: CheckedContinuation<CurlHTTPResponse, any Error>) {
        let deadline = ContinuousClock.now + Self.clamp(request.timeout ?? configuration.requestTimeout)
        let accepted = inbox.withLock { inbox -> Bool in
            guard !inbox.shuttingDown else { return false }
            inbox.submissions.append(Submission(id: id, request: request, continuation: continuation, deadline: deadline))
            curl_multi_wakeup(multi)
            return true
        }
        if !accepted {
            continuation.resume(throwing: CurlHTTPError(.shutDown, "\(request.method) \(CurlHTTPError.redact(request.url)): the HTTP client is shut down"))
        }
    }

    /// Asks the loop to drop a request, wherever it is; unknown (finished) ids are ignored there.
    func cancel(id: Int) {
        inbox.withLock { inbox in
            guard !inbox.stopped else { return }
            inbox.cancellations.append(id)
            curl_multi_wakeup(multi)
        }
    }

    /// Starts shutting down without waiting (the client's deinit).
    func requestShutdown() {
        inbox.withLock { inbox in
            guard !inbox.shuttingDown else { return }
            inbox.shuttingDown = true
            if !inbox.stopped { curl_multi_wakeup(multi) }
        }
    }

    /// Fails everything outstanding, stops the loop and waits until curl's handles are freed.
    func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = inbox.withLock { inbox -> Bool in
                guard !inbox.stopped else { return true }
                inbox.shuttingDown = true
                inbox.shutdownWaiters.append(continuation)
                curl_multi_wakeup(multi)
                return false
            }
            if stopped { continuation.resume() }
        }
    }

    // MARK: - The loop (curl thread only)

    private func loop() {
        var stillRunning: Int32 = 0
        while true {
            let (submissions, cancellations, shuttingDown) = inbox.withLock { inbox in
                defer {
                    inbox.submissions.removeAll()
                    inbox.cancellations.removeAll()
                }
                return (inbox.submissions, inbox.cancellations, inbox.shuttingDown)
            }
            // Submissions first: a cancellation taken in the same batch must find its request.
            waiting.append(contentsOf: submissions)
            for id in cancellations { cancelRequest(id) }
            if shuttingDown { break }

            failExpiredWaiting()
            startWaiting()
            curl_multi_perform(multi, &stillRunning)
            readCompletions()
            // Slots freed above go to queued requests now; a newly added handle makes the poll return at once.
            startWaiting()
            curl_multi_poll(multi, nil, 0, pollTimeoutMilliseconds(), nil)
        }
        failEverything()
        let waiters = inbox.withLock { inbox in
            inbox.stopped = true
            defer { inbox.shutdownWaiters.removeAll() }
            return inbox.shutdownWaiters
        }
        // No thread calls curl_multi_wakeup once `stopped` is set, so the handles can go.
        for handle in pool { curl_easy_cleanup(handle) }
        pool.removeAll()
        curl_multi_cleanup(multi)
        curl_share_cleanup(share)
        for waiter in waiters { waiter.resume() }
    }

    private func pollTimeoutMilliseconds() -> Int32 {
        // Queued requests have no curl timer; wake up in time to fail them at their deadline.
        guard let nearest = waiting.lazy.map(\.deadline).min() else { return idlePollMilliseconds }
        return Int32(clamping: min(Int(idlePollMilliseconds), max(1, Self.milliseconds(nearest - .now))))
    }

    private func cancelRequest(_ id: Int) {
        if let handle = runningByID[id], let transfer = running[handle] {
            finish(transfer, with: .failure(CancellationError()))
        } else if let index = waiting.firstIndex(where: { $0.id == id }) {
            waiting.remove(at: index).continuation.resume(throwing: CancellationError())
        }
    }

    private func failEverything() {
        for submission in waiting {
            let what = "\(submission.request.method) \(CurlHTTPError.redact(submission.request.url))"
            submission.continuation.resume(throwing: CurlHTTPError(.shutDown, "\(what): the HTTP client shut down before the request started"))
        }
        waiting.removeAll()
        for transfer in Array(running.values) {
            finish(transfer, with: .failure(CurlHTTPError(.shutDown, "\(transfer.what): the HTTP client shut down during the request")))
        }
    }

    private func failExpiredWaiting() {
        guard !waiting.isEmpty else { return }
        let now = ContinuousClock.now
        waiting.removeAll { submission in
            guard submission.deadline <= now else { return false }
            let what = "\(submission.request.method) \(CurlHTTPError.redact(submission.request.url))"
            submission.continuation.resume(
                throwing: CurlHTTPError(
                    .timeout, "\(what): timed out waiting for one of \(configuration.maxConcurrentRequests) request slots"
                ))
            return true
        }
    }

    private func startWaiting() {
        while running.count < configuration.maxConcurrentRequests, !waiting.isEmpty {
            start(waiting.removeFirst())
        }
    }

    private func start(_ submission: Submission) {
        let request = submission.request
        let remaining = submission.deadline - .now
        guard remaining > .zero else {
            submission.continuation.resume(
                throwing: CurlHTTPError(
                    .timeout, "\(request.method) \(CurlHTTPError.redact(request.url)): timed out waiting for a request slot"
                ))
            return
        }
        guard let handle = pool.popLast() ?? curl_easy_init() else {
            submission.continuation.resume(throwing: CurlHTTPError(.other, "\(request.method) \(CurlHTTPError.redact(request.url)): curl_easy_init failed"))
            return
        }
        let transfer = CurlTransfer(
            id: submission.id, handle: handle, request: request, limit: configuration.maxResponseBodyBytes,
            continuation: submission.continuation
        )
        running[handle] = transfer
        runningByID[transfer.id] = handle
        do {
            try configure(handle, for: request, transfer: transfer, timeout: remaining)
        } catch {
            finish(transfer, with: .failure(error), added: false)
            return
        }
        let code = curl_multi_add_handle(multi, handle)
        guard code == CURLM_OK else {
            let reason = String(cString: curl_multi_strerror(code))
            finish(transfer, with: .failure(CurlHTTPError(.other, "\(transfer.what): cannot start: \(reason)")), added: false)
            return
        }
    }

    private func configure(_ handle: UnsafeMutableRawPointer, for request: CurlHTTPRequest, transfer: CurlTransfer, timeout: Duration) throws(CurlHTTPError) {
        func check(_ code: CURLcode, _ option: String) throws(CurlHTTPError) {
            guard code == CURLE_OK else {
                throw CurlHTTPError(.other, "\(transfer.what): cannot set \(option): \(String(cString: curl_easy_strerror(code)))")
            }
        }
        let url = request.url
        try check(calgate_curl_easy_setopt_string(handle, CURLOPT_URL, url), "URL")
        // Belt and braces with the scheme check in `validate`: never let a URL reach file://, ftp:// and the like.
        _ = calgate_curl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        // No signals: curl's SIGALRM-based DNS timeouts are unsafe in a threaded process.
        try check(calgate_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        // Redirects are returned, never followed: a 3xx to another host must not receive our Authorization header.
        try check(calgate_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0), "FOLLOWLOCATION")
        try check(calgate_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, Self.milliseconds(timeout)), "TIMEOUT_MS")
        try check(calgate_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(Self.clamp(configuration.connectTimeout))), "CONNECTTIMEOUT_MS")
        try check(calgate_curl_easy_setopt_share(handle, CURLOPT_SHARE, share), "SHARE")
        _ = calgate_curl_easy_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        try check(calgate_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, configuration.userAgent), "USERAGENT")
        // "" offers every encoding this libcurl decodes, and curl hands us decoded bytes.
        try check(calgate_curl_easy_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, ""), "ACCEPT_ENCODING")
        _ = calgate_curl_easy_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        // Over TLS, wait for a connection that may multiplex (HTTP/2) rather than opening one per request at once.
        if url.utf8.count > 5, url.prefix(5).lowercased() == "https" {
            _ = calgate_curl_easy_setopt_long(handle, CURLOPT_PIPEWAIT, 1)
        }
        try check(calgate_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, configuration.verifyPeer ? 1 : 0), "SSL_VERIFYPEER")
        try check(calgate_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, configuration.verifyPeer ? 2 : 0), "SSL_VERIFYHOST")
        if let ca = configuration.caBundlePath { try check(calgate_curl_easy_setopt_string(handle, CURLOPT_CAINFO, ca), "CAINFO") }
        // Bodies over the limit announced by Content-Length fail before any byte arrives; the write callback
        // enforces the same limit on the decoded bytes, for chunked and compressed bodies.
        // (Not for HEAD, whose Content-Length describes a body that never comes.)
        if request.method != "HEAD" {
            _ = calgate_curl_easy_setopt_off(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(configuration.maxResponseBodyBytes))
        }
        try check(calgate_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, transfer.errorBuffer), "ERRORBUFFER")
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        try check(calgate_curl_easy_setopt_callback(handle, CURLOPT_WRITEFUNCTION, curlReceiveBody), "WRITEFUNCTION")
        try check(calgate_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context), "WRITEDATA")
        try check(calgate_curl_easy_setopt_callback(handle, CURLOPT_HEADERFUNCTION, curlReceiveHeader), "HEADERFUNCTION")
        try check(calgate_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, context), "HEADERDATA")

        // POST, PUT and PATCH without a body send an empty one: Content-Length: 0, which servers expect (411 otherwise).
        // Methods are case-sensitive (RFC 9110), so they are compared and sent exactly as given.
        let method = request.method
        let body = method == "HEAD" ? nil : request.body ?? (["POST", "PUT", "PATCH"].contains(method) ? [] : nil)
        if let body {
            // Size first: with it set, COPYPOSTFIELDS copies exactly that many bytes (binary-safe). COPYPOSTFIELDS,
            // never POSTFIELDS: curl keeps its own copy, as the array's storage is only valid inside this closure.
            try check(calgate_curl_easy_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "POSTFIELDSIZE_LARGE")
            let code = body.withUnsafeBytes { raw -> CURLcode in
                var empty: UInt8 = 0
                guard let base = raw.baseAddress else {
                    return withUnsafeMutablePointer(to: &empty) { calgate_curl_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, $0) }
                }
                return calgate_curl_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base))
            }
            try check(code, "COPYPOSTFIELDS")
        }
        // A body makes curl send POST; every other method line is set explicitly.
        switch (method, body) {
        case ("GET", nil): try check(calgate_curl_easy_setopt_long(handle, CURLOPT_HTTPGET, 1), "HTTPGET")
        case ("HEAD", _): try check(calgate_curl_easy_setopt_long(handle, CURLOPT_NOBODY, 1), "NOBODY")
        case ("POST", .some): break
        default: try check(calgate_curl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method), "CUSTOMREQUEST")
        }

        var list: UnsafeMutablePointer<curl_slist>?
        func append(_ line: String) throws(CurlHTTPError) {
            guard let grown = curl_slist_append(list, line) else {
                throw CurlHTTPError(.other, "\(transfer.what): out of memory building headers")
            }
            list = grown
        }
        defer { transfer.headerList = list }
        var hasContentType = false
        var hasExpect = false
        for header in request.headers {
            let name = header.name.lowercased()
            // curl frames the body itself; a caller's Content-Length could only disagree with it.
            if name == "content-length" { continue }
            hasContentType = hasContentType || name == "content-type"
            hasExpect = hasExpect || name == "expect"
            // "Name:" would tell curl to remove the header; "Name;" is curl's spelling of an empty value.
            try append(header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)")
        }
        // No `Expect: 100-continue` round trip before bodies (curl adds it above 1 MiB).
        if !hasExpect { try append("Expect:") }
        // A body is opaque bytes: drop curl's default `application/x-www-form-urlencoded` unless the caller chose one.
        if body != nil, !hasContentType { try append("Content-Type:") }
        try check(calgate_curl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, list), "HTTPHEADER")
    }

    private func readCompletions() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                let transfer = running[handle]
            else { continue }
            complete(transfer, code: calgate_curl_msg_result(message))
        }
    }

    private func complete(_ transfer: CurlTransfer, code: CURLcode) {
        guard code == CURLE_OK else {
            finish(transfer, with: .failure(error(for: transfer, code: code)))
            return
        }
        var status = 0
        calgate_curl_easy_getinfo_long(transfer.handle, CURLINFO_RESPONSE_CODE, &status)
        var version = 0
        calgate_curl_easy_getinfo_long(transfer.handle, CURLINFO_HTTP_VERSION, &version)
        let httpVersion =
            switch version {
            case Int(CURL_HTTP_VERSION_1_0): "HTTP/1.0"
            case Int(CURL_HTTP_VERSION_2_0): "HTTP/2"
            case Int(CURL_HTTP_VERSION_3): "HTTP/3"
            default: "HTTP/1.1"
            }
        let response = CurlHTTPResponse(status: status, headers: transfer.headers, body: transfer.body, httpVersion: httpVersion)
        finish(transfer, with: .success(response))
    }

    private func error(for transfer: CurlTransfer, code: CURLcode) -> CurlHTTPError {
        if (code == CURLE_WRITE_ERROR && transfer.tooLarge) || code == CURLE_FILESIZE_EXCEEDED {
            return CurlHTTPError(.responseTooLarge, "\(transfer.what): response body is larger than the \(transfer.limit)-byte limit")
        }
        let kind: CurlHTTPError.Kind =
            switch code {
            case CURLE_OPERATION_TIMEDOUT: .timeout
            case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: .connectFailed
            case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
                CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
                CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ENGINE_NOTFOUND,
                CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED, CURLE_USE_SSL_FAILED, CURLE_SSL_SHUTDOWN_FAILED:
                .tlsFailed
            case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: .invalidURL
            default: .other
            }
        let detail = String(cString: transfer.errorBuffer)
        let reason = transfer.scrub(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
        return CurlHTTPError(kind, "\(transfer.what): \(reason) (curl error \(code.rawValue))")
    }

    /// Detaches the handle, returns it to the pool and resumes the caller, exactly once per transfer.
    private func finish(_ transfer: CurlTransfer, with result: Result<CurlHTTPResponse, any Error>, added: Bool = true) {
        if added { curl_multi_remove_handle(multi, transfer.handle) }
        running[transfer.handle] = nil
        runningByID[transfer.id] = nil
        // Reset drops our options, callbacks and context pointer; the connection stays in the multi's cache.
        curl_easy_reset(transfer.handle)
        pool.append(transfer.handle)
        transfer.continuation.resume(with: result)
    }

    // MARK: - Durations

    /// Bounds a duration to what curl's millisecond `long` and the clock arithmetic take without overflow.
    static func clamp(_ duration: Duration) -> Duration {
        min(max(duration, .milliseconds(1)), .seconds(86_400 * 24))
    }

    /// Whole milliseconds, rounded up so a sub-millisecond remainder never becomes "no timeout" (0).
    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = clamp(duration).components
        return Int(seconds) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}
