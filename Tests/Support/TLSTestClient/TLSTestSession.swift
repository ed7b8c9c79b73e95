import COpenSSL

/// A TLS session (or TLS 1.3 ticket) from one connection, to resume in another through `TLSTestClientOptions.session`.
public final class TLSTestSession: @unchecked Sendable {
    // @unchecked: an SSL_SESSION is reference counted by OpenSSL and not changed after the handshake that made it;
    // OpenSSL allows handing it to SSL objects on other threads.
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { SSL_SESSION_free(pointer) }

    /// Whether a server could resume it (false when the server sent no ticket and has no session id for it).
    public var isResumable: Bool { SSL_SESSION_is_resumable(pointer) == 1 }
}
