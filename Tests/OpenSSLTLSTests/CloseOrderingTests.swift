import COpenSSL
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing
@testable import OpenSSLTLS

/// A TLS client over memory BIOs, so the server handler can be driven inside an `EmbeddedChannel` step by step.
final class MemoryTLSClient {
    private let context: OpaquePointer
    private let ssl: OpaquePointer
    private let input: OpaquePointer
    private let output: OpaquePointer

    init() throws {
        context = try #require(SSL_CTX_new(TLS_client_method()))
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        ssl = try #require(SSL_new(context))
        input = try #require(BIO_new(BIO_s_mem()))
        output = try #require(BIO_new(BIO_s_mem()))
        SSL_set_bio(ssl, input, output)
        SSL_set_connect_state(ssl)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    /// Ciphertext from the server.
    func receive(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { _ = BIO_write(input, $0.baseAddress, Int32($0.count)) }
    }

    /// Ciphertext for the server, if any.
    func pendingOutput() -> ByteBuffer? {
        let count = Int(calgate_BIO_pending(output))
        guard count > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: count)
        _ = bytes.withUnsafeMutableBytes { BIO_read(output, $0.baseAddress, Int32(count)) }
        return ByteBuffer(bytes: bytes)
    }

    /// Advances the handshake; true once it is done.
    func handshake() -> Bool { SSL_do_handshake(ssl) == 1 }

    /// Encrypts `text` for the server.
    func send(_ text: String) {
        var bytes = Array(text.utf8)
        _ = SSL_write(ssl, &bytes, Int32(bytes.count))
    }

    /// Decrypts what arrived: the plaintext, and whether close_notify came after it.
    func read() -> (text: String, closeNotify: Bool) {
        var text = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = SSL_read(ssl, &chunk, Int32(chunk.count))
            if count > 0 {
                text += chunk.prefix(Int(count))
                continue
            }
            return (String(decoding: text, as: UTF8.self), SSL_get_error(ssl, count) == SSL_ERROR_ZERO_RETURN)
        }
    }
}

/// Holds the socket-side writes (a socket that cannot take them yet) until released.
final class HeldSocketWrites: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var holding = false
    private var held: [(NIOAny, EventLoopPromise<Void>?)] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if holding { held.append((data, promise)) } else { context.write(data, promise: promise) }
    }

    func flush(context: ChannelHandlerContext) {
        if !holding { context.flush() }
    }

    func release(context: ChannelHandlerContext) {
        holding = false
        for (data, promise) in held { context.write(data, promise: promise) }
        held.removeAll()
        context.flush()
    }
}

extension OpenSSLTLSTests {
    /// The order of a close against the writes before it, one event at a time.
    @Suite struct CloseOrdering {
        /// An active channel with a finished handshake, the socket-side holder, and the client.
        func connected() throws -> (EmbeddedChannel, HeldSocketWrites, MemoryTLSClient, CertificateFixture) {
            let certs = try CertificateFixture()
            let server = try TLSServerContext(configuration: certs.configuration()).makeServerHandler()
            let socket = HeldSocketWrites()
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(socket)
            try channel.pipeline.syncOperations.addHandler(server)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
            let client = try MemoryTLSClient()
            var done = false
            for _ in 0..<10 where !done {
                done = client.handshake()
                if let flight = client.pendingOutput() { try channel.writeInbound(flight) }
                while let answer = try channel.readOutbound(as: ByteBuffer.self) { client.receive(answer) }
            }
            #expect(done, "the handshake completed")
            _ = client.handshake()  // takes the session tickets
            return (channel, socket, client, certs)
        }

        @Test func aCloseRightBehindAnAnswerWaitsUntilTheSocketTookIt() throws {
            let (channel, socket, client, certs) = try connected()
            defer { certs.remove() }
            socket.holding = true
            let written = channel.eventLoop.makePromise(of: Void.self)
            channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), promise: written)
            let closed = channel.eventLoop.makePromise(of: Void.self)
            channel.close(promise: closed)
            channel.embeddedEventLoop.run()
            // The socket has not taken the answer yet: the channel must still be open.
            #expect(channel.isActive, "the close overtook the answer")
            let context = try channel.pipeline.syncOperations.context(handler: socket)
            socket.release(context: context)
            channel.embeddedEventLoop.run()
            var received = ByteBuffer()
            while var part = try channel.readOutbound(as: ByteBuffer.self) { received.writeBuffer(&part) }
            client.receive(received)
            let (text, closeNotify) = client.read()
            #expect(text == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            #expect(closeNotify, "close_notify follows the answer")
            #expect(!channel.isActive, "closed once the answer and close_notify were written")
        }

        @Test func closingTheOutputAlsoWaitsForTheWritesBeforeIt() throws {
            let (channel, socket, client, certs) = try connected()
            defer { certs.remove() }
            socket.holding = true
            channel.writeAndFlush(ByteBuffer(string: "last answer"), promise: nil)
            let shut = channel.eventLoop.makePromise(of: Void.self)
            channel.close(mode: .output, promise: shut)
            channel.embeddedEventLoop.run()
            let shutDone = NIOLockedValueBox(false)
            shut.futureResult.whenComplete { _ in shutDone.withLockedValue { $0 = true } }
            #expect(!shutDone.withLockedValue { $0 }, "the output was shut before the answer left")
            let context = try channel.pipeline.syncOperations.context(handler: socket)
            socket.release(context: context)
            channel.embeddedEventLoop.run()
            var received = ByteBuffer()
            while var part = try channel.readOutbound(as: ByteBuffer.self) { received.writeBuffer(&part) }
            client.receive(received)
            let (text, closeNotify) = client.read()
            #expect(text == "last answer")
            #expect(closeNotify)
            #expect(shutDone.withLockedValue { $0 }, "the output close completed after the answer was written")
            _ = try? channel.finish()
        }
    }
}
