import COpenSSL
import NIOCore

/// Server-side TLS on OpenSSL, as a NIO channel handler over memory BIOs.
///
/// Ciphertext from the socket goes into the read BIO and OpenSSL's output is drained from the write BIO. Plaintext
/// writes are buffered with their promises and encrypted at `flush`, so each flush becomes one ciphertext write.
/// Everything runs on the channel's event loop; the `SSL` object never leaves it.
public final class OpenSSLServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        /// Waiting for the connection to become active.
        case idle
        /// Handshake in progress.
        case handshaking
        /// Application data flows.
        case active
        /// close_notify sent or received; no more application data.
        case closing
        /// Channel closed or handler removed.
        case closed
    }

    private let owner: TLSServerContext
    private let box: SSLContextBox
    private var ssl: OpaquePointer?
    private var readBIO: OpaquePointer?
    private var writeBIO: OpaquePointer?
    private var state: State = .idle
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushPending = false
    private var handshakeTimer: Scheduled<Void>?
    private var closePromise: EventLoopPromise<Void>?

    init(context owner: TLSServerContext, box: SSLContextBox) {
        self.owner = owner
        self.box = box
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        guard let ssl = SSL_new(box.ctx), let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            ERR_clear_error()
            context.fireErrorCaught(OpenSSLHandlerError.cannotCreateSession)
            context.close(promise: nil)
            return
        }
        SSL_set_bio(ssl, rbio, wbio)
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.readBIO = rbio
        self.writeBIO = wbio
        if context.channel.isActive { startHandshake(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        failPendingWrites(ChannelError.ioOnClosedChannel)
        if let ssl { SSL_free(ssl) }  // frees both BIOs too
        ssl = nil
        readBIO = nil
        writeBIO = nil
        state = .closed
    }

    public func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        state = .handshaking
        let timeout = owner.handshakeTimeout
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            self.handshakeTimer = nil
            if case .handshaking = self.state {
                self.owner.recordHandshake(success: false)
                self.state = .closed
                context.close(promise: nil)
            }
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if case .handshaking = state {
            owner.recordHandshake(success: false)
        }
        handshakeTimer?.cancel()
        handshakeTimer = nil
        state = .closed
        failPendingWrites(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let readBIO, ssl != nil else { return }
        switch state {
        case .closed:
            return
        case .idle:
            startHandshake(context: context)
        case .handshaking, .active, .closing:
            break
        }
        let received = buffer.readableBytes
        buffer.withUnsafeReadableBytes { bytes in
            _ = BIO_write(readBIO, bytes.baseAddress, Int32(bytes.count))
        }
        if case .handshaking = state {
            guard continueHandshake(context: context) else { return }
        }
        if case .active = state {
            readPlaintext(context: context, hint: received)
        }
        // Reading can produce output (alerts, session tickets, key updates).
        drainWriteBIO(context: context, promise: nil, flush: true)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The server runs with remote half-closure on; a client that sends FIN before finishing its handshake
        // (a client that gave up while queued, a scanner) would otherwise hold a connection slot until the
        // handshake timeout.
        if let event = event as? ChannelEvent, event == .inputClosed {
            switch state {
            case .idle, .handshaking:
                owner.recordHandshake(success: false)
                state = .closed
                handshakeTimer?.cancel()
                handshakeTimer = nil
                failPendingWrites(ChannelError.ioOnClosedChannel)
                context.close(promise: nil)
                return
            case .active, .closing, .closed:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    /// Advances the handshake; false when the connection is being closed.
    private func continueHandshake(context: ChannelHandlerContext) -> Bool {
        guard let ssl else { return false }
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            handshakeTimer?.cancel()
            handshakeTimer = nil
            state = .active
            owner.recordHandshake(success: true)
            drainWriteBIO(context: context, promise: nil, flush: true)
            context.fireUserInboundEventTriggered(handshakeEvent(ssl))
            if flushPending { encryptAndFlush(context: context) }
            return true
        }
        let error = SSL_get_error(ssl, rc)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE {
            drainWriteBIO(context: context, promise: nil, flush: true)
            return true
        }
        // Refused (old protocol, no shared AEAD suite, garbage): send the alert OpenSSL queued, then close.
        ERR_clear_error()
        owner.recordHandshake(success: false)
        handshakeTimer?.cancel()
        handshakeTimer = nil
        state = .closed
        drainWriteBIO(context: context, promise: nil, flush: true)
        failPendingWrites(OpenSSLHandlerError.handshakeFailed)
        context.close(promise: nil)
        return false
    }

    private func handshakeEvent(_ ssl: OpaquePointer) -> TLSHandshakeCompletedEvent {
        let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "unknown"
        let cipher = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "unknown"
        var alpn: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpn, &alpnLength)
        let negotiated = alpn.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self) }
        return TLSHandshakeCompletedEvent(protocolVersion: version, cipher: cipher, negotiatedALPN: negotiated)
    }

    /// Decrypts everything available; buffers are sized to what arrived, not a fixed 16 KiB.
    private func readPlaintext(context: ChannelHandlerContext, hint: Int) {
        guard let ssl else { return }
        while case .active = state {
            let capacity = max(Int(SSL_pending(ssl)), min(max(hint, 512), 16_384))
            var plaintext = context.channel.allocator.buffer(capacity: capacity)
            ERR_clear_error()
            var rc: Int32 = 0
            plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { bytes in
                rc = SSL_read(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
                return rc > 0 ? Int(rc) : 0
            }
            if rc > 0 {
                context.fireChannelRead(wrapInboundOut(plaintext))
                continue
            }
            let error = SSL_get_error(ssl, rc)
            switch error {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return
            case SSL_ERROR_ZERO_RETURN:
                // The peer sent close_notify: answer with ours and close.
                state = .closing
                ERR_clear_error()
                _ = SSL_shutdown(ssl)
                drainWriteBIO(context: context, promise: nil, flush: true)
                context.close(promise: nil)
                return
            default:
                // Corrupt record or protocol violation: OpenSSL queued an alert; send it and close.
                ERR_clear_error()
                state = .closed
                drainWriteBIO(context: context, promise: nil, flush: true)
                context.fireErrorCaught(OpenSSLHandlerError.protocolError)
                context.close(promise: nil)
                return
            }
        }
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        case .idle, .handshaking, .active:
            pendingWrites.append((unwrapOutboundIn(data), promise))
        }
    }

    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .active:
            encryptAndFlush(context: context)
        case .idle, .handshaking:
            flushPending = true
        case .closing, .closed:
            break
        }
    }

    /// Encrypts every buffered write and sends the ciphertext as one write, with the promises combined.
    private func encryptAndFlush(context: ChannelHandlerContext) {
        flushPending = false
        guard let ssl, !pendingWrites.isEmpty else { return }
        let writes = pendingWrites
        pendingWrites.removeAll(keepingCapacity: true)
        var promises: [EventLoopPromise<Void>] = []
        for (buffer, promise) in writes {
            if let promise { promises.append(promise) }
            guard buffer.readableBytes > 0 else { continue }
            ERR_clear_error()
            let rc = buffer.withUnsafeReadableBytes { bytes in
                SSL_write(ssl, bytes.baseAddress, Int32(bytes.count))
            }
            if rc <= 0 {
                ERR_clear_error()
                for p in promises { p.fail(OpenSSLHandlerError.protocolError) }
                for (_, later) in writes.dropFirst(promises.count) { later?.fail(OpenSSLHandlerError.protocolError) }
                context.close(promise: nil)
                return
            }
        }
        let combined: EventLoopPromise<Void>?
        switch promises.count {
        case 0: combined = nil
        case 1: combined = promises[0]
        default:
            let promise = context.eventLoop.makePromise(of: Void.self)
            for p in promises { promise.futureResult.cascade(to: p) }
            combined = promise
        }
        drainWriteBIO(context: context, promise: combined, flush: true)
    }

    /// Moves OpenSSL's output to the channel as one buffer of exactly the pending size.
    private func drainWriteBIO(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?, flush: Bool) {
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
        if flush { context.flush() }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input else {
            context.close(mode: mode, promise: promise)
            return
        }
        switch state {
        case .active:
            // Send what is buffered, then close_notify, then close the socket without waiting for the peer's.
            encryptAndFlush(context: context)
            state = .closing
            if let ssl {
                ERR_clear_error()
                _ = SSL_shutdown(ssl)
                ERR_clear_error()
            }
            drainWriteBIO(context: context, promise: nil, flush: true)
            context.close(mode: .all, promise: promise)
        case .idle, .handshaking, .closing, .closed:
            if case .handshaking = state {
                owner.recordHandshake(success: false)
            }
            state = .closed
            failPendingWrites(ChannelError.ioOnClosedChannel)
            context.close(mode: .all, promise: promise)
        }
    }

    private func failPendingWrites(_ error: any Error) {
        let writes = pendingWrites
        pendingWrites.removeAll()
        for (_, promise) in writes { promise?.fail(error) }
    }
}

/// Errors the TLS handler reports down the pipeline.
public enum OpenSSLHandlerError: Error, Sendable {
    /// OpenSSL could not allocate a session.
    case cannotCreateSession
    /// The handshake was refused or broken.
    case handshakeFailed
    /// A record could not be decrypted or the peer broke the protocol.
    case protocolError
}
