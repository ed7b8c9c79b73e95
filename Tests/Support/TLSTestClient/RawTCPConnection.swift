/// A plain TCP connection for tests that must not (or not yet) speak TLS: idle clients, half a ClientHello,
/// plaintext HTTP sent to the TLS port. Made by `TLSTestClient.rawTCPConnect`.
public final class RawTCPConnection: @unchecked Sendable {
    // @unchecked: meant to be driven from one thread (a test); nothing in it is shared.
    private let socket: TCPSocket

    init(socket: TCPSocket) { self.socket = socket }

    /// Sends bytes.
    public func write(_ bytes: [UInt8], timeout: Duration = .seconds(5)) throws {
        try bytes.withUnsafeBytes { try socket.send($0, deadline: ContinuousClock.now + timeout) }
    }

    /// Sends UTF-8 text.
    public func write(_ text: String, timeout: Duration = .seconds(5)) throws {
        try write(Array(text.utf8), timeout: timeout)
    }

    /// The next bytes the peer sent; empty once it closed the connection. Throws `.timedOut` when nothing arrived.
    public func read(maxBytes: Int = 16_384, timeout: Duration = .seconds(5)) throws -> [UInt8] {
        switch try socket.receive(maxBytes: maxBytes, deadline: ContinuousClock.now + timeout) {
        case .bytes(let bytes): return bytes
        case .closed: return []
        case .timedOut: throw TLSTestClientError.timedOut.with("nothing received within \(timeout)")
        }
    }

    /// Waits for the peer to close the connection, discarding anything it sends; false if it is still open at the deadline.
    public func waitForClose(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            switch try? socket.receive(maxBytes: 16_384, deadline: deadline) {
            case .bytes: continue
            case .closed, nil: return true
            case .timedOut: return false
            }
        }
    }

    /// Half-closes: sends FIN, keeps reading.
    public func shutdownWrite() { socket.shutdownWrite() }

    /// Closes the socket (no-op if already closed).
    public func close() { socket.close() }
}
