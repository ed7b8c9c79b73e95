import Foundation
import NIOCore
import NIOPosix
import OpenSSLTLS
import Synchronization
import TLSTestClient

/// What the test server saw, written on its event loop and read by the test.
final class ServerRecorder: Sendable {
    struct State {
        var handshakes: [TLSHandshakeCompletedEvent] = []
        var errors: [any Error] = []
        /// Capacity and readable bytes of each plaintext buffer the TLS handler passed on.
        var inbound: [(capacity: Int, bytes: Int)] = []
        var closedConnections = 0
        /// Ciphertext writes and flushes that reached the socket side of the TLS handler.
        var socketWrites = 0
        var socketFlushes = 0
        var succeededPromises = 0
        var failedPromises = 0
        var readCompletes = 0
        var outputClosed = false
    }

    private let state = Mutex(State())

    func update(_ body: (inout State) -> Void) { state.withLock { body(&$0) } }
    var snapshot: State { state.withLock { $0 } }

    /// Plaintext bytes passed on by the TLS handler, not counting the first `count` buffers.
    func inboundBytes(droppingFirst count: Int) -> Int {
        snapshot.inbound.dropFirst(count).reduce(0) { $0 + $1.bytes }
    }
}

/// Counts what the TLS handler sends towards the socket; sits between the socket and the TLS handler.
final class SocketSideCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    let recorder: ServerRecorder

    init(recorder: ServerRecorder) { self.recorder = recorder }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        recorder.update { $0.socketWrites += 1 }
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        recorder.update { $0.socketFlushes += 1 }
        context.flush()
    }
}

/// The application behind the TLS handler. Answers each plaintext chunk:
/// `quit` → "bye\n" then close; `half` → "half\n" then close output only; `multi` → three writes, one flush;
/// `big:N` → N bytes of "x"; else "echo:" + chunk. With `manualRead` it asks for every read itself (autoRead off).
final class ScriptedApplication: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let recorder: ServerRecorder
    let greeting: String?
    let manualRead: Bool

    init(recorder: ServerRecorder, greeting: String?, manualRead: Bool) {
        self.recorder = recorder
        self.greeting = greeting
        self.manualRead = manualRead
    }

    func channelActive(context: ChannelHandlerContext) {
        // Written before the handshake has even started: the TLS handler must hold it until the handshake is done.
        if let greeting { context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil) }
        context.fireChannelActive()
        if manualRead { context.read() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        recorder.update { $0.readCompletes += 1 }
        context.fireChannelReadComplete()
        if manualRead { context.read() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        recorder.update { $0.inbound.append((buffer.capacity, buffer.readableBytes)) }
        let text = String(buffer: buffer)
        if text.hasPrefix("quit") {
            context.write(wrapOutboundOut(ByteBuffer(string: "bye\n")), promise: nil)
            context.close(promise: nil)
        } else if text.hasPrefix("half") {
            context.write(wrapOutboundOut(ByteBuffer(string: "half\n")), promise: nil)
            let recorder = self.recorder
            context.close(mode: .output).assumeIsolated().whenComplete { result in
                recorder.update { $0.outputClosed = (try? result.get()) != nil }
            }
        } else if text.hasPrefix("multi") {
            for part in ["a", "b", "c"] {
                let promise = context.eventLoop.makePromise(of: Void.self)
                let recorder = self.recorder
                promise.futureResult.whenComplete { result in
                    recorder.update {
                        switch result {
                        case .success: $0.succeededPromises += 1
                        case .failure: $0.failedPromises += 1
                        }
                    }
                }
                context.write(wrapOutboundOut(ByteBuffer(string: part)), promise: promise)
            }
            context.flush()
        } else if text.hasPrefix("big:"), let count = Int(text.dropFirst(4).trimmingCharacters(in: .whitespacesAndNewlines)) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(repeating: UInt8(ascii: "x"), count: count)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "echo:" + text)), promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompletedEvent { recorder.update { $0.handshakes.append(event) } }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        recorder.update { $0.errors.append(error) }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        recorder.update { $0.closedConnections += 1 }
        context.fireChannelInactive()
    }
}

/// A NIO server on 127.0.0.1 and a free port: socket-side counter, OpenSSL handler, scripted application.
final class TLSTestServer: Sendable {
    let group: MultiThreadedEventLoopGroup
    let context: TLSServerContext
    let channel: any Channel
    let recorder: ServerRecorder
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(group: MultiThreadedEventLoopGroup, context: TLSServerContext, channel: any Channel, recorder: ServerRecorder) {
        self.group = group
        self.context = context
        self.channel = channel
        self.recorder = recorder
    }

    static func start(
        context: TLSServerContext, greeting: String? = nil, allowHalfClosure: Bool = false, autoRead: Bool = true
    ) async throws -> TLSTestServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = ServerRecorder()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: allowHalfClosure)
            .childChannelOption(.autoRead, value: autoRead)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(SocketSideCounter(recorder: recorder))
                    try pipeline.addHandler(context.makeServerHandler())
                    try pipeline.addHandler(ScriptedApplication(recorder: recorder, greeting: greeting, manualRead: !autoRead))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TLSTestServer(group: group, context: context, channel: channel, recorder: recorder)
    }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    /// Runs `body` against a started server and stops the server afterwards, whether `body` threw or not.
    static func with<T>(
        context: TLSServerContext, greeting: String? = nil, allowHalfClosure: Bool = false, autoRead: Bool = true,
        _ body: (TLSTestServer) async throws -> T
    ) async throws -> T {
        let server = try await start(context: context, greeting: greeting, allowHalfClosure: allowHalfClosure, autoRead: autoRead)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }
}

/// Dev certificates in a fresh temporary directory, removed by `remove()`.
struct CertificateFixture {
    let directory: String
    let paths: DevCertificatePaths

    init(extraDNSNames: [String] = [], now: Date = Date()) throws {
        directory = temporaryDirectory()
        paths = try DevCertificateAuthority.generate(directory: directory + "/certs", extraDNSNames: extraDNSNames, now: now)
    }

    func configuration(
        alpn: [String] = ["http/1.1"], sessionResumption: Bool = true, handshakeTimeout: TimeAmount = .seconds(5)
    ) -> TLSServerConfiguration {
        TLSServerConfiguration(
            certificateChainPath: paths.serverCertificate, privateKeyPath: paths.serverKey, alpnProtocols: alpn,
            sessionResumption: sessionResumption, handshakeTimeout: handshakeTimeout
        )
    }

    /// Client options that verify the server as `localhost` against this fixture's CA.
    func verifyingClient(_ options: TLSTestClientOptions = TLSTestClientOptions()) -> TLSTestClientOptions {
        var options = options
        options.caFile = paths.caCertificate
        options.expectedHostname = options.expectedHostname ?? "localhost"
        return options
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// A fresh directory under the system temporary directory.
func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "calgate-tls-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Polls `condition` until it holds or `timeout` passes (server-side effects land on the event loop a moment
/// after the client sees the bytes).
func eventually(within timeout: Duration = .seconds(3), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Runs the `openssl` command-line tool (only for what the C API in the tests cannot reach: RSA keys, `x509 -text`).
@discardableResult
func runOpenSSL(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw OpenSSLCommandError(arguments: arguments, output: text)
    }
    return text
}

/// `openssl` exited with an error.
struct OpenSSLCommandError: Error, CustomStringConvertible {
    let arguments: [String]
    let output: String
    var description: String { "openssl \(arguments.joined(separator: " ")) failed: \(output)" }
}

extension TLSTestClient {
    /// Reads until `limit` copies of `byte` have arrived (or the connection ends) and returns how many did.
    func readCounting(_ byte: UInt8, upTo limit: Int) throws -> Int {
        var seen = 0
        while seen < limit {
            let chunk = try read()
            if chunk.isEmpty { break }
            seen += chunk.reduce(0) { $0 + ($1 == byte ? 1 : 0) }
        }
        return seen
    }

    /// Sends `text` and returns the server's echo of it.
    func echo(_ text: String) throws -> String {
        try write(text)
        return try read(until: "echo:" + text)
    }
}
