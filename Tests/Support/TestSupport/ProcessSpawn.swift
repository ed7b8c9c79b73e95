import Foundation
import NIOConcurrencyHelpers

/// Starts child processes one at a time: swift-corelibs-foundation's `Process.run()` crashed (in memmove,
/// copying the environment) when parallel tests spawned processes concurrently.
public enum ProcessSpawn {
    private static let lock = NIOLock()

    /// Runs `process` under the process-wide spawn lock.
    public static func run(_ process: Process) throws {
        try lock.withLock { try process.run() }
    }
}
