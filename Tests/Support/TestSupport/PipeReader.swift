import Foundation

/// Reads a child's pipe to end-of-file on a dedicated thread with plain `read(2)`, appending to a buffer.
///
/// `FileHandle.readabilityHandler` registers a dispatch source on the descriptor; when the pipe is closed while the
/// source is still armed, libdispatch's event loop can dereference a dead source (an intermittent SIGSEGV in
/// `_dispatch_event_loop_drain` seen in CI). A blocking reader that owns the handle until EOF has no such race.
public final class PipeReader: @unchecked Sendable {
    /// Fires at end-of-file.
    public let drained = ExitSignal()
    private let handle: FileHandle

    /// Starts reading `handle` into `buffer`.
    public convenience init(_ handle: FileHandle, into buffer: OutputBuffer, atEnd: @escaping @Sendable () -> Void = {}) {
        self.init(handle, onData: { buffer.append($0) }, atEnd: atEnd)
    }

    /// Starts reading `handle`, handing each chunk to `onData` and calling `atEnd` at end-of-file.
    public init(_ handle: FileHandle, onData: @escaping @Sendable (Data) -> Void, atEnd: @escaping @Sendable () -> Void = {}) {
        self.handle = handle
        let drained = self.drained
        let thread = Thread { [handle] in
            let descriptor = handle.fileDescriptor
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    onData(Data(chunk[0..<count]))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            drained.fire()
            atEnd()
        }
        thread.stackSize = 256 * 1024
        thread.start()
    }
}
