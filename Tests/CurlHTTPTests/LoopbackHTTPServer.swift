import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP/1.1 server on 127.0.0.1 with routes that exercise the client, counting connections and requests.
///
/// Routes: `/echo` (method, URI, headers and base64 body as JSON), `/delay?ms=N`, `/bytes?n=N[&chunked=1]`,
/// `/status/N`, `/redirect` (302), `/continue` (a 100 before the 200), `/duplicates` (two Set-Cookie),
/// `/close` (closes without answering).
final class LoopbackHTTPServer: Sendable {
    let stats: LoopbackServerStats
    private let channel: any Channel

    /// The bound port.
    let port: Int

    /// `http://127.0.0.1:PORT`.
    var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(channel: any Channel, port: Int, stats: LoopbackServerStats) {
        self.channel = channel
        self.port = port
        self.stats = stats
    }

    static func start() async throws -> LoopbackHTTPServer {
        let stats = LoopbackServerStats()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                stats.connectionAccepted()
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(LoopbackHTTPHandler(stats: stats))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return LoopbackHTTPServer(channel: channel, port: channel.localAddress?.port ?? 0, stats: stats)
    }

    func close() async {
        try? await channel.close()
    }

    /// A port that refuses connections: bound once, then closed.
    static func refusedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 1
        try await channel.close()
        return port
    }
}

/// Counters the server keeps; read from tests, written from event loops.
final class LoopbackServerStats: @unchecked Sendable {
    // Guarded by `lock`; a class so the child initializer and the server share one instance.
    private let lock = NSLock()
    private var _connections = 0
    private var _requests = 0
    private var _inFlight = 0
    private var _maxInFlight = 0

    /// Connections accepted.
    var connections: Int { read { $0._connections } }
    /// Requests whose head arrived.
    var requests: Int { read { $0._requests } }
    /// Most `/delay` requests waiting at once.
    var maxInFlight: Int { read { $0._maxInFlight } }

    func connectionAccepted() { lock.withLock { _connections += 1 } }
    func requestStarted() { lock.withLock { _requests += 1 } }
    func delayStarted() {
        lock.withLock {
            _inFlight += 1
            _maxInFlight = max(_maxInFlight, _inFlight)
        }
    }
    func delayEnded() { lock.withLock { _inFlight -= 1 } }

    private func read(_ body: (LoopbackServerStats) -> Int) -> Int {
        lock.withLock { body(self) }
    }
}

/// What `/echo` answers.
struct EchoReply: Codable {
    var method: String
    var uri: String
    var headers: [[String]]
    var bodyBase64: String

    var body: [UInt8] { Array(Data(base64Encoded: bodyBase64) ?? Data()) }

    /// Values of a request header as the server saw them, by case-insensitive name.
    func values(_ name: String) -> [String] {
        headers.filter { $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }
}

/// Answers one request at a time on its connection (HTTPServerPipelineHandler queues pipelined ones).
final class LoopbackHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let stats: LoopbackServerStats
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(stats: LoopbackServerStats) { self.stats = stats }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            stats.requestStarted()
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            route(head, context: context)
        }
    }

    private func route(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let components = URLComponents(string: head.uri)
        let path = components?.path ?? head.uri
        let query = Dictionary((components?.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
        switch path {
        case "/echo":
            let reply = EchoReply(
                method: head.method.rawValue, uri: head.uri,
                headers: head.headers.map { [$0.name, $0.value] },
                bodyBase64: Data(body.readableBytesView).base64EncodedString()
            )
            let json = (try? JSONEncoder().encode(reply)) ?? Data()
            respond(context, head: head, headers: [("Content-Type", "application/json")], body: Array(json))
        case "/delay":
            let milliseconds = Int64(query["ms"] ?? "") ?? 100
            stats.delayStarted()
            let stats = self.stats
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) {
                stats.delayEnded()
                self.respond(context, head: head, body: Array("waited \(milliseconds) ms".utf8))
            }
        case "/bytes":
            let count = Int(query["n"] ?? "") ?? 0
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0) }
            respond(context, head: head, body: bytes, chunked: query["chunked"] == "1")
        case "/redirect":
            respond(context, head: head, status: .found, headers: [("Location", "/echo")], body: Array("moved".utf8))
        case "/continue":
            var interim = HTTPHeaders()
            interim.add(name: "X-Interim", value: "yes")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue, headers: interim))), promise: nil)
            respond(context, head: head, headers: [("X-Final", "yes")], body: Array("final".utf8))
        case "/duplicates":
            respond(context, head: head, headers: [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Empty", "")], body: [])
        case "/close":
            context.close(promise: nil)
        case _ where path.hasPrefix("/status/"):
            let code = Int(path.dropFirst("/status/".count)) ?? 500
            respond(context, head: head, status: HTTPResponseStatus(statusCode: code), body: Array("status \(code)".utf8))
        default:
            respond(context, head: head, status: .notFound, body: Array("no route \(path)".utf8))
        }
    }

    private func respond(
        _ context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus = .ok,
        headers extra: [(String, String)] = [], body: [UInt8], chunked: Bool = false
    ) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders(extra)
        if !chunked { headers.replaceOrAdd(name: "Content-Length", value: String(body.count)) }
        if !head.isKeepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            // Chunked bodies go out in pieces so the client's limit trips mid-stream, not on a Content-Length.
            let pieceSize = chunked ? 4096 : max(1, body.count)
            var offset = 0
            while offset < body.count {
                let end = min(body.count, offset + pieceSize)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body[offset..<end])))), promise: nil)
                offset = end
            }
        }
        let keepAlive = head.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
