import HTTPTypes
import NIOCore
import NIOHTTP1

/// Acknowledges provider webhooks on the event loop: collects the body, verifies it through `WebhookIntake`
/// (cached secrets, no store read), waits for the group commit, and writes the answer — no hop into Swift
/// concurrency per request. Every other request passes through untouched to the router behind it.
///
/// Works on NIO's own HTTP/1 parts, right after the decoder and `HTTPActivityHandler` and before Hummingbird's
/// conversion to HTTP types, which webhooks never pay for (the activity handler runs idle timeouts and graceful
/// shutdown for every request, webhooks included). Answers leave in request order: a webhook that arrives while the
/// router still owes a response waits for it, and while a webhook is being answered later parts are held and reads
/// are paused (backpressure).
public final class WebhookAckHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// Passing a request's parts to the router.
        case forwarding
        /// Reading a webhook's body.
        case collecting(WebhookRoute, HTTPRequestHead, ByteBuffer)
        /// Refused for its size: the body is read and dropped (up to `drainLimit`) before the answer, so closing
        /// afterwards does not reset a client still sending it (which would lose the answer).
        case draining(WebhookRoute, GatewayHTTPError, received: Int)
        /// Verification or the commit is in flight.
        case answering
        /// Refused before its body ended; the connection closes after the answer.
        case closing
    }

    /// Most body bytes read and dropped for a refused request before answering anyway.
    static let drainLimit = 1 << 20

    private let routes: [String: WebhookRoute]
    private let intake: WebhookIntake
    private let metrics: GatewayMetrics
    private var state = State.idle
    /// Requests passed to the router whose response has not ended yet.
    private var routerResponsesOwed = 0
    /// What arrived while a webhook was answered (or waited for the router), in order: request parts, and the
    /// end of input or an error, which must not overtake the parts before them (the router's side would end the
    /// connection before the held requests were answered).
    private enum Held {
        case part(HTTPServerRequestPart)
        case inputClosed
        case error(any Error)
    }
    private var held = CircularBuffer<Held>()
    /// Closes asked for from the router's side while a webhook was being answered; carried out once it is written.
    private var deferredCloses: [(mode: CloseMode, promise: EventLoopPromise<Void>?)] = []
    /// The last answer's end: a deferred close waits for it.
    private var lastAnswerWritten: EventLoopFuture<Void>?
    /// A forwarded request or the router's response said `Connection: close`: nothing after it is processed.
    private var routerCloses = false
    private var readPaused = false
    /// Set while `resume` works through `held`, so an answer written synchronously inside it does not start a
    /// second pass over the same parts.
    private var resuming = false
    private var context: ChannelHandlerContext?
    /// The peer's address, read once per connection (formatting it allocates).
    private var sourceAddress: String?
    /// An acknowledgement's header fields (`Content-Length: 0`), shared by every empty answer that keeps the
    /// connection open.
    private static let emptyAnswerHeaders: HTTPHeaders = ["content-length": "0"]
    /// A webhook's body before its first chunk (Google pushes have none): no buffer allocated per request.
    private static let noBody = ByteBuffer()

    /// Serves `routes` (by exact path) through `intake`.
    public init(routes: [String: WebhookRoute], intake: WebhookIntake, metrics: GatewayMetrics) {
        self.routes = routes
        self.intake = intake
        self.metrics = metrics
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        held.removeAll()
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if isAnswering || !held.isEmpty || !process(part, context: context) {
            held.append(.part(part))
        }
    }

    /// A client that half-closes after its last request still gets every answer: the end of input reaches the
    /// router's side (which then closes) only after the requests before it were handed on or answered.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, isAnswering || !held.isEmpty {
            held.append(.inputClosed)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A decoding error behind a webhook being answered waits its turn, like the end of input.
    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if isAnswering || !held.isEmpty {
            held.append(.error(error))
            return
        }
        context.fireErrorCaught(error)
    }

    /// Handles one held item; false when it has to wait.
    private func process(_ item: Held, context: ChannelHandlerContext) -> Bool {
        switch item {
        case .part(let part):
            return process(part, context: context)
        case .inputClosed:
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            return true
        case .error(let error):
            context.fireErrorCaught(error)
            return true
        }
    }

    /// Handles one part; false when it has to wait until the router's owed responses are written.
    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) -> Bool {
        // After a request or response that closes the connection, nothing more is read or answered (RFC 9112 9.6).
        if routerCloses, case .idle = state { return true }
        switch state {
        case .idle:
            guard case .head(let head) = part, head.method == .POST, let route = route(for: head) else {
                if case .head(let head) = part {
                    routerResponsesOwed += 1
                    state = .forwarding
                    if HTTPActivityHandler.asksToClose(head.headers) { routerCloses = true }
                }
                context.fireChannelRead(wrapInboundOut(part))
                return true
            }
            // Answer in order: the router is still responding to an earlier request on this connection.
            guard routerResponsesOwed == 0 else { return false }
            if let declared = head.headers.first(name: "content-length"), let length = Int(declared), length > route.bodyLimit {
                // A client waiting for `100 Continue` has not sent the body: answer at once.
                let waitsForContinue = head.headers.first(name: "expect")?.lowercased() == "100-continue"
                if waitsForContinue || length > Self.drainLimit {
                    refuse(.payloadTooLarge(limit: route.bodyLimit), route: route, context: context)
                } else {
                    state = .draining(route, .payloadTooLarge(limit: route.bodyLimit), received: 0)
                }
                return true
            }
            if let error = GatewayHTTPError.framingError(head.headers) {
                refuse(error, route: route, context: context)
                return true
            }
            state = .collecting(route, head, Self.noBody)
        case .forwarding:
            if case .end = part { state = .idle }
            context.fireChannelRead(wrapInboundOut(part))
        case .collecting(let route, let head, var body):
            switch part {
            case .head:
                // The decoder never delivers a head inside a request; treat it as a broken connection.
                state = .closing
                context.close(promise: nil)
            case .body(let chunk):
                guard body.readableBytes + chunk.readableBytes <= route.bodyLimit else {
                    state = .draining(route, .payloadTooLarge(limit: route.bodyLimit), received: body.readableBytes + chunk.readableBytes)
                    return true
                }
                state = .idle  // drop the enum's reference so the append does not copy the buffer
                if body.readableBytes == 0 {
                    body = chunk  // a body that arrives in one chunk is kept as it came: no copy
                } else {
                    body.writeImmutableBuffer(chunk)
                }
                state = .collecting(route, head, body)
            case .end:
                state = .answering
                answer(route, head: head, body: body, context: context)
            }
        case .draining(let route, let error, let received):
            switch part {
            case .head:
                state = .closing
                context.close(promise: nil)
            case .body(let chunk):
                let total = received + chunk.readableBytes
                if total > Self.drainLimit {
                    refuse(error, route: route, context: context)
                } else {
                    state = .draining(route, error, received: total)
                }
            case .end:
                refuse(error, route: route, context: context)
            }
        case .answering:
            return false
        case .closing:
            break  // the rest of a refused request; the connection is closing
        }
        return true
    }

    private func route(for head: HTTPRequestHead) -> WebhookRoute? {
        let path = head.uri
        if let query = path.firstIndex(of: "?") { return routes[String(path[..<query])] }
        return routes[path]
    }

    private func answer(_ route: WebhookRoute, head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let query = head.uri.firstIndex(of: "?").map { String(head.uri[head.uri.index(after: $0)...]) }
        let clientCloses = HTTPActivityHandler.asksToClose(head.headers)
        let eventLoop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: eventLoop)
        let source: String
        if let known = sourceAddress {
            source = known
        } else {
            source = context.channel.remoteAddress?.ipAddress ?? "unknown"
            sourceAddress = source
        }
        intake.receive(route, headers: head.headers, query: query, body: body, source: source) { reply in
            if eventLoop.inEventLoop {
                handler.value.write(reply, route: route, close: clientCloses)
            } else {
                eventLoop.execute { handler.value.write(reply, route: route, close: clientCloses) }
            }
        }
    }

    private func refuse(_ error: GatewayHTTPError, route: WebhookRoute, context: ChannelHandlerContext) {
        state = .answering
        write(.error(error), route: route, close: true)
    }

    // MARK: Answering

    private func write(_ reply: WebhookReply, route: WebhookRoute, close: Bool) {
        guard let context, case .answering = state else { return }
        metrics.requestServed(handler: route.handlerKey, status: reply.status)
        let closing = close || reply.closesConnection
        let headers: HTTPHeaders
        if !closing, reply.fields.isEmpty, reply.body.readableBytes == 0 {
            headers = Self.emptyAnswerHeaders
        } else {
            var built = HTTPHeaders(reply.fields.map { ($0.name.rawName, $0.value) })
            built.replaceOrAdd(name: "content-length", value: String(reply.body.readableBytes))
            if closing { built.replaceOrAdd(name: "connection", value: "close") }
            headers = built
        }
        let status = HTTPResponseStatus(statusCode: reply.status.code, reasonPhrase: reply.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if reply.body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(reply.body))), promise: nil) }
        guard closing || !deferredCloses.isEmpty else {
            // Nothing waits for this answer's end (closes asked for later are not deferred): no promise to allocate.
            lastAnswerWritten = nil
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            state = .idle
            resume(context: context)
            performDeferredCloses(context: context)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        lastAnswerWritten = written.futureResult
        if closing {
            // This handler closes, and only once the answer's last byte was handed to the socket (the TLS handler
            // then sends close_notify after it and lingers until the client is done).
            state = .closing
            held.removeAll()
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            let deferred = deferredCloses
            deferredCloses.removeAll()
            written.futureResult.assumeIsolated().whenComplete { _ in
                let closed = context.eventLoop.makePromise(of: Void.self)
                context.close(promise: closed)
                for close in deferred { closed.futureResult.cascade(to: close.promise) }
            }
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        state = .idle
        resume(context: context)
        performDeferredCloses(context: context)
    }

    /// Carries out closes the router's side asked for while a webhook was answered, after that answer's end.
    private func performDeferredCloses(context: ChannelHandlerContext) {
        guard !isAnswering, !deferredCloses.isEmpty else { return }
        let closes = deferredCloses
        deferredCloses.removeAll()
        held.removeAll()
        let after = lastAnswerWritten ?? context.eventLoop.makeSucceededVoidFuture()
        after.assumeIsolated().whenComplete { _ in
            for close in closes { context.close(mode: close.mode, promise: close.promise) }
        }
    }

    /// Works through held parts until one has to wait, then lets reads flow again if nothing is held.
    private func resume(context: ChannelHandlerContext) {
        guard !resuming else { return }
        resuming = true
        defer { resuming = false }
        var forwarded = false
        while let item = held.first {
            if case .answering = state { break }
            if case .forwarding = state { forwarded = true }
            if case .part = item {
            } else if forwarded {
                // What was handed on reaches the router at read-complete; deliver it before the end of input.
                context.fireChannelReadComplete()
                forwarded = false
            }
            guard process(item, context: context) else { break }
            if case .forwarding = state { forwarded = true }
            _ = held.popFirst()
        }
        // Outside a read cycle: the router's channel delivers what it was given only at read-complete.
        if forwarded { context.fireChannelReadComplete() }
        if held.isEmpty, readPaused, !isAnswering {
            readPaused = false
            context.read()
        }
    }

    private var isAnswering: Bool {
        if case .answering = state { return true }
        return false
    }

    // MARK: Outbound

    public func read(context: ChannelHandlerContext) {
        if isAnswering || !held.isEmpty {
            readPaused = true
        } else {
            context.read()
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        if case .head(var head) = part, head.status.code >= 200 {
            if routerCloses, !HTTPActivityHandler.asksToClose(head.headers) {
                // The request asked to close: say so in the answer (RFC 9112 9.6), or a client keeps the connection
                // for its next request and finds it dead (libcurl: "Connection died, retrying").
                head.headers.replaceOrAdd(name: "connection", value: "close")
                context.write(wrapOutboundOut(.head(head)), promise: promise)
                return
            }
            if HTTPActivityHandler.asksToClose(head.headers) { routerCloses = true }
        }
        context.write(data, promise: promise)
        if case .end = part {
            routerResponsesOwed = max(0, routerResponsesOwed - 1)
            if routerResponsesOwed == 0, !held.isEmpty { resume(context: context) }
        }
    }

    /// The router's side closes when its input ended or it answered a request that closes. While a webhook is being
    /// answered, that close waits for the answer: the webhook's row is committed, so its answer must go out.
    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input, isAnswering else {
            context.close(mode: mode, promise: promise)
            return
        }
        deferredCloses.append((mode, promise))
    }
}
