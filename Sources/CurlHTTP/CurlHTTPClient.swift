import CCurl
import Foundation
import Synchronization

/// An async HTTP client on system libcurl.
///
/// One dedicated thread runs a `curl_multi` loop; requests never block a Swift concurrency thread or an event loop.
/// Easy handles are pooled and reused, so connections and TLS sessions stay warm across requests to a provider.
public final class CurlHTTPClient: Sendable {
    /// Client-wide settings.
    public struct Configuration: Sendable {
        /// Time allowed to connect.
        public var connectTimeout: Duration = .seconds(10)
        /// Default total time per request.
        public var requestTimeout: Duration = .seconds(30)
        /// Larger bodies fail with `responseTooLarge`.
        public var maxResponseBodyBytes: Int = 16 << 20
        /// Extra CA file to trust (dev CA, simulators); nil uses the system store.
        public var caBundlePath: String?
        /// Verify the peer's certificate and name (only tests of failure turn this off).
        public var verifyPeer: Bool = true
        /// User-Agent header.
        public var userAgent: String = "calgate"
        /// Most open connections in all; further requests wait for one.
        public var maxConnections: Int = 64
        /// Most open connections to one host.
        public var maxConnectionsPerHost: Int = 16
        /// Creates defaults.
        public init() {}
    }

    private let worker: CurlWorker

    /// Starts the client's curl thread.
    public init(configuration: Configuration = .init()) throws {
        CurlGlobal.initialize()
        worker = try CurlWorker(configuration: configuration)
    }

    /// Performs a request; honours task cancellation.
    public func execute(_ request: CurlHTTPRequest) async throws -> CurlHTTPResponse {
        guard request.url.hasPrefix("http://") || request.url.hasPrefix("https://") else {
            throw CurlHTTPError(kind: .invalidURL, message: "\(CurlHTTPError.redact(request.url)) is not an http(s) URL")
        }
        let id = worker.nextID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                worker.submit(id: id, request: request, continuation: continuation)
            }
        } onCancel: {
            worker.cancel(id: id)
        }
    }

    /// Fails queued and in-flight requests with `.shutDown` and stops the thread.
    public func shutdown() async {
        await worker.shutdown()
    }
}

/// `curl_global_init` exactly once per process.
enum CurlGlobal {
    private static let done = Mutex(false)
    static func initialize() {
        done.withLock { initialized in
            guard !initialized else { return }
            curl_global_init(Int(CURL_GLOBAL_ALL))
            initialized = true
        }
    }
}
