import CCurl

/// An async HTTP client on system libcurl.
///
/// One dedicated thread per client runs a `curl_multi` loop, so requests never block a Swift concurrency thread or
/// an event loop. Easy handles are pooled and reused, and the multi handle keeps the connection cache, so
/// connections and TLS sessions stay warm across requests to a provider. Redirects are never followed.
public final class CurlHTTPClient: Sendable {
    /// Internal (not private) so tests can watch the thread end when a client is dropped.
    let worker: CurlWorker

    /// Starts the client's curl thread.
    public init(configuration: Configuration = .init()) throws {
        try CurlGlobal.initialize()
        worker = try CurlWorker(configuration: configuration)
    }

    deinit {
        // A client dropped without `shutdown()` must not leave its thread polling forever.
        worker.requestShutdown()
    }

    /// Performs a request and returns the final response, whatever its status.
    ///
    /// Honours task cancellation: the transfer is removed from curl and `CancellationError` is thrown.
    /// Fails with `CurlHTTPError` for transport problems; HTTP error statuses are responses, not errors.
    public func execute(_ request: CurlHTTPRequest) async throws -> CurlHTTPResponse {
        try request.validate()
        let ticket = CurlRequestTicket(id: worker.nextID())
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                ticket.submit(request, continuation: continuation, to: worker)
            }
        } onCancel: {
            ticket.cancel(on: worker)
        }
    }

    /// Fails queued and in-flight requests with `.shutDown`, stops the thread and frees curl's handles.
    ///
    /// Later requests fail with `.shutDown`. Calling it again returns at once.
    public func shutdown() async {
        await worker.shutdown()
    }

    /// The libcurl in use, e.g. `libcurl/7.88.1 OpenSSL/3.0.11 nghttp2/1.52.0`.
    public static var libcurlVersion: String {
        String(cString: curl_version())
    }

    /// Whether this libcurl can speak HTTP/2 (used over TLS when the server offers it).
    public static var supportsHTTP2: Bool {
        guard let info = calgate_curl_version_info_now() else { return false }
        return info.pointee.features & CURL_VERSION_HTTP2 != 0
    }
}
