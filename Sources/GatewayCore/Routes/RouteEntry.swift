import CalgateMacros

/// One declared route: method + path mapped to a handler key, with its verifier and body limit.
@MemberwiseInit
public struct RouteEntry: Sendable, Hashable {
    /// Upper-case HTTP method.
    public var method: String
    /// Path template; `{name}` marks a parameter segment.
    public var path: String
    /// Key of the handler that serves the route (must exist in the catalog).
    public var handler: String
    /// Key of the verifier that runs before the handler (`none` for public routes).
    public var verifier: String
    /// Largest accepted request body in bytes; `nil` takes the handler's default.
    public var bodyLimit: Int?
    /// File the entry came from, for messages.
    public var file: String
    /// Position of the entry in its file, from 1.
    public var position: Int

    /// `file: route #n (METHOD /path)`, the prefix of every message about this entry.
    public var locator: String { "\(file): route #\(position) (\(method) \(path))" }

    /// The path with parameter names erased, so `/a/{x}` and `/a/{y}` compare equal.
    public var pathShape: String {
        path.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("{") ? "{}" : String($0) }
            .joined(separator: "/")
    }
}

/// The validated set of routes the server serves.
public struct RouteTable: Sendable, Hashable {
    /// Every route, in file order then entry order.
    public var entries: [RouteEntry]

    /// Creates a table from entries (validate it with `RouteTableValidator` before serving).
    public init(entries: [RouteEntry]) { self.entries = entries }

    /// The body limit in force for `entry`, using the handler's default when the entry gives none.
    public func bodyLimit(for entry: RouteEntry, catalog: RouteCatalog) -> Int {
        entry.bodyLimit ?? catalog.handlers[entry.handler]?.defaultBodyLimit ?? 0
    }
}

/// What kind of traffic a handler serves; webhooks must always be verified.
public enum RouteHandlerKind: String, Sendable, Hashable {
    /// Provider push (Google, Graph): must have a verifier other than `none`.
    case webhook
    /// LeadCenter-facing API.
    case api
    /// Operator endpoints.
    case admin
}

/// A handler the gateway has built, as the validator sees it.
@MemberwiseInit
public struct RouteHandlerSpec: Sendable, Hashable {
    /// What the handler serves.
    public var kind: RouteHandlerKind
    /// Body limit when the route entry sets none.
    public var defaultBodyLimit: Int
    /// Methods the handler can answer.
    public var methods: Set<String>
}

/// The handler and verifier keys that exist in this build; a route table may name only these.
public struct RouteCatalog: Sendable {
    /// Handler key → what it is.
    public var handlers: [String: RouteHandlerSpec]
    /// Verifier keys, `none` included.
    public var verifiers: Set<String>
    /// The largest body limit any route may declare.
    public var maximumBodyLimit: Int

    /// Creates a catalog.
    public init(handlers: [String: RouteHandlerSpec], verifiers: Set<String>, maximumBodyLimit: Int = 16 << 20) {
        self.handlers = handlers
        self.verifiers = verifiers.union(["none"])
        self.maximumBodyLimit = maximumBodyLimit
    }
}
