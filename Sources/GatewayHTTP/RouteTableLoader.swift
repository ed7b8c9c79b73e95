import Foundation
import GatewayCore

/// Reads every `*.json` file of a routes directory (in name order) and validates the whole table.
public enum RouteTableLoader {
    /// Loads and validates; throws `RouteTableLoadError` listing every problem found.
    public static func load(directory: String, catalog: RouteCatalog) throws(RouteTableLoadError) -> RouteTable {
        let files: [String]
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw RouteTableLoadError(problems: [
                RouteTableError(file: directory, entry: nil, message: "routes directory does not exist (set routes_dir or CALGATE_ROUTES_DIR)")
            ])
        }
        guard isDirectory.boolValue else {
            throw RouteTableLoadError(problems: [RouteTableError(file: directory, entry: nil, message: "is not a directory")])
        }
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }.sorted()
        } catch {
            throw RouteTableLoadError(problems: [RouteTableError(file: directory, entry: nil, message: "cannot be listed (\(error.localizedDescription))")])
        }
        guard !files.isEmpty else {
            throw RouteTableLoadError(problems: [RouteTableError(file: directory, entry: nil, message: "holds no *.json route files")])
        }
        var entries: [RouteEntry] = []
        var problems: [RouteTableError] = []
        for name in files {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                problems.append(RouteTableError(file: path, entry: nil, message: "cannot be read"))
                continue
            }
            do {
                entries += try RouteTableParser.parse(data, file: path)
            } catch {
                problems.append(error)
            }
        }
        let table = RouteTable(entries: entries)
        problems += RouteTableValidator(catalog: catalog).problems(in: table)
        guard problems.isEmpty else { throw RouteTableLoadError(problems: problems) }
        return table
    }
}

/// A route table that cannot be served, with every problem found.
public struct RouteTableLoadError: Error, Sendable, CustomStringConvertible {
    /// Each problem, naming its file and entry.
    public let problems: [RouteTableError]

    /// One problem per line.
    public var description: String {
        "route table is invalid:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
