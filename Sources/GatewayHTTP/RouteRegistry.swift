import CalgateMacros
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Who a verifier decided the caller is, and what it proved.
@MemberwiseInit
public struct VerifiedCaller: Sendable {
    /// The caller proved it holds the admin token.
    public var isAdmin: Bool
    /// What the verifier established (a verified webhook message), handed to the handler so it is not re-derived.
    public var evidence: (any Sendable)? = nil

    /// An anonymous caller.
    public static let anonymous = VerifiedCaller(isAdmin: false)
    /// The operator.
    public static let admin = VerifiedCaller(isAdmin: true)
}

/// What a verifier concluded about one request.
public enum VerificationOutcome: Sendable {
    /// Serve the request as this caller.
    case accepted(VerifiedCaller)
    /// Refuse it with this error; `reason` is a fixed metric label, never request data.
    case rejected(GatewayHTTPError, reason: String)
}

/// A named check that runs before a route's handler, with the body already read and size-checked.
public struct RouteVerifier: Sendable {
    /// Key used in route files.
    public let key: String
    /// The check.
    public let verify: @Sendable (Request, ByteBuffer) async -> VerificationOutcome
    /// Whether its rejections spend the caller's failed-verification budget (`VerificationFailureLimiter`) and a
    /// caller over budget is refused 429 before it runs. False for verifiers that never reject.
    public let limitsFailures: Bool

    /// Creates a verifier.
    public init(key: String, limitsFailures: Bool = true, verify: @escaping @Sendable (Request, ByteBuffer) async -> VerificationOutcome) {
        self.key = key
        self.limitsFailures = limitsFailures
        self.verify = verify
    }
}

/// Everything a handler needs about one verified request.
public struct RouteCall: Sendable {
    /// The request (its body already consumed into `body`).
    public let request: Request
    /// The whole body, within the route's limit.
    public let body: ByteBuffer
    /// Who the verifier decided the caller is.
    public let caller: VerifiedCaller
    /// The route entry being served.
    public let route: RouteEntry
    /// Path parameters by name.
    public let parameters: [String: String]
}

/// A named handler that route files can point at.
@MemberwiseInit
public struct RouteHandler: Sendable {
    /// Key used in route files.
    public let key: String
    /// What the validator needs to know about it.
    public let spec: RouteHandlerSpec
    /// Produces the response.
    public let handle: @Sendable (RouteCall) async throws -> Response
}

/// The handlers and verifiers this build has; turns a validated route table into a Hummingbird router.
public struct RouteRegistry: Sendable {
    /// Handlers by key.
    public private(set) var handlers: [String: RouteHandler] = [:]
    /// Verifiers by key (`none` is built in).
    public private(set) var verifiers: [String: RouteVerifier] = [
        "none": RouteVerifier(key: "none", limitsFailures: false) { _, _ in .accepted(.anonymous) }
    ]

    /// Creates an empty registry (with the `none` verifier).
    public init() {}

    /// Adds a handler; a key registered twice is a programming error.
    public mutating func register(_ handler: RouteHandler) {
        precondition(handlers[handler.key] == nil, "handler key \(handler.key) registered twice")
        handlers[handler.key] = handler
    }

    /// Adds the handler `handle` under `key`.
    public mutating func register(_ key: String, _ spec: RouteHandlerSpec, _ handle: @escaping @Sendable (RouteCall) async throws -> Response) {
        register(RouteHandler(key: key, spec: spec, handle: handle))
    }

    /// Adds a verifier; a key registered twice is a programming error.
    public mutating func register(_ verifier: RouteVerifier) {
        precondition(verifiers[verifier.key] == nil, "verifier key \(verifier.key) registered twice")
        verifiers[verifier.key] = verifier
    }

    /// What route tables are validated against.
    public var catalog: RouteCatalog {
        RouteCatalog(handlers: handlers.mapValues(\.spec), verifiers: Set(verifiers.keys))
    }

    /// Builds the router for a table that passed `RouteTableValidator`.
    ///
    /// `failures` counts rejected verifications per source address: a rejection (other than 5xx, which is the
    /// gateway's fault) spends one unit of the address's budget, and an address over budget is answered 429 with
    /// `Retry-After` before its body is read or verified. Accepted requests never touch the budget.
    public func makeRouter(
        table: RouteTable, metrics: GatewayMetrics, logger: Logger,
        failures: VerificationFailureGate = VerificationFailureGate(), clock: any GatewayClock = SystemGatewayClock()
    ) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: ErrorResponseMiddleware(logger: logger))
        for entry in table.entries {
            guard let handler = handlers[entry.handler], let verifier = verifiers[entry.verifier] else {
                preconditionFailure("route table was not validated: \(entry.locator)")
            }
            let limit = table.bodyLimit(for: entry, catalog: catalog)
            let parameterNames = entry.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
            let hummingbirdPath = entry.path.split(separator: "/", omittingEmptySubsequences: false)
                .map { $0.hasPrefix("{") ? ":" + $0.dropFirst().dropLast() : String($0) }
                .joined(separator: "/")
            let method = HTTPRequest.Method(entry.method)!
            router.on(RouterPath(hummingbirdPath), method: method) { request, context in
                var status = HTTPResponse.Status.internalServerError
                defer { metrics.requestServed(handler: entry.handler, status: status) }
                let source = context.sourceAddress
                do {
                    if verifier.limitsFailures, let retryAfter = failures.retryAfter(address: source, now: clock.now()) {
                        metrics.verificationRejected(verifier: entry.verifier, reason: "rate_limited")
                        throw GatewayHTTPError.tooManyFailures(retryAfter: retryAfter)
                    }
                    let body = try await Self.readBody(request, limit: limit)
                    switch await verifier.verify(request, body) {
                    case .rejected(let error, let reason):
                        metrics.verificationRejected(verifier: entry.verifier, reason: reason, source: "\(source)", logger: logger)
                        if verifier.limitsFailures, error.spendsFailureBudget {
                            failures.recordFailure(address: source, now: clock.now())
                        }
                        throw error
                    case .accepted(let caller):
                        var parameters: [String: String] = [:]
                        for name in parameterNames {
                            parameters[name] = context.parameters.get(name)
                        }
                        let call = RouteCall(request: request, body: body, caller: caller, route: entry, parameters: parameters)
                        let response = try await handler.handle(call)
                        status = response.status
                        return response
                    }
                } catch let error as any HTTPResponseError {
                    status = error.status
                    throw error
                }
            }
        }
        return router
    }

    /// Reads the body, refusing it with 413 as soon as it is known to be over the limit.
    static func readBody(_ request: Request, limit: Int) async throws -> ByteBuffer {
        if let declared = request.headers[.contentLength] {
            guard let length = Int(declared), length >= 0 else {
                throw GatewayHTTPError.badRequest("Content-Length is not a non-negative integer")
            }
            if length > limit { throw GatewayHTTPError.payloadTooLarge(limit: limit) }
        }
        if let error = GatewayHTTPError.framingError(request.headers) { throw error }
        var request = request
        do {
            return try await request.collectBody(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw GatewayHTTPError.payloadTooLarge(limit: limit)
        } catch let error as any HTTPResponseError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // The codec gave up on the body: its framing was invalid.
            throw GatewayHTTPError.badFraming("the request body could not be read (invalid framing)")
        }
    }
}

/// Gives every error the one JSON shape and keeps internal details in the log.
struct ErrorResponseMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as GatewayHTTPError {
            throw error
        } catch let error as HTTPError where error.status == .notFound {
            throw GatewayHTTPError.notFound("no route for \(request.method) \(request.uri.path)")
        } catch let error as any HTTPResponseError {
            if error.status == .contentTooLarge { throw GatewayHTTPError.payloadTooLarge(limit: 0) }
            throw GatewayHTTPError.badRequest("request could not be processed (\(error.status.code))")
        } catch is CancellationError {
            throw GatewayHTTPError.unavailable("the gateway is shutting down; retry")
        } catch {
            logger.error("unhandled error in route", metadata: ["error.type": "\(type(of: error))", "http.path": "\(request.uri.path)"])
            throw GatewayHTTPError.internalError()
        }
    }
}

/// The request context of the gateway's router: Hummingbird's basics plus the peer's address, which the
/// failed-verification limiter keys on.
public struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer (the provider, LeadCenter, or whoever connected).
    public let remoteAddress: SocketAddress?

    /// Captures the channel's peer address.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The peer's IP address as text (IPv4 dotted, IPv6 colon form); `unknown` when the socket has none.
    public var sourceAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
