import NIOCore

/// Enforces the request head and body read deadlines on one connection.
///
/// Sits on the byte stream between TLS and the HTTP decoder, so it sees the first byte of every request;
/// `HTTPActivityHandler`, right after the decoder, reports request and response boundaries to it.
public final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Why a connection was cut.
    public enum CutReason: String, Sendable {
        /// The request head did not arrive in time.
        case slowHead = "slow_head"
        /// The request body did not arrive in time.
        case slowBody = "slow_body"
    }

    private var machine: ConnectionGuardStateMachine
    /// The one timer, kept lazily; a cancel leaves it too (the machine ignores it between requests).
    private var timer = LazyDeadlineTimer()
    private var context: ChannelHandlerContext?
    private let onCut: @Sendable (CutReason) -> Void

    private static let requestTimeoutResponse = ByteBuffer(
        string: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 94\r\n\r\n"
            + #"{"error":{"code":"request_timeout","message":"the request head did not arrive in time"}}     "#
    )

    /// Creates a guard with the two deadlines; `onCut` counts cut connections.
    public init(headTimeout: TimeAmount, bodyTimeout: TimeAmount, onCut: @escaping @Sendable (CutReason) -> Void) {
        self.machine = ConnectionGuardStateMachine(headTimeout: headTimeout, bodyTimeout: bodyTimeout)
        self.onCut = onCut
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer.cancel()
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        perform(machine.bytesReceived(now: .now()))
        context.fireChannelRead(data)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        context.fireChannelInactive()
    }

    func headReceived() { perform(machine.headReceived(now: .now())) }
    func requestEnded() { perform(machine.requestEnded()) }
    func responseHeadWritten(connectionClose: Bool) { machine.responseHeadWritten(connectionClose: connectionClose) }
    func responseEnded() { perform(machine.responseEnded(now: .now())) }

    private func perform(_ action: ConnectionGuardStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .arm(let deadline):
            timer.arm(deadline, on: context.eventLoop) { [self] in
                self.timer.fired()
                self.perform(self.machine.timerFired(now: .now()))
            }
        case .cancelTimer:
            // Left to fire: between requests the machine answers it with `.none`.
            break
        case .rejectSlowHead:
            onCut(.slowHead)
            context.writeAndFlush(wrapOutboundOut(Self.requestTimeoutResponse), promise: nil)
            context.close(promise: nil)
        case .closeSlowBody:
            onCut(.slowBody)
            context.close(promise: nil)
        case .closeAfterResponse:
            // The response's bytes are already queued ahead of the close; flush then close.
            context.flush()
            context.close(promise: nil)
        }
    }
}
