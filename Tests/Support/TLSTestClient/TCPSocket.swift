import Foundation
import Glibc

/// A non-blocking TCP socket driven with `poll`, so every operation has a real deadline.
///
/// Sends use `MSG_NOSIGNAL`: writing to a connection the server already closed must fail with EPIPE, not kill the
/// test process with SIGPIPE.
final class TCPSocket {
    private(set) var fd: Int32

    /// What a receive produced.
    enum Received {
        case bytes([UInt8])
        /// The peer closed (FIN) or reset the connection.
        case closed
        case timedOut
    }

    private init(fd: Int32) { self.fd = fd }

    deinit { close() }

    /// Connects to `host` (name or IP literal, v4 or v6) and `port`, with TCP_NODELAY so single-byte writes leave at once.
    static func connect(host: String, port: Int, timeout: Duration) throws -> TCPSocket {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw TLSTestClientError.connectFailed.with("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        let deadline = ContinuousClock.now + timeout
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                lastError = String(cString: strerror(errno))
                continue
            }
            let socket = TCPSocket(fd: fd)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return socket }
            guard errno == EINPROGRESS else {
                lastError = String(cString: strerror(errno))
                continue
            }
            guard socket.wait(for: Int16(POLLOUT), until: deadline) else {
                throw TLSTestClientError.timedOut.with("connecting to \(host):\(port) took longer than \(timeout)")
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error == 0 { return socket }
            lastError = String(cString: strerror(error))
        }
        throw TLSTestClientError.connectFailed.with("cannot connect to \(host):\(port): \(lastError)")
    }

    /// Sends every byte or throws.
    func send(_ bytes: UnsafeRawBufferPointer, deadline: ContinuousClock.Instant) throws {
        var offset = 0
        while offset < bytes.count {
            guard fd >= 0 else { throw TLSTestClientError.connectionClosed.with("the socket was closed by this client") }
            let sent = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if sent > 0 {
                offset += sent
                continue
            }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                guard wait(for: Int16(POLLOUT), until: deadline) else {
                    throw TLSTestClientError.timedOut.with("the peer stopped reading; \(bytes.count - offset) bytes unsent")
                }
            case EPIPE, ECONNRESET:
                throw TLSTestClientError.connectionClosed.with("the peer closed the connection (\(String(cString: strerror(errno))))")
            default:
                throw TLSTestClientError.ioFailed.with("send: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Receives up to `maxBytes`, waiting until `deadline` for the first.
    func receive(maxBytes: Int, deadline: ContinuousClock.Instant) throws -> Received {
        var buffer = [UInt8](repeating: 0, count: max(1, maxBytes))
        while true {
            guard fd >= 0 else { return .closed }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { return .bytes(Array(buffer.prefix(count))) }
            if count == 0 { return .closed }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                guard wait(for: Int16(POLLIN), until: deadline) else { return .timedOut }
            case ECONNRESET, EPIPE:
                return .closed
            default:
                throw TLSTestClientError.ioFailed.with("recv: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Sends FIN; reads go on.
    func shutdownWrite() {
        if fd >= 0 { _ = shutdown(fd, Int32(SHUT_WR)) }
    }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    /// Waits for `events`; false when the deadline passed first.
    private func wait(for events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return false }
            let (seconds, attoseconds) = remaining.components
            let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&descriptor, 1, milliseconds)
            if rc > 0 { return true }
            if rc < 0, errno != EINTR { return true }  // let the following call report the error
        }
    }
}
