import HummingbirdCore
import Logging
import NIOCore
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
    let makeApplicationHandler: (@Sendable () -> any ChannelHandler)?

    /// Wraps `baseChannel`; every connection gets a fresh TLS handler from `tlsContext`, a guard from `makeGuard`,
    /// and, when given, a handler from `makeApplicationHandler` placed right after Hummingbird's
    /// `HTTPConnectionStateHandler` (so it sees requests as the application would, idle timeouts included).
    public init(
        _ baseChannel: BaseChannel, tlsContext: TLSServerContext, makeGuard: @escaping @Sendable () -> ConnectionGuardHandler,
        makeApplicationHandler: (@Sendable () -> any ChannelHandler)? = nil
    ) {
        self.baseChannel = baseChannel
        self.tlsContext = tlsContext
        self.makeGuard = makeGuard
        self.makeApplicationHandler = makeApplicationHandler
    }

    /// Adds TLS and the guard, then the base channel's handlers, then the application handler.
    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(self.tlsContext.makeServerHandler())
            try channel.pipeline.syncOperations.addHandler(self.makeGuard())
        }.flatMap {
            self.baseChannel.setup(channel: channel, logger: logger)
        }.flatMapThrowing { value in
            if let make = self.makeApplicationHandler {
                let pipeline = channel.pipeline.syncOperations
                let state = try pipeline.handler(type: HTTPConnectionStateHandler.self)
                try pipeline.addHandler(make(), position: .after(state))
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
