/// A store failure: what went wrong, on which database, and what to do.
public struct SQLiteStoreError: Error, Sendable, CustomStringConvertible {
    enum Code: Sendable {
        case open
        case notADatabase
        case newerSchema
        case migration
        case query
        case closed
        case notFound
    }

    let code: Code
    /// Database file path.
    public let path: String
    /// What went wrong.
    public let message: String

    init(_ code: Code, path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    /// True when the store was already closed.
    public var isClosed: Bool { code == .closed }

    /// `path: message`.
    public var description: String { "\(path): \(message)" }
}
