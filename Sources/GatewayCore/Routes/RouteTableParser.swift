import CalgateMacros
import Foundation

/// Reads route files: `{"routes": [{"method", "path", "handler", "verifier", "body_limit"}]}`, strictly.
public enum RouteTableParser {
    static let topKeys: Set<String> = ["routes", "description"]
    static let entryKeys: Set<String> = ["method", "path", "handler", "verifier", "body_limit", "description"]
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// Parses one file's bytes; `file` is the name used in messages.
    public static func parse(_ data: Data, file: String) throws(RouteTableError) -> [RouteEntry] {
        let document: JSONValue
        do {
            document = try JSONValue.parse(data)
        } catch {
            throw RouteTableError(file: file, entry: nil, message: error.message)
        }
        do {
            let top = try StrictJSONObject(document, path: "")
            try top.requireOnlyKeys(topKeys)
            guard let items = try top.array("routes") else {
                throw RouteTableError(file: file, entry: nil, message: "has no \"routes\" array")
            }
            var entries: [RouteEntry] = []
            for (offset, item) in items.enumerated() {
                entries.append(try parseEntry(item, file: file, position: offset + 1))
            }
            return entries
        } catch let error as StrictJSONError {
            throw RouteTableError(file: file, entry: error.path, message: error.message)
        } catch let error as RouteTableError {
            throw error
        } catch {
            throw RouteTableError(file: file, entry: nil, message: "\(error)")
        }
    }

    private static func parseEntry(_ value: JSONValue, file: String, position: Int) throws(RouteTableError) -> RouteEntry {
        let where_ = "route #\(position)"
        do {
            let object = try StrictJSONObject(value, path: where_)
            try object.requireOnlyKeys(entryKeys)
            func required(_ key: String) throws -> String {
                guard let value = try object.string(key), !value.isEmpty else {
                    throw RouteTableError(file: file, entry: where_, message: "is missing \"\(key)\"")
                }
                return value
            }
            let method = try required("method")
            let path = try required("path")
            let handler = try required("handler")
            guard let verifier = try object.string("verifier"), !verifier.isEmpty else {
                throw RouteTableError(
                    file: file, entry: where_,
                    message: "is missing \"verifier\" (write \"none\" for a public route)"
                )
            }
            let limit = try object.integer("body_limit", in: 0...Int64(Int32.max))
            return RouteEntry(
                method: method, path: path, handler: handler, verifier: verifier,
                bodyLimit: limit.map { Int($0) }, file: file, position: position
            )
        } catch let error as RouteTableError {
            throw error
        } catch let error as StrictJSONError {
            throw RouteTableError(file: file, entry: error.path, message: error.message)
        } catch {
            throw RouteTableError(file: file, entry: where_, message: "\(error)")
        }
    }
}

/// A route table that cannot be served: names the file, the entry and the problem.
@MemberwiseInit
public struct RouteTableError: Error, Sendable, Hashable, CustomStringConvertible {
    /// File the problem is in.
    public let file: String
    /// `route #n (METHOD /path)` when the problem is one entry.
    public let entry: String?
    /// What is wrong.
    public let message: String

    /// `file: entry: message`.
    public var description: String {
        [file, entry, message].compactMap { $0 }.joined(separator: ": ")
    }
}
