import NIOCore
import NIOHTTP1

/// Sits right after the HTTP/1 decoder and sees every request and answer on the connection, webhooks included:
/// reports request and response boundaries to the connection's `ConnectionGuardHandler` (head and body deadlines)
/// and carries out `HTTPActivityStateMachine`'s idle timeout and graceful shutdown, which Hummingbird's own state
/// handler, behind the webhook fast path, can no longer see whole.
///
/// One timer per connection, kept lazily like the guard's: an answer that ends while a timer is armed schedules none.
/// Time is the event loop's (`EventLoop.now`), so tests drive it on an embedded loop.
public final class HTTPActivityHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    private var machine: HTTPActivityStateMachine
    private var guardHandler: ConnectionGuardHandler?
    private var timer = LazyDeadlineTimer()
    private var context: ChannelHandlerContext?

    /// Closes connections idle for `idleTimeout` (nil: never).
    public init(idleTimeout: TimeAmount?) {
        self.machine = HTTPActivityStateMachine(idleTimeout: idleTimeout, now: .now())
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guardHandler = try? context.pipeline.syncOperations.handler(type: ConnectionGuardHandler.self)
        if context.channel.isActive { perform(machine.connectionActive(now: context.eventLoop.now)) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer.cancel()
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        perform(machine.connectionActive(now: context.eventLoop.now))
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            machine.requestHeadRead(now: context.eventLoop.now)
            guardHandler?.headReceived()
        case .body:
            machine.requestBodyRead(now: context.eventLoop.now)
        case .end:
            machine.requestEndRead(now: context.eventLoop.now)
            guardHandler?.requestEnded()
        }
        context.fireChannelRead(data)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        // Handled here, where every request is counted; passed on, Hummingbird's handler would close a connection
        // whose only request is a webhook still being answered.
        perform(machine.quiesce())
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            if head.status.code >= 200 {
                guardHandler?.responseHeadWritten(connectionClose: Self.asksToClose(head.headers))
            }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            context.write(data, promise: promise)
            guardHandler?.responseEnded()
            perform(machine.responseEnded(now: context.eventLoop.now))
        }
    }

    /// Whether a `Connection` field carries the `close` option.
    static func asksToClose(_ headers: HTTPHeaders) -> Bool {
        headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
    }

    private func perform(_ action: HTTPActivityStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .arm(let deadline):
            timer.arm(deadline, on: context.eventLoop) { [self] in
                self.timer.fired()
                self.perform(self.machine.timerFired(now: context.eventLoop.now))
            }
        case .close:
            timer.cancel()
            context.flush()
            context.close(promise: nil)
        }
    }
}
