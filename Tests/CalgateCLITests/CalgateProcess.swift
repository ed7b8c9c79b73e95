import Foundation
import Synchronization
import TestSupport

/// Runs the built `calgate` executable as a real child process and reads its JSON log lines.
final class CalgateProcess: @unchecked Sendable {
    // @unchecked: `process` and the pipes are set up in init and only read afterwards; `lines` is behind a Mutex.
    let process = Process()
    private let stderrPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let collected = OutputCollector()
    private var readers: [PipeReader] = []

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
    }

    /// The debug binary `swift build --build-tests` produced next to the test bundle.
    static var binary: String {
        if let override = ProcessInfo.processInfo.environment["CALGATE_BINARY"] { return override }
        let testBundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [
            testBundle.appendingPathComponent("calgate").path,
            repositoryRoot.appendingPathComponent(".build/debug/calgate").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    init(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CALGATE_") }
        env.merge(environment) { $1 }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardError = stderrPipe
        process.standardOutput = stdoutPipe
        try ProcessSpawn.run(process)
        try? stderrPipe.fileHandleForWriting.close()
        try? stdoutPipe.fileHandleForWriting.close()
        let collected = self.collected
        readers = [
            PipeReader(stderrPipe.fileHandleForReading, onData: { collected.append($0, stream: 2) }),
            PipeReader(stdoutPipe.fileHandleForReading, onData: { collected.append($0, stream: 1) }),
        ]
    }

    /// Every complete output line so far (stdout and stderr).
    var lines: [String] { collected.lines }

    /// All output as one string.
    var output: String { lines.joined(separator: "\n") }

    /// Waits until a line contains `needle`; returns it.
    func waitForLine(containing needle: String, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = lines.first(where: { $0.contains(needle) }) { return line }
            if !process.isRunning {
                try await Task.sleep(for: .milliseconds(100))
                if let line = lines.first(where: { $0.contains(needle) }) { return line }
                throw ProcessFailure("calgate exited (\(process.terminationStatus)) before logging \"\(needle)\":\n\(output)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ProcessFailure("timed out waiting for \"\(needle)\":\n\(output)")
    }

    /// Waits for `calgate ready` and returns the bound port.
    func waitUntilReady() async throws -> Int {
        let line = try await waitForLine(containing: "calgate ready")
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let address = object["listen.address"] as? String,
            let port = Int(address.split(separator: ":").last ?? "")
        else { throw ProcessFailure("cannot read the port from: \(line)") }
        return port
    }

    /// Waits for exit (killing after `timeout`) and returns the status.
    func waitForExit(timeout: Duration = .seconds(30)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
        }
        try? await Task.sleep(for: .milliseconds(50))
        return process.terminationStatus
    }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Runs `calgate ARGS` to completion; returns exit status and output.
    static func run(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) async throws -> (status: Int32, output: String) {
        let p = try CalgateProcess(arguments, environment: environment, directory: directory)
        let status = await p.waitForExit()
        return (status, p.output)
    }
}

/// Splits a child's output into lines as it arrives.
final class OutputCollector: Sendable {
    // Each stream keeps its own unfinished line, so stdout and stderr chunks never splice into one line.
    private let state = Mutex<(lines: [String], partial: [Int: String])>(([], [:]))

    func append(_ data: Data, stream: Int = 0) {
        state.withLock { state in
            var partial = state.partial[stream, default: ""] + String(decoding: data, as: UTF8.self)
            while let newline = partial.firstIndex(of: "\n") {
                state.lines.append(String(partial[..<newline]))
                partial = String(partial[partial.index(after: newline)...])
            }
            state.partial[stream] = partial
        }
    }

    var lines: [String] {
        state.withLock { state in
            state.lines + state.partial.keys.sorted().compactMap { key in state.partial[key].flatMap { $0.isEmpty ? nil : $0 } }
        }
    }
}

struct ProcessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs an external tool (curl, openssl, sslscan) with a time bound.
func runTool(_ path: String, _ arguments: [String], timeout: Duration = .seconds(30)) async throws -> (status: Int32, output: String) {
    try await ChildProcess.run(path, arguments, timeout: timeout)
}

func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-cli-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
