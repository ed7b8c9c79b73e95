import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import OpenSSLTLS

/// Wraps a Hummingbird child channel with our OpenSSL TLS handler and the connection guard.
///
/// The same shape as HummingbirdTLS's `TLSChannel`, which is tied to swift-nio-ssl (BoringSSL): `setup` adds the
/// TLS handler and then lets the wrapped channel build its HTTP pipeline on top of the plaintext.
public struct OpenSSLChildChannel<BaseChannel: ServerChildChannel>: ServerChildChannel {
    public typealias Value = BaseChannel.Value

    let baseChannel: BaseChannel
    let tlsContext: TLSServerContext
    let makeGuard: @Sendable () -> ConnectionGuardHandler
    let makeHTTP1Handlers: @Sendable () -> [any ChannelHandler]

    /// Wraps `baseChannel`; every connection gets a fresh TLS handler from `tlsContext`, a guard from `makeGuard`,
    /// and the handlers from `makeHTTP1Handlers`, in order, right after NIO's HTTP/1 request decoder: they see NIO's
    /// own request and response parts, before the base channel converts them (Hummingbird's HTTP types).
    public init(
        _ baseChannel: BaseChannel, tlsContext: TLSServerContext, makeGuard: @escaping @Sendable () -> ConnectionGuardHandler,
        makeHTTP1Handlers: @escaping @Sendable () -> [any ChannelHandler] = { [] }
    ) {
        self.baseChannel = baseChannel
        self.tlsContext = tlsContext
        self.makeGuard = makeGuard
        self.makeHTTP1Handlers = makeHTTP1Handlers
    }

    /// Adds TLS and the guard, then the base channel's handlers, then the HTTP/1 handlers after the decoder.
    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(self.tlsContext.makeServerHandler())
            try channel.pipeline.syncOperations.addHandler(self.makeGuard())
        }.flatMap {
            self.baseChannel.setup(channel: channel, logger: logger)
        }.flatMapThrowing { value in
            let handlers = self.makeHTTP1Handlers()
            if !handlers.isEmpty {
                let pipeline = channel.pipeline.syncOperations
                let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
                try pipeline.addHandlers(handlers, position: .after(decoder))
            }
            return value
        }
    }

    /// Hands the connection to the base channel.
    public func handle(value: BaseChannel.Value, logger: Logger) async {
        await baseChannel.handle(value: value, logger: logger)
    }
}

extension OpenSSLChildChannel: HTTPChannelHandler where BaseChannel: HTTPChannelHandler {
    /// The base channel's responder.
    public var responder: HTTPChannelHandler.Responder { baseChannel.responder }
}
