/// Checks a parsed route table against the handlers and verifiers this build has.
///
/// Rules: known method; path starts with `/`, has no empty, `.` or `..` segments, no query or fragment, and
/// parameters are whole segments `{name}`; handler and verifier keys exist; the handler answers the method;
/// webhook routes have a verifier other than `none`; body limits fit the catalog maximum; no two routes share a
/// method and path shape (across files too).
public struct RouteTableValidator: Sendable {
    /// The catalog routes are checked against.
    public let catalog: RouteCatalog

    /// Creates a validator for a catalog.
    public init(catalog: RouteCatalog) { self.catalog = catalog }

    /// Every problem in the table, in order; empty when the table can be served.
    public func problems(in table: RouteTable) -> [RouteTableError] {
        var problems: [RouteTableError] = []
        var seen: [String: RouteEntry] = [:]
        if table.entries.isEmpty {
            problems.append(RouteTableError(file: "(route table)", entry: nil, message: "declares no routes"))
        }
        for entry in table.entries {
            func fail(_ message: String) {
                problems.append(RouteTableError(file: entry.file, entry: "route #\(entry.position) (\(entry.method) \(entry.path))", message: message))
            }
            if !RouteTableParser.methods.contains(entry.method) {
                fail("method \"\(entry.method)\" is not one of \(RouteTableParser.methods.sorted().joined(separator: ", "))")
            }
            if let pathProblem = Self.pathProblem(entry.path) {
                fail(pathProblem)
            }
            if let spec = catalog.handlers[entry.handler] {
                if !spec.methods.contains(entry.method) {
                    fail("handler \"\(entry.handler)\" does not answer \(entry.method) (it answers \(spec.methods.sorted().joined(separator: ", ")))")
                }
                if spec.kind == .webhook, entry.verifier == "none" {
                    fail("webhook handler \"\(entry.handler)\" needs a verifier; \"none\" is not allowed for webhooks")
                }
            } else {
                fail("unknown handler key \"\(entry.handler)\" (known: \(catalog.handlers.keys.sorted().joined(separator: ", ")))")
            }
            if !catalog.verifiers.contains(entry.verifier) {
                fail("unknown verifier key \"\(entry.verifier)\" (known: \(catalog.verifiers.sorted().joined(separator: ", ")))")
            }
            if let limit = entry.bodyLimit, limit > catalog.maximumBodyLimit {
                fail("body_limit \(limit) is above the maximum of \(catalog.maximumBodyLimit) bytes")
            }
            let key = "\(entry.method) \(entry.pathShape)"
            if let first = seen[key] {
                fail("duplicates \(first.locator)")
            } else {
                seen[key] = entry
            }
        }
        return problems
    }

    /// Why `path` is not a valid route path, or nil.
    static func pathProblem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "path must start with \"/\"" }
        if path.contains("?") || path.contains("#") { return "path must not contain a query or fragment" }
        if path == "/" { return nil }
        let segments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        var parameterNames: Set<Substring> = []
        for segment in segments {
            if segment.isEmpty { return "path has an empty segment (double or trailing \"/\")" }
            if segment == "." || segment == ".." { return "path must not contain \".\" or \"..\" segments" }
            if segment.hasPrefix("{") || segment.hasSuffix("}") || segment.contains("{") || segment.contains("}") {
                guard segment.hasPrefix("{"), segment.hasSuffix("}"), segment.count > 2 else {
                    return "parameter segment \"\(segment)\" must be a whole segment like {id}"
                }
                let name = segment.dropFirst().dropLast()
                guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                    return "parameter name \"\(name)\" may hold only letters, digits and _"
                }
                guard parameterNames.insert(name).inserted else { return "parameter {\(name)} appears twice" }
                continue
            }
            let allowed = segment.unicodeScalars.allSatisfy {
                $0.isASCII && (CharacterSetASCII.unreserved(UInt8($0.value)) || $0 == ":" || $0 == "@")
            }
            if !allowed { return "path segment \"\(segment)\" has characters outside A-Z a-z 0-9 - . _ ~ : @" }
        }
        return nil
    }
}

enum CharacterSetASCII {
    static func unreserved(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E
    }
}
