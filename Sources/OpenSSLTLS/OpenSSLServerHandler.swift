import COpenSSL
import NIOCore

/// Server-side TLS on OpenSSL, as a NIO channel handler over memory BIOs.
///
/// Ciphertext from the socket goes into the read BIO; OpenSSL's output is drained from the write BIO. Plaintext
/// writes are buffered with their promises and encrypted at `flush`, so each flush becomes one ciphertext write.
/// Writes made before the handshake completes wait for it. Everything runs on the channel's event loop and the
/// `SSL` object never leaves it, so the handler takes no locks. Make one per connection with
/// `TLSServerContext.makeServerHandler()`.
public final class OpenSSLServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// Ciphertext from the socket.
    public typealias InboundIn = ByteBuffer
    /// Plaintext for the next handler.
    public typealias InboundOut = ByteBuffer
    /// Plaintext from the application.
    public typealias OutboundIn = ByteBuffer
    /// Ciphertext for the socket.
    public typealias OutboundOut = ByteBuffer

    private enum State {
        /// Waiting for the connection to become active.
        case idle
        /// Handshake in progress; writes wait.
        case handshaking
        /// Application data flows both ways.
        case active
        /// We sent close_notify and closed our output (`close(mode: .output)`); reads go on.
        case outputClosed
        /// close_notify sent or received and the channel is closing; no more application data.
        case closing
        /// Handshake failed, channel closed, or handler removed.
        case closed
    }

    private let owner: TLSServerContext
    /// Keeps the `SSL_CTX` and the ALPN list our `SSL` uses alive, even if a reload replaced them.
    private let box: SSLContextBox
    private var ssl: OpaquePointer?
    private var readBIO: OpaquePointer?
    private var writeBIO: OpaquePointer?
    private var state: State = .idle
    private var pendingWrites: [(buffer: ByteBuffer, promise: EventLoopPromise<Void>?)] = []
    private var spareWrites: [(buffer: ByteBuffer, promise: EventLoopPromise<Void>?)] = []
    /// A flush arrived during the handshake; honoured once it completes.
    private var flushRequested = false
    private var handshakeTimer: Scheduled<Void>?
    /// Plaintext went to the next handler since the last channelReadComplete.
    private var deliveredPlaintext = false
    /// Completes once close_notify (and everything written before it) was handed to the socket.
    private var closeNotifySent: EventLoopFuture<Void>?
    /// The client closed its sending side (TCP FIN seen).
    private var inputEnded = false
    /// Set while a full close waits for the client to finish (lingering close).
    private var lingerTimer: Scheduled<Void>?

    init(owner: TLSServerContext, box: SSLContextBox) {
        self.owner = owner
        self.box = box
    }

    deinit {
        // Normally freed in handlerRemoved; this covers a handler that was added to no pipeline.
        if let ssl { SSL_free(ssl) }
    }

    // MARK: Lifecycle

    /// Creates the `SSL` object and its memory BIOs; starts the handshake clock if the channel is already active.
    public func handlerAdded(context: ChannelHandlerContext) {
        guard let ssl = SSL_new(box.ctx) else {
            let reason = OpenSSLErrorQueue.drain()
            state = .closed
            context.fireErrorCaught(OpenSSLHandlerError.cannotCreateSession.with(reason: reason))
            context.close(promise: nil)
            return
        }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            let reason = OpenSSLErrorQueue.drain()
            state = .closed
            context.fireErrorCaught(OpenSSLHandlerError.cannotCreateSession.with(reason: reason))
            context.close(promise: nil)
            return
        }
        SSL_set_bio(ssl, rbio, wbio)  // the SSL owns both BIOs from here on
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.readBIO = rbio
        self.writeBIO = wbio
        if context.channel.isActive { startHandshake(context: context) }
    }

    /// Frees the `SSL` object (and its BIOs) and fails writes still waiting.
    public func handlerRemoved(context: ChannelHandlerContext) {
        cancelHandshakeTimer()
        lingerTimer?.cancel()
        lingerTimer = nil
        failPendingWrites(ChannelError.ioOnClosedChannel)
        if let ssl { SSL_free(ssl) }
        ssl = nil
        readBIO = nil
        writeBIO = nil
        state = .closed
    }

    /// Starts the handshake clock.
    public func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    /// Counts a handshake cut short by the disconnect and fails writes still waiting.
    public func channelInactive(context: ChannelHandlerContext) {
        // A client that disconnects mid-handshake failed it; an unclean EOF after it is simply the end.
        if case .handshaking = state { owner.recordHandshake(success: false) }
        cancelHandshakeTimer()
        lingerTimer?.cancel()
        lingerTimer = nil
        state = .closed
        failPendingWrites(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard case .idle = state, ssl != nil else { return }
        state = .handshaking
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: owner.handshakeTimeout) { [self] in
            self.handshakeTimer = nil
            guard case .handshaking = self.state else { return }
            self.failHandshake(context: context, error: OpenSSLHandlerError.handshakeTimedOut)
        }
    }

    private func cancelHandshakeTimer() {
        handshakeTimer?.cancel()
        handshakeTimer = nil
    }

    // MARK: Inbound

    /// Feeds ciphertext to OpenSSL, advances the handshake, and passes on the plaintext it yields.
    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let readBIO else { return }
        switch state {
        case .closing, .closed:
            return
        case .idle:
            startHandshake(context: context)
        case .handshaking, .active, .outputClosed:
            break
        }
        let written = buffer.withUnsafeReadableBytes { bytes in
            bytes.isEmpty ? 0 : BIO_write(readBIO, bytes.baseAddress, Int32(bytes.count))
        }
        guard written == buffer.readableBytes else {
            // Only an allocation failure inside OpenSSL gets here.
            fail(context: context, error: OpenSSLHandlerError.protocolError.with(reason: OpenSSLErrorQueue.drain()))
            return
        }
        if case .handshaking = state { advanceHandshake(context: context) }
        switch state {
        case .active, .outputClosed:
            readPlaintext(context: context)
        case .idle, .handshaking, .closing, .closed:
            break
        }
        // Handshake flights, alerts, session tickets and key-update replies.
        flushOutput(context: context, promise: nil)
    }

    /// Passes on read-complete only after plaintext was delivered; otherwise asks for more when autoRead is off.
    public func channelReadComplete(context: ChannelHandlerContext) {
        if deliveredPlaintext {
            deliveredPlaintext = false
            context.fireChannelReadComplete()
            return
        }
        // Nothing reached the next handler (handshake flights, half a record), so it has no reason to ask for more;
        // with autoRead off the connection would stall. Ask on its behalf. (With autoRead on, reads continue anyway.)
        switch state {
        case .idle, .handshaking, .active, .outputClosed:
            if (try? context.channel.syncOptions?.getOption(.autoRead)) == false { context.read() }
        case .closing:
            // Lingering: read and drop until the client closes.
            if lingerTimer != nil { context.read() }
        case .closed:
            break
        }
    }

    /// Ends a handshake whose client half-closed; passes every other event on.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // With remote half-closure allowed, a client that sends FIN before finishing its handshake (one that gave
        // up while queued, a scanner) would otherwise hold the connection until the handshake timeout.
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputEnded = true
            if lingerTimer != nil {
                // The client finished after our close_notify: the lingering close is over.
                lingerTimer?.cancel()
                lingerTimer = nil
                context.close(mode: .all, promise: nil)
                return
            }
            switch state {
            case .idle, .handshaking:
                failHandshake(context: context, error: OpenSSLHandlerError.handshakeFailed.with(reason: "client closed its side during the handshake"))
                return
            case .active, .outputClosed, .closing, .closed:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Advances the handshake with what the read BIO holds.
    private func advanceHandshake(context: ChannelHandlerContext) {
        guard let ssl else { return }
        OpenSSLErrorQueue.clear()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            cancelHandshakeTimer()
            state = .active
            owner.recordHandshake(success: true)
            context.fireUserInboundEventTriggered(Self.handshakeEvent(ssl))
            // Writes buffered during the handshake go out now, in the same ciphertext write as its last flight.
            if flushRequested, case .active = state { encryptAndFlush(context: context) }
            return
        }
        let error = SSL_get_error(ssl, rc)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return }
        // Refused (old protocol, no shared AEAD suite) or malformed: OpenSSL queued an alert, which failHandshake sends.
        failHandshake(context: context, error: OpenSSLHandlerError.handshakeFailed.with(reason: OpenSSLErrorQueue.drain()))
    }

    private func failHandshake(context: ChannelHandlerContext, error: OpenSSLHandlerError) {
        owner.recordHandshake(success: false)
        cancelHandshakeTimer()
        flushOutput(context: context, promise: nil)
        state = .closed
        failPendingWrites(error)
        context.close(promise: nil)
    }

    static func handshakeEvent(_ ssl: OpaquePointer) -> TLSHandshakeCompletedEvent {
        let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "unknown"
        let cipher = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "unknown"
        var alpn: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpn, &alpnLength)
        let negotiated = alpn.flatMap { alpnLength == 0 ? nil : String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self) }
        return TLSHandshakeCompletedEvent(protocolVersion: version, cipher: cipher, negotiatedALPN: negotiated)
    }

    /// Decrypts everything available, each buffer sized to the ciphertext waiting rather than a fixed 16 KiB.
    private func readPlaintext(context: ChannelHandlerContext) {
        while let ssl, let readBIO {
            switch state {
            case .active, .outputClosed: break
            case .idle, .handshaking, .closing, .closed: return
            }
            // Plaintext never exceeds the ciphertext it came from; a record split across reads leaves the rest in
            // SSL_pending for the next turn of the loop.
            let available = max(Int(SSL_pending(ssl)), min(Int(calgate_BIO_pending(readBIO)), 16_384))
            guard available > 0 else { return }
            var plaintext = context.channel.allocator.buffer(capacity: available)
            OpenSSLErrorQueue.clear()
            var rc: Int32 = 0
            plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: available) { bytes in
                rc = SSL_read(ssl, bytes.baseAddress, Int32(min(bytes.count, 16_384)))
                return rc > 0 ? Int(rc) : 0
            }
            if rc > 0 {
                deliveredPlaintext = true
                context.fireChannelRead(wrapInboundOut(plaintext))
                continue
            }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return
            case SSL_ERROR_ZERO_RETURN:
                // The peer sent close_notify: answer with ours (unless already sent) and close.
                if case .active = state {
                    OpenSSLErrorQueue.clear()
                    _ = SSL_shutdown(ssl)
                    OpenSSLErrorQueue.clear()
                }
                state = .closing
                failPendingWrites(ChannelError.ioOnClosedChannel)
                flushOutput(context: context, promise: nil)
                context.close(promise: nil)
                return
            default:
                // Bad record MAC, unexpected message, renegotiation attempt: OpenSSL queued an alert; send it and close.
                fail(context: context, error: OpenSSLHandlerError.protocolError.with(reason: OpenSSLErrorQueue.drain()))
                return
            }
        }
    }

    /// Ends a broken connection: the alert OpenSSL queued goes out, the error goes down the pipeline.
    private func fail(context: ChannelHandlerContext, error: OpenSSLHandlerError) {
        flushOutput(context: context, promise: nil)
        state = .closed
        failPendingWrites(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    // MARK: Outbound

    /// Buffers plaintext until the next flush (and until the handshake is done).
    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .idle, .handshaking, .active:
            pendingWrites.append((unwrapOutboundIn(data), promise))
        case .outputClosed:
            promise?.fail(ChannelError.outputClosed)
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    /// Encrypts the buffered writes and sends them as one ciphertext write.
    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .active:
            encryptAndFlush(context: context)
        case .idle, .handshaking:
            flushRequested = true
        case .outputClosed, .closing, .closed:
            break
        }
    }

    /// Encrypts every buffered write and sends the ciphertext as one write, its promise completing all of theirs.
    private func encryptAndFlush(context: ChannelHandlerContext) {
        flushRequested = false
        guard let ssl else { return }
        var combined: EventLoopPromise<Void>?
        // Two arrays traded back and forth, so a flush allocates no array storage once both have grown.
        var writes: [(buffer: ByteBuffer, promise: EventLoopPromise<Void>?)] = []
        swap(&writes, &spareWrites)
        swap(&writes, &pendingWrites)
        defer {
            writes.removeAll(keepingCapacity: true)
            swap(&writes, &spareWrites)
        }
        for (index, write) in writes.enumerated() {
            if write.buffer.readableBytes > 0 {
                OpenSSLErrorQueue.clear()
                let rc = write.buffer.withUnsafeReadableBytes { bytes in
                    SSL_write(ssl, bytes.baseAddress, Int32(bytes.count))
                }
                // Memory BIOs grow as needed and partial writes are off, so anything but a full write is fatal.
                if rc <= 0 {
                    let error = OpenSSLHandlerError.protocolError.with(reason: OpenSSLErrorQueue.drain())
                    combined?.fail(error)
                    for later in writes[index...] { later.promise?.fail(error) }
                    fail(context: context, error: error)
                    return
                }
            }
            if let promise = write.promise {
                if let combined {
                    combined.futureResult.cascade(to: promise)
                } else {
                    combined = promise
                }
            }
        }
        flushOutput(context: context, promise: combined)
    }

    /// Moves OpenSSL's output to the channel as one buffer of exactly the pending size, and flushes.
    private func flushOutput(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard let writeBIO else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let pending = Int(calgate_BIO_pending(writeBIO))
        guard pending > 0 else {
            promise?.succeed(())
            return
        }
        var out = context.channel.allocator.buffer(capacity: pending)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { bytes in
            Int(max(0, BIO_read(writeBIO, bytes.baseAddress, Int32(pending))))
        }
        context.write(wrapOutboundOut(out), promise: promise)
        context.flush()
    }

    /// Sends what is buffered and close_notify, then closes (output only for `.output`).
    ///
    /// The socket is shut only after that last ciphertext write completed: a close issued right behind a write (as
    /// HTTP handlers do after an answer) never overtakes it, even when the socket could not take it at once. A full
    /// close then lingers (RFC 9112 9.6): our side is shut with a FIN and what the client still sends is read and
    /// dropped until it closes or `TLSServerContext.lingerTimeout` passes, so unread pipelined requests or the rest
    /// of a refused body never turn the close into a reset that could destroy the answer at the client.
    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .input {
            context.close(mode: .input, promise: promise)
            return
        }
        switch state {
        case .active, .outputClosed:
            let sent = sendCloseNotify(context: context)
            if mode == .output {
                if case .active = state { state = .outputClosed }
                sent.assumeIsolated().whenComplete { _ in context.close(mode: .output, promise: promise) }
            } else {
                state = .closing
                context.channel.closeFuture.cascade(to: promise)
                sent.assumeIsolated().whenComplete { [self] result in
                    if case .success = result { self.linger(context: context) } else { context.close(mode: .all, promise: nil) }
                }
            }
        case .idle, .handshaking:
            if case .handshaking = state { owner.recordHandshake(success: false) }
            cancelHandshakeTimer()
            state = .closed
            failPendingWrites(ChannelError.ioOnClosedChannel)
            context.close(mode: .all, promise: promise)
        case .closing:
            if closeNotifySent != nil, mode == .all, context.channel.isActive {
                // Already closing after close_notify (lingering or about to): this close ends with that one.
                context.channel.closeFuture.cascade(to: promise)
            } else {
                context.close(mode: mode, promise: promise)
            }
        case .closed:
            context.close(mode: mode, promise: promise)
        }
    }

    /// Encrypts what is buffered, then close_notify, once per connection; the future completes when the socket took it.
    private func sendCloseNotify(context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        if let closeNotifySent { return closeNotifySent }
        encryptAndFlush(context: context)
        let sent = context.eventLoop.makePromise(of: Void.self)
        closeNotifySent = sent.futureResult
        guard let ssl, context.channel.isActive else {
            sent.succeed(())
            return sent.futureResult
        }
        switch state {
        case .active, .outputClosed, .closing:
            OpenSSLErrorQueue.clear()
            _ = SSL_shutdown(ssl)
            OpenSSLErrorQueue.clear()
            flushOutput(context: context, promise: sent)
        case .idle, .handshaking, .closed:
            sent.succeed(())
        }
        return sent.futureResult
    }

    /// After close_notify went out: shut our side and wait (bounded) for the client to close its own.
    private func linger(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        let timeout = owner.lingerTimeout
        guard !inputEnded, timeout > .zero else {
            context.close(mode: .all, promise: nil)
            return
        }
        let shut = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: shut)
        shut.futureResult.assumeIsolated().whenComplete { [self] result in
            guard case .success = result, !self.inputEnded else {
                context.close(mode: .all, promise: nil)
                return
            }
            self.lingerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                self.lingerTimer = nil
                context.close(mode: .all, promise: nil)
            }
            context.read()
        }
    }

    private func failPendingWrites(_ error: any Error) {
        guard !pendingWrites.isEmpty else { return }
        let writes = pendingWrites
        pendingWrites.removeAll()
        flushRequested = false
        for write in writes { write.promise?.fail(error) }
    }
}
