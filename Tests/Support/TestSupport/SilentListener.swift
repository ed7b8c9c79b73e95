import Foundation
import Synchronization

/// A loopback TCP socket that never answers, which is how a hung provider looks to a client.
///
/// By default it listens but never accepts: connections complete in the kernel's backlog. With `accepting`, a thread
/// accepts each connection and holds it open, unread, until the listener is released, so a client's request sits on
/// an established connection of its own (the per-request timeout test uses that: a connection left in the backlog
/// is at the mercy of the listening socket). The socket is close-on-exec, so child processes other tests spawn never
/// hold a copy.
public final class SilentListener: Sendable {
    /// The bound port.
    public let port: Int
    private let fd: Int32
    private let state = AcceptorState()

    /// What the accepting thread shares with the listener.
    private final class AcceptorState: Sendable {
        let held = Mutex<[Int32]>([])
        let done = Mutex(true)
    }

    /// Binds 127.0.0.1 on a free port; with `accepting`, accepts and holds every connection.
    public init(accepting: Bool = false) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        func bindTo(_ port: UInt16) -> Bool {
            address.sin_port = port.bigEndian
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
        }
        // A port below Linux's ephemeral range (32768-60999) first: a test often closes this listener and hands its
        // port to a gateway it starts later, and a port from the ephemeral range can be taken meanwhile by any
        // outgoing connection on the machine (a parallel test's curl), failing that start with "Address already in
        // use". Port 0 (the kernel's choice) is the fallback.
        var bound = false
        for _ in 0..<64 where !bound { bound = bindTo(UInt16.random(in: 20_000..<32_768)) }
        if !bound { bound = bindTo(0) }
        guard bound, listen(fd, 64) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        guard accepting else { return }
        let state = self.state
        state.done.withLock { $0 = false }
        let thread = Thread {
            defer { state.done.withLock { $0 = true } }
            while true {
                let client = accept(fd, nil, nil)
                if client >= 0 {
                    _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                    state.held.withLock { $0.append(client) }
                } else if errno != EINTR && errno != ECONNABORTED {
                    return  // the listener was shut down
                }
            }
        }
        thread.stackSize = 128 * 1024
        thread.start()
    }

    deinit {
        // Wakes a blocked accept (it fails once the socket is shut down) before the descriptor is released.
        shutdown(fd, Int32(SHUT_RDWR))
        // The thread must be gone before the number is released: a later accept on a reused descriptor would take
        // another socket's connections.
        let deadline = Date().addingTimeInterval(2)
        while !state.done.withLock({ $0 }), Date() < deadline { usleep(1000) }
        close(fd)
        for client in state.held.withLock({ $0 }) { close(client) }
    }
}
