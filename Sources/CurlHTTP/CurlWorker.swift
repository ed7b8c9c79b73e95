import CCurl
import Foundation
import Synchronization

/// One request in flight, owned by the curl thread; curl's callbacks reach it through an `Unmanaged` pointer.
final class CurlTransfer {
    let id: Int
    let handle: UnsafeMutableRawPointer
    let url: String
    let continuation: CheckedContinuation<CurlHTTPResponse, any Error>
    let limit: Int
    var headerList: UnsafeMutablePointer<curl_slist>?
    var status = 0
    var headers: [CurlHTTPHeader] = []
    var body: [UInt8] = []
    var tooLarge = false
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init(id: Int, handle: UnsafeMutableRawPointer, url: String, limit: Int, continuation: CheckedContinuation<CurlHTTPResponse, any Error>) {
        self.id = id
        self.handle = handle
        self.url = url
        self.limit = limit
        self.continuation = continuation
        errorBuffer.initialize(to: 0)
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }
}

/// Runs the `curl_multi` loop on its own thread.
///
/// `@unchecked Sendable`: `multi` is only driven on the loop thread except for `curl_multi_wakeup`, which libcurl
/// documents as thread-safe; `active` and `pool` are loop-thread-only; everything else crosses under `shared`.
final class CurlWorker: @unchecked Sendable {
    private struct Submission {
        let id: Int
        let request: CurlHTTPRequest
        let continuation: CheckedContinuation<CurlHTTPResponse, any Error>
    }

    private struct Shared {
        var submissions: [Submission] = []
        var cancellations: [Int] = []
        var shuttingDown = false
        var stopped = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let configuration: CurlHTTPClient.Configuration
    private let multi: UnsafeMutableRawPointer
    private let shared = Mutex(Shared())
    private let ids = Atomic<Int>(0)
    // Loop-thread state.
    private var active: [Int: CurlTransfer] = [:]
    private var byHandle: [UnsafeMutableRawPointer: Int] = [:]
    private var pool: [UnsafeMutableRawPointer] = []
    private var cancelledBeforeStart: Set<Int> = []

    init(configuration: CurlHTTPClient.Configuration) throws {
        guard let multi = curl_multi_init() else {
            throw CurlHTTPError(kind: .other, message: "curl_multi_init failed")
        }
        self.configuration = configuration
        self.multi = multi
        // Past these, curl queues transfers itself instead of flooding a provider (or its accept backlog).
        calgate_curl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maxConnections)
        calgate_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        let thread = Thread { [self] in self.loop() }
        thread.name = "calgate-curl"
        thread.start()
    }

    func nextID() -> Int { ids.wrappingAdd(1, ordering: .relaxed).newValue }

    func submit(id: Int, request: CurlHTTPRequest, continuation: CheckedContinuation<CurlHTTPResponse, any Error>) {
        let accepted = shared.withLock { state -> Bool in
            guard !state.shuttingDown else { return false }
            state.submissions.append(Submission(id: id, request: request, continuation: continuation))
            return true
        }
        guard accepted else {
            continuation.resume(throwing: CurlHTTPError(kind: .shutDown, message: "the HTTP client is shut down"))
            return
        }
        curl_multi_wakeup(multi)
    }

    func cancel(id: Int) {
        shared.withLock { $0.cancellations.append(id) }
        curl_multi_wakeup(multi)
    }

    func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let alreadyStopped = shared.withLock { state -> Bool in
                if state.stopped { return true }
                state.shuttingDown = true
                state.waiters.append(continuation)
                return false
            }
            if alreadyStopped { continuation.resume() } else { curl_multi_wakeup(multi) }
        }
    }

    // MARK: The loop (curl thread only)

    private func loop() {
        while true {
            let (submissions, cancellations, shuttingDown) = shared.withLock { state in
                defer {
                    state.submissions.removeAll()
                    state.cancellations.removeAll()
                }
                return (state.submissions, state.cancellations, state.shuttingDown)
            }
            for id in cancellations {
                if let transfer = active[id] {
                    finish(transfer, with: .failure(CancellationError()))
                } else {
                    cancelledBeforeStart.insert(id)
                }
            }
            for submission in submissions {
                if shuttingDown {
                    submission.continuation.resume(throwing: CurlHTTPError(kind: .shutDown, message: "the HTTP client is shut down"))
                } else if cancelledBeforeStart.remove(submission.id) != nil {
                    submission.continuation.resume(throwing: CancellationError())
                } else {
                    start(submission)
                }
            }
            if shuttingDown {
                for transfer in Array(active.values) {
                    finish(transfer, with: .failure(CurlHTTPError(kind: .shutDown, message: "the HTTP client was shut down during \(CurlHTTPError.redact(transfer.url))")))
                }
                break
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                      let id = byHandle[handle], let transfer = active[id]
                else { continue }
                complete(transfer, code: calgate_curl_msg_result(message))
            }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
        for handle in pool { curl_easy_cleanup(handle) }
        pool.removeAll()
        curl_multi_cleanup(multi)
        let waiters = shared.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopped = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func start(_ submission: Submission) {
        let request = submission.request
        guard let handle = pool.popLast() ?? curl_easy_init() else {
            submission.continuation.resume(throwing: CurlHTTPError(kind: .other, message: "curl_easy_init failed"))
            return
        }
        let transfer = CurlTransfer(
            id: submission.id, handle: handle, url: request.url, limit: configuration.maxResponseBodyBytes,
            continuation: submission.continuation
        )
        configure(handle, for: request, transfer: transfer)
        active[transfer.id] = transfer
        byHandle[handle] = transfer.id
        let rc = curl_multi_add_handle(multi, handle)
        if rc != CURLM_OK {
            finish(transfer, with: .failure(CurlHTTPError(kind: .other, message: "cannot start \(CurlHTTPError.redact(request.url)) (multi code \(rc.rawValue))")))
        }
    }

    private func configure(_ handle: UnsafeMutableRawPointer, for request: CurlHTTPRequest, transfer: CurlTransfer) {
        func milliseconds(_ duration: Duration) -> Int {
            let (seconds, attoseconds) = duration.components
            return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
        }
        calgate_curl_easy_setopt_string(handle, CURLOPT_URL, request.url)
        calgate_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        calgate_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        calgate_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(request.timeout ?? configuration.requestTimeout))
        calgate_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(configuration.connectTimeout))
        calgate_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, configuration.userAgent)
        calgate_curl_easy_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        calgate_curl_easy_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        calgate_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, configuration.verifyPeer ? 1 : 0)
        calgate_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, configuration.verifyPeer ? 2 : 0)
        if let ca = configuration.caBundlePath { calgate_curl_easy_setopt_string(handle, CURLOPT_CAINFO, ca) }
        calgate_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, transfer.errorBuffer)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        calgate_curl_easy_setopt_callback(handle, CURLOPT_WRITEFUNCTION, curlWriteBody)
        calgate_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        calgate_curl_easy_setopt_callback(handle, CURLOPT_HEADERFUNCTION, curlWriteHeader)
        calgate_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, context)

        // POST, PUT and PATCH without a body send an empty one (curl would otherwise read stdin for a bare POST).
        let method = request.method.uppercased()
        let body = request.body ?? (["POST", "PUT", "PATCH"].contains(method) ? [] : nil)
        if let body {
            // COPYPOSTFIELDS: curl keeps its own copy, since Swift's array storage may move after this call.
            calgate_curl_easy_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            body.withUnsafeBytes { raw in
                _ = calgate_curl_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(("" as StaticString).utf8Start)))
            }
        }
        // Setting a body makes curl POST; the method line is then overridden for everything but POST.
        switch (method, body) {
        case ("GET", nil): calgate_curl_easy_setopt_long(handle, CURLOPT_HTTPGET, 1)
        case ("HEAD", _): calgate_curl_easy_setopt_long(handle, CURLOPT_NOBODY, 1)
        case ("POST", _): break
        case (let method, _): calgate_curl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in request.headers where !header.name.isEmpty {
            list = curl_slist_append(list, "\(header.name): \(header.value)")
        }
        // No `Expect: 100-continue` round trip for bodies.
        list = curl_slist_append(list, "Expect:")
        transfer.headerList = list
        calgate_curl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
    }

    private func complete(_ transfer: CurlTransfer, code: CURLcode) {
        let url = CurlHTTPError.redact(transfer.url)
        if code == CURLE_OK {
            var version = 0
            calgate_curl_easy_getinfo_long(transfer.handle, CURLINFO_HTTP_VERSION, &version)
            let response = CurlHTTPResponse(
                status: transfer.status, headers: transfer.headers, body: transfer.body,
                httpVersion: version == Int(CURL_HTTP_VERSION_2_0) ? "HTTP/2" : "HTTP/1.1"
            )
            finish(transfer, with: .success(response))
            return
        }
        let detail = String(cString: transfer.errorBuffer)
        let reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        let kind: CurlHTTPError.Kind
        switch code {
        case CURLE_WRITE_ERROR where transfer.tooLarge: kind = .responseTooLarge
        case CURLE_OPERATION_TIMEDOUT: kind = .timeout
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .connectFailed
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM: kind = .tlsFailed
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: kind = .invalidURL
        default: kind = .other
        }
        let message = kind == .responseTooLarge
            ? "\(url): response body is larger than \(transfer.limit) bytes"
            : "\(url): \(reason)"
        finish(transfer, with: .failure(CurlHTTPError(kind: kind, message: message)))
    }

    /// Detaches the handle, returns it to the pool and resumes the caller.
    private func finish(_ transfer: CurlTransfer, with result: Result<CurlHTTPResponse, any Error>) {
        curl_multi_remove_handle(multi, transfer.handle)
        active[transfer.id] = nil
        byHandle[transfer.handle] = nil
        // reset keeps the connection cache (it lives in the multi handle) but drops per-request options.
        curl_easy_reset(transfer.handle)
        pool.append(transfer.handle)
        transfer.continuation.resume(with: result)
    }
}

/// Body bytes from curl; returning less than given aborts the transfer (the size limit).
private func curlWriteBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    if transfer.body.count + length > transfer.limit {
        transfer.tooLarge = true
        return 0
    }
    data.withMemoryRebound(to: UInt8.self, capacity: length) { transfer.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length)) }
    return length
}

/// One header line; a status line starts a new response (after a 1xx), so earlier headers are dropped.
private func curlWriteHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }.trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
        transfer.headers.removeAll()
        let parts = line.split(separator: " ")
        transfer.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
    } else if let colon = line.firstIndex(of: ":") {
        let name = String(line[..<colon])
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        transfer.headers.append(CurlHTTPHeader(name, value))
    }
    return length
}
