import COpenSSL

/// A certificate or key problem at start-up or reload, naming the file and what is wrong with it.
public struct TLSConfigurationError: Error, CustomStringConvertible, Sendable {
    /// The file at fault.
    public let file: String
    /// What is wrong, and what to do.
    public let problem: String

    /// Creates an error.
    public init(file: String, problem: String) {
        self.file = file
        self.problem = problem
    }

    /// `file: problem`.
    public var description: String { "\(file): \(problem)" }
}

/// Drains this thread's OpenSSL error queue into one line (reason strings only, never key material).
func drainOpenSSLErrors() -> String {
    var reasons: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // "error:0A00018F:SSL routines::ee key too small" → keep the part after the last "::" or ":".
        let reason = text.components(separatedBy: ":").last { !$0.isEmpty } ?? text
        if !reasons.contains(reason) { reasons.append(reason) }
    }
    return reasons.joined(separator: "; ")
}
