import Foundation
import NIOConcurrencyHelpers

/// `openssl s_client` as a long-lived raw TLS client: the bytes a test writes reach the server verbatim, so
/// malformed, oversized and trickled requests travel over a real TLS connection.
public final class RawTLSClient: @unchecked Sendable {
    // @unchecked: the process and pipes are configured in init and only used after; state is behind locks.
    private let process = Process()
    private let input = Pipe()
    private let outputPipe = Pipe()
    private let received = OutputBuffer()
    private let closed = ExitSignal()
    private var reader: PipeReader?

    /// Connects to 127.0.0.1:`port`, verifying against `caFile`.
    public init(port: Int, caFile: String, extraArguments: [String] = []) throws {
        ignoreSIGPIPE()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments =
            [
                "s_client", "-connect", "127.0.0.1:\(port)", "-quiet", "-CAfile", caFile, "-verify_return_error", "-ign_eof",
            ] + extraArguments
        process.standardInput = input
        process.standardOutput = outputPipe
        process.standardError = FileHandle.nullDevice
        let closed = self.closed
        let trace = Self.trace
        let received = self.received
        // The connection counts as closed at the pipe's end-of-file, after the last byte is appended, not when the
        // process exits: under load the reader thread can still be waking up with the answer when the exit is seen
        // (traced: exit, waitForClose returning with 0 bytes, then the 57-byte answer; see docs/ack-delivery.md).
        process.terminationHandler = { _ in trace?("exit") }
        try ProcessSpawn.run(process)
        try? outputPipe.fileHandleForWriting.close()
        reader = PipeReader(
            outputPipe.fileHandleForReading,
            onData: {
                trace?("bytes \($0.count)"); received.append($0)
            },
            atEnd: {
                trace?("eof"); closed.fire()
            })
    }

    /// Sends text.
    public func send(_ text: String) { send(Array(text.utf8)) }
    /// Sends bytes (ignored once the connection closed).
    public func send(_ bytes: [UInt8]) {
        guard !closed.isFired else { return }
        try? input.fileHandleForWriting.write(contentsOf: Data(bytes))
    }

    /// Everything received.
    public var text: String { received.text }
    /// True once the server closed the connection and everything it sent has been read.
    public var isClosed: Bool { closed.isFired }

    /// Waits until the received text contains `needle`.
    @discardableResult
    public func waitFor(_ needle: String, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if text.contains(needle) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return text.contains(needle)
    }

    /// Waits until the server has closed the connection.
    @discardableResult
    public func waitForClose(timeout: Duration = .seconds(10)) async -> Bool {
        let result = await closed.wait(timeout: timeout)
        Self.trace?("waitForClose returned \(result) holding \(received.text.utf8.count) bytes")
        return result
    }

    /// With `CALGATE_RAWTLS_TRACE` set, every client event goes to standard error with a monotonic timestamp.
    static let trace: (@Sendable (String) -> Void)? = {
        guard ProcessInfo.processInfo.environment["CALGATE_RAWTLS_TRACE"] != nil else { return nil }
        let start = ContinuousClock.now
        return { @Sendable (event: String) in
            let elapsed = ContinuousClock.now - start
            FileHandle.standardError.write(Data("rawtls +\(elapsed) \(event)\n".utf8))
        }
    }()

    /// Closes the client. SIGKILL, because a test process that traps signals hands SIG_IGN for them to children.
    public func close() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}
