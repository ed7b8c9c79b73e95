import Foundation

/// A decoded JSON document that keeps the exact kind of every value, so readers can be strict about types and keys.
public enum JSONValue: Sendable, Hashable, Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Decodes any JSON value; booleans and numbers stay distinct.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Parses a whole document (`JSONParser`); the error says where the syntax broke, in words.
    public static func parse(_ data: Data) throws(JSONDocumentError) -> JSONValue {
        try JSONParser.parse(data)
    }

    /// A short name of the value's kind for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer: return "an integer"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON document that could not be parsed.
public struct JSONDocumentError: Error, Sendable, CustomStringConvertible {
    /// What was wrong, phrased to follow the file name.
    public let message: String
    /// The message.
    public var description: String { message }
}

/// Reads one JSON object strictly: every key must be known, every value of the expected type.
///
/// Errors carry a dotted path (`limits.idle_timeout_s`) so a message can name the exact setting.
public struct StrictJSONObject: Sendable {
    private let values: [String: JSONValue]
    private let path: String

    /// Wraps `value`, which must be an object; `path` prefixes key names in errors.
    public init(_ value: JSONValue, path: String) throws(StrictJSONError) {
        guard case .object(let values) = value else {
            throw StrictJSONError(path: path.isEmpty ? "(top level)" : path, message: "must be an object, found \(value.kindName)")
        }
        self.values = values
        self.path = path
    }

    /// Fails on the first key not in `allowed`, naming it and listing the allowed ones.
    public func requireOnlyKeys(_ allowed: Set<String>) throws(StrictJSONError) {
        for key in values.keys.sorted() where !allowed.contains(key) {
            throw StrictJSONError(
                path: qualified(key),
                message: "is not a known key (allowed: \(allowed.sorted().joined(separator: ", ")))"
            )
        }
    }

    /// The dotted path of `key` inside this object.
    public func qualified(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Whether the key is present (even as null).
    public func contains(_ key: String) -> Bool { values[key] != nil }

    /// The raw value of `key`.
    public func value(_ key: String) -> JSONValue? { values[key] }

    /// A string value, or nil when the key is absent.
    public func string(_ key: String) throws(StrictJSONError) -> String? {
        switch values[key] {
        case nil: return nil
        case .string(let s): return s
        case let other?: throw StrictJSONError(path: qualified(key), message: "must be a string, found \(other.kindName)")
        }
    }

    /// An integer value within `range`, or nil when the key is absent.
    public func integer(_ key: String, in range: ClosedRange<Int64>) throws(StrictJSONError) -> Int64? {
        switch values[key] {
        case nil: return nil
        case .integer(let n):
            guard range.contains(n) else {
                throw StrictJSONError(path: qualified(key), message: "must be between \(range.lowerBound) and \(range.upperBound), found \(n)")
            }
            return n
        case let other?: throw StrictJSONError(path: qualified(key), message: "must be an integer, found \(other.kindName)")
        }
    }

    /// A boolean value, or nil when the key is absent.
    public func bool(_ key: String) throws(StrictJSONError) -> Bool? {
        switch values[key] {
        case nil: return nil
        case .bool(let b): return b
        case let other?: throw StrictJSONError(path: qualified(key), message: "must be true or false, found \(other.kindName)")
        }
    }

    /// A nested object, or nil when the key is absent.
    public func object(_ key: String) throws(StrictJSONError) -> StrictJSONObject? {
        guard let value = values[key] else { return nil }
        return try StrictJSONObject(value, path: qualified(key))
    }

    /// An array value, or nil when the key is absent.
    public func array(_ key: String) throws(StrictJSONError) -> [JSONValue]? {
        switch values[key] {
        case nil: return nil
        case .array(let items): return items
        case let other?: throw StrictJSONError(path: qualified(key), message: "must be an array, found \(other.kindName)")
        }
    }
}

/// A strict-reading failure at a dotted path.
public struct StrictJSONError: Error, Sendable, CustomStringConvertible {
    /// Dotted path of the offending key.
    public let path: String
    /// What was wrong with it.
    public let message: String
    /// `path message`.
    public var description: String { "\(path) \(message)" }
}

extension JSONValue: Encodable {
    /// Encodes the value as the JSON it came from.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .integer(let n): try container.encode(n)
        case .number(let d): try container.encode(d)
        case .string(let s): try container.encode(s)
        case .array(let items): try container.encode(items)
        case .object(let members): try container.encode(members)
        }
    }

    /// Compact JSON text with keys sorted, so output is stable for tests and diffs.
    public func serialized() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(self))) ?? Array("null".utf8)
    }
}
