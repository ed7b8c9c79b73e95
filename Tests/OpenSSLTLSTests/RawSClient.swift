import Foundation
import NIOConcurrencyHelpers

/// `openssl s_client` as a long-lived raw TLS client: whatever bytes the test writes go to the server verbatim, so malformed,
/// oversized and trickled requests can be sent over a real TLS connection.
final class RawSClient: @unchecked Sendable {
    // @unchecked: the process and pipes are configured in init and only used after; output is behind a lock.
    private let process = Process()
    private let input = Pipe()
    private let outputPipe = Pipe()
    private let received = NIOLockedValueBox<[UInt8]>([])
    private let closed = NIOLockedValueBox<Bool>(false)

    init(port: Int, caFile: String, extraArguments: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "s_client", "-connect", "127.0.0.1:\(port)", "-quiet", "-CAfile", caFile, "-verify_return_error",
            "-ign_eof",
        ] + extraArguments
        process.standardInput = input
        process.standardOutput = outputPipe
        process.standardError = FileHandle.nullDevice
        let received = self.received
        let closed = self.closed
        outputPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                closed.withLockedValue { $0 = true }
                handle.readabilityHandler = nil
            } else {
                received.withLockedValue { $0.append(contentsOf: data) }
            }
        }
        try process.run()
    }

    func send(_ text: String) { input.fileHandleForWriting.write(Data(text.utf8)) }
    func send(_ bytes: [UInt8]) { input.fileHandleForWriting.write(Data(bytes)) }

    var text: String { String(decoding: received.withLockedValue { $0 }, as: UTF8.self) }
    /// True once the server closed the connection (s_client exits and its stdout ends).
    var isClosed: Bool { closed.withLockedValue { $0 } }

    /// Waits until the received text contains `needle` or the timeout passes.
    @discardableResult
    func waitFor(_ needle: String, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if text.contains(needle) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return text.contains(needle)
    }

    /// Waits until the server has closed the connection.
    @discardableResult
    func waitForClose(timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isClosed || !process.isRunning { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    func close() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
    }

    deinit { if process.isRunning { process.terminate() } }
}
