import Foundation
import NIOConcurrencyHelpers

/// Runs external tools (curl, openssl, sslscan, calgate) without blocking Swift concurrency threads.
///
/// Output is read by a `PipeReader` thread and exit arrives through `terminationHandler`, so an in-process server
/// sharing the small cooperative pool of a 2-core machine keeps answering while tests wait.
public enum ChildProcess {
    /// Runs `path arguments` to completion (terminated after `timeout`), feeding `input` to its stdin.
    public static func run(
        _ path: String, _ arguments: [String], input: [UInt8]? = nil, timeout: Duration = .seconds(60)
    ) async throws -> (status: Int32, output: String) {
        ignoreSIGPIPE()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = OutputBuffer()
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        let exited = ExitSignal()
        process.terminationHandler = { _ in exited.fire() }
        try ProcessSpawn.run(process)
        // Our copy of the write end must close, or the reader never sees end-of-file.
        try? pipe.fileHandleForWriting.close()
        let reader = PipeReader(pipe.fileHandleForReading, into: output)
        if let input {
            try? stdin.fileHandleForWriting.write(contentsOf: Data(input))
            try? stdin.fileHandleForWriting.close()
        }
        if !(await exited.wait(timeout: timeout)) {
            kill(process.processIdentifier, SIGKILL)
            _ = await exited.wait(timeout: .seconds(5))
        }
        // All output has arrived once the pipe reaches end-of-file (grandchildren holding it are cut off after 5 s).
        _ = await reader.drained.wait(timeout: .seconds(5))
        return (process.terminationStatus, output.text)
    }
}

/// Collected output of a child process.
public final class OutputBuffer: Sendable {
    private let bytes = NIOLockedValueBox<[UInt8]>([])
    /// Creates an empty buffer.
    public init() {}
    /// Appends bytes.
    public func append(_ data: Data) { bytes.withLockedValue { $0.append(contentsOf: data) } }
    /// Everything so far as UTF-8 text.
    public var text: String { String(decoding: bytes.withLockedValue { $0 }, as: UTF8.self) }
    /// Everything so far, split into lines.
    public var lines: [String] { text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
}

/// A one-shot flag that async code can wait on with a timeout, polling without blocking a thread.
public final class ExitSignal: Sendable {
    private let fired = NIOLockedValueBox(false)
    /// Creates an unfired signal.
    public init() {}
    /// Marks the signal.
    public func fire() { fired.withLockedValue { $0 = true } }
    /// Whether it fired.
    public var isFired: Bool { fired.withLockedValue { $0 } }
    /// Waits until fired or the timeout passes; true when fired.
    public func wait(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !isFired, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return isFired
    }
}

/// Makes a fresh temporary directory.
public func makeTemporaryDirectory(_ prefix: String = "calgate-test") -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs `curl` and returns status code, body and the raw response headers.
public func curlRequest(_ url: String, caFile: String, arguments: [String] = []) async throws -> (status: Int, body: String, headers: String) {
    let headerFile = FileManager.default.temporaryDirectory.appendingPathComponent("hdr-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: headerFile) }
    let result = try await ChildProcess.run(
        "/usr/bin/curl",
        ["-s", "--max-time", "10", "--cacert", caFile, "-D", headerFile, "-o", "-", "-w", "\n%{http_code}"] + arguments + [url]
    )
    let text = result.output
    let lastNewline = text.lastIndex(of: "\n") ?? text.startIndex
    let status = Int(text[text.index(after: lastNewline)...].trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    let headers = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
    return (status, String(text[..<lastNewline]), headers)
}

/// Writing to a child that already exited must fail the write, not kill the test process.
public func ignoreSIGPIPE() {
    signal(SIGPIPE, SIG_IGN)
}
