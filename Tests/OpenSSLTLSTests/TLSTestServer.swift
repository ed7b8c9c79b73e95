import Foundation
import NIOCore
import NIOPosix
import OpenSSLTLS
import NIOConcurrencyHelpers
import TestSupport

/// Echoes plaintext back and records the handshake event; closes when it reads "quit".
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let events: NIOLockedValueBox<[TLSHandshakeCompletedEvent]>

    init(events: NIOLockedValueBox<[TLSHandshakeCompletedEvent]> = NIOLockedValueBox([])) { self.events = events }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if String(buffer: buffer).contains("quit") {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "bye\n")), promise: nil)
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "echo:" + String(buffer: buffer))), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompletedEvent { events.withLockedValue { $0.append(event) } }
        context.fireUserInboundEventTriggered(event)
    }
}

/// A NIO server with the OpenSSL handler in front of an echo handler, on 127.0.0.1 and a free port.
final class TLSTestServer: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let context: TLSServerContext
    let channel: any Channel
    let events = NIOLockedValueBox<[TLSHandshakeCompletedEvent]>([])
    var port: Int { channel.localAddress?.port ?? 0 }

    init(context: TLSServerContext) async throws {
        self.context = context
        let events = self.events
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(context.makeServerHandler())
                    try channel.pipeline.syncOperations.addHandler(EchoHandler(events: events))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

func temporaryDirectory() -> String { makeTemporaryDirectory("calgate-tls") }

/// Runs `openssl s_client` against the server, feeding it `input`, and returns everything it printed.
func sClient(port: Int, arguments: [String], input: String = "hello\n", holdOpen: Duration = .milliseconds(300), timeout: Duration = .seconds(10)) async throws -> String {
    ignoreSIGPIPE()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = ["s_client", "-connect", "127.0.0.1:\(port)"] + arguments
    let stdin = Pipe()
    let stdout = Pipe()
    let output = OutputBuffer()
    let exited = ExitSignal()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stdout
    stdout.fileHandleForReading.readabilityHandler = { handle in
        let data = handle.availableData
        if data.isEmpty { handle.readabilityHandler = nil } else { output.append(data) }
    }
    process.terminationHandler = { _ in exited.fire() }
    try ProcessSpawn.run(process)
    try await Task.sleep(for: .milliseconds(200))
    try? stdin.fileHandleForWriting.write(contentsOf: Data(input.utf8))
    try await Task.sleep(for: holdOpen)
    try? stdin.fileHandleForWriting.close()
    if !(await exited.wait(timeout: timeout)) { kill(process.processIdentifier, SIGKILL) }
    _ = await exited.wait(timeout: .seconds(2))
    try? await Task.sleep(for: .milliseconds(30))
    return output.text
}
