import COpenSSL

/// OpenSSL's per-thread error queue.
///
/// Every OpenSSL call that can fail leaves entries here; they must be drained on the thread that made the call,
/// or a later, unrelated call on the same thread (an event loop serves many connections) would pick them up.
enum OpenSSLErrorQueue {
    /// Empties the queue and returns its distinct reason strings joined by "; " (never key material: OpenSSL
    /// reasons are fixed texts such as "key values mismatch").
    static func drain() -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            let reason = ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)"
            if !reasons.contains(reason) { reasons.append(reason) }
        }
        return reasons.isEmpty ? "no reason given" : reasons.joined(separator: "; ")
    }

    /// Empties the queue, discarding what it held.
    static func clear() {
        ERR_clear_error()
    }
}
