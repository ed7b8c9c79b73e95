import Foundation
import GatewayCore
import Logging
import Synchronization

/// A swift-log handler writing one JSON object per line to standard error.
///
/// Keys: `ts` (ISO 8601, ms), `level`, `label`, `msg`, then metadata keys as given (dotted names stay flat).
public struct JSONLogHandler: LogHandler {
    private static let lock = Mutex(())
    private let label: String
    /// Handler-level metadata.
    public var metadata: Logger.Metadata = [:]
    /// Lowest level written.
    public var logLevel: Logger.Level = .info

    /// Creates a handler for `label`.
    public init(label: String) { self.label = label }

    /// Metadata by key.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one line.
    public func log(event: LogEvent) {
        var object: [String: JSONValue] = [
            "ts": .string(Self.timestamp()),
            "level": .string(event.level.rawValue),
            "label": .string(label),
            "msg": .string(event.message.description),
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = Self.json(value)
        }
        var line = JSONValue.object(object).serialized()
        line.append(0x0A)
        Self.lock.withLock { _ in
            FileHandle.standardError.write(Data(line))
        }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string(c.description)
        case .array(let items): return .array(items.map(json))
        case .dictionary(let d): return .object(d.mapValues(json))
        }
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
