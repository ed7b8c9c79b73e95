extension CurlHTTPClient {
    /// Client-wide settings.
    public struct Configuration: Sendable {
        /// Time allowed to connect (TCP and TLS handshake).
        public var connectTimeout: Duration = .seconds(10)
        /// Default total time per request, at millisecond precision; a request's own `timeout` overrides it.
        public var requestTimeout: Duration = .seconds(30)
        /// Larger response bodies fail with `responseTooLarge` and the transfer is aborted.
        public var maxResponseBodyBytes: Int = 16 << 20
        /// Extra CA file (PEM) to trust (dev CA, simulators); nil uses the system store.
        public var caBundlePath: String?
        /// Verify the peer's certificate and host name (only tests of failure turn this off).
        public var verifyPeer: Bool = true
        /// Requests running at once; more wait in a queue (their timeout keeps running while they wait).
        public var maxConcurrentRequests: Int = 64
        /// User-Agent header (a request's own `User-Agent` header wins).
        public var userAgent: String = "calgate"

        /// Creates the defaults.
        public init() {}
    }
}
