import Foundation

/// `openssl s_server -www` on a throwaway self-signed certificate (localhost, 127.0.0.1), as a child process.
///
/// Spawned with `posix_spawn`, an empty signal mask and default dispositions: the test process blocks most signals,
/// and a child spawned the ordinary way inherits that, which leaves both SIGTERM and `timeout`'s own alarm powerless.
/// `timeout 60` bounds its life even if a test crashes before `stop()`.
final class OpenSSLTestServer: Sendable {
    /// The self-signed certificate, which is also the CA file that trusts it.
    let certificatePath: String
    let port: Int
    private let pid: pid_t
    private let directory: URL

    private init(pid: pid_t, directory: URL, certificatePath: String, port: Int) {
        self.pid = pid
        self.directory = directory
        self.certificatePath = certificatePath
        self.port = port
    }

    static func start() async throws -> OpenSSLTestServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("curlhttp-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let status = try await run(
            "/usr/bin/env",
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout", key, "-out", certificate,
            ])
        guard status == 0 else { throw TestFailure("openssl req exited with \(status)") }

        let output = directory.appendingPathComponent("server.log")
        let pid = try spawn(
            ["timeout", "60", "openssl", "s_server", "-accept", "0", "-www", "-cert", certificate, "-key", key],
            stdout: output.path
        )
        let server = OpenSSLTestServer(pid: pid, directory: directory, certificatePath: certificate, port: 0)
        // s_server prints `ACCEPT [::]:PORT` once it listens; poll the log without blocking a thread.
        for _ in 0..<100 {
            let log = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            if let line = log.split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT") }),
                let port = line.split(separator: ":").last.flatMap({ Int($0) })
            {
                return OpenSSLTestServer(pid: pid, directory: directory, certificatePath: certificate, port: port)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        await server.stop()
        throw TestFailure("openssl s_server did not start listening within 5 s")
    }

    /// Terminates the server (timeout passes SIGTERM on to openssl), reaps it and removes the files.
    func stop() async {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for attempt in 0..<100 {
            if waitpid(pid, &status, WNOHANG) != 0 { break }
            if attempt == 50 { kill(pid, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// posix_spawnp with a clean signal state; stdin and stderr from /dev/null, stdout to `path`.
    private static func spawn(_ arguments: [String], stdout path: String) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGALRM, SIGPIPE, SIGCHLD, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)

        let argv = arguments.map { strdup($0) } + [nil]
        let environment = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + environment).forEach { free($0) } }
        var pid = pid_t()
        let code = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environment)
        guard code == 0 else { throw TestFailure("posix_spawnp \(arguments[0]) failed: \(String(cString: strerror(code)))") }
        return pid
    }

    /// Runs a command to completion, waiting through the termination handler rather than a blocked thread.
    private static func run(_ executable: String, _ arguments: [String]) async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
    }
}

/// A test precondition that did not hold.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
