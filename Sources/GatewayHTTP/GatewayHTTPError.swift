import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOHTTP1

/// Every error the HTTP layer answers with, mapped to a status and a JSON body in one place.
///
/// The body is `{"error": {"code": "...", "message": "..."}}`; messages say what was wrong and what to do, and never
/// echo secrets or request bodies.
public struct GatewayHTTPError: HTTPResponseError, Sendable, CustomStringConvertible {
    private enum Code: String, Sendable {
        case badRequest = "bad_request"
        case unauthorized = "unauthorized"
        case forbidden = "forbidden"
        case notFound = "not_found"
        case conflict = "conflict"
        case payloadTooLarge = "payload_too_large"
        case unsupportedMediaType = "unsupported_media_type"
        case unavailable = "unavailable"
        case tooManyFailures = "too_many_failures"
        case unprocessable = "unprocessable"
        case badGateway = "bad_gateway"
        case internalError = "internal_error"
    }

    private let code: Code
    /// HTTP status answered.
    public let status: HTTPResponse.Status
    /// Human-readable message.
    public let message: String
    /// Whether the connection is closed after the answer (the unread body must not be parsed as a next request).
    public let closeConnection: Bool
    /// Seconds for `Retry-After`, when the caller should wait.
    public let retryAfter: Int?
    /// Whether a refused verification spends the source address's failed-verification budget (every 4xx does except
    /// a stale webhook: an unknown or ended channel or subscription, see `WebhookRejection.isStale`).
    public private(set) var spendsFailureBudget: Bool

    private init(_ code: Code, _ status: HTTPResponse.Status, _ message: String, close: Bool = false, retryAfter: Int? = nil) {
        self.code = code
        self.status = status
        self.message = message
        self.closeConnection = close
        self.retryAfter = retryAfter
        self.spendsFailureBudget = status.code < 500
    }

    /// The same error, spending no failed-verification budget.
    func sparingFailureBudget() -> Self {
        var error = self
        error.spendsFailureBudget = false
        return error
    }

    /// 400: the request is malformed.
    public static func badRequest(_ message: String) -> Self { .init(.badRequest, .badRequest, message) }
    /// 400 and close: the body's framing cannot be trusted, so nothing after it on this connection can be either.
    public static func badFraming(_ message: String) -> Self { .init(.badRequest, .badRequest, message, close: true) }
    /// 401: credentials missing or wrong (says nothing about which).
    public static func unauthorized(_ message: String = "a valid bearer token is required") -> Self {
        .init(.unauthorized, .unauthorized, message)
    }
    /// 403: verification failed.
    public static func forbidden(_ message: String) -> Self { .init(.forbidden, .forbidden, message) }
    /// 404: no such route or resource.
    public static func notFound(_ message: String = "no such resource") -> Self { .init(.notFound, .notFound, message) }
    /// 413: the body is larger than the route allows; the connection closes.
    /// 409: the resource is in a state that does not allow this (e.g. a connection that needs reconnecting).
    public static func conflict(_ message: String) -> Self { .init(.conflict, .conflict, message) }
    /// 413: the body is over the route's limit.
    public static func payloadTooLarge(limit: Int) -> Self {
        .init(.payloadTooLarge, .contentTooLarge, "request body is larger than this route's limit of \(limit) bytes", close: true)
    }
    /// 415: wrong content type.
    public static func unsupportedMediaType(_ message: String) -> Self {
        .init(.unsupportedMediaType, .unsupportedMediaType, message)
    }
    /// 429: this source address failed verification too often; its request was not looked at. The connection
    /// closes, because the unread body must not be parsed as a next request.
    public static func tooManyFailures(retryAfter: Int) -> Self {
        .init(
            .tooManyFailures, .tooManyRequests,
            "too many failed verifications from this address; retry after \(retryAfter) s", close: true, retryAfter: retryAfter
        )
    }
    /// 503: a dependency (the store) cannot take the request now; providers retry.
    public static func unavailable(_ message: String) -> Self { .init(.unavailable, .serviceUnavailable, message) }
    /// 422: the request is well-formed but cannot be carried out (refused credentials).
    public static func unprocessable(_ message: String) -> Self { .init(.unprocessable, .unprocessableContent, message) }
    /// 502: the provider failed while serving this request.
    public static func badGateway(_ message: String) -> Self { .init(.badGateway, .badGateway, message) }
    /// 500: a bug or an unexpected failure; details go to the log, not the client.
    public static func internalError() -> Self { .init(.internalError, .internalServerError, "internal error; see the gateway log") }

    /// RFC 9112 §6.3: a request whose `Transfer-Encoding` is not exactly `chunked` has no knowable length, a
    /// request-smuggling shape llhttp lets through; nil when the framing is fine.
    static func framingError(_ fields: HTTPFields) -> Self? {
        guard let encoding = fields[.transferEncoding], encoding.lowercased() != "chunked" else { return nil }
        return .badFraming("Transfer-Encoding must be exactly chunked")
    }

    /// The same check on NIO's own header list (the event-loop webhook path).
    static func framingError(_ headers: HTTPHeaders) -> Self? {
        let encodings = headers["transfer-encoding"]
        guard !encodings.isEmpty, encodings.joined(separator: ", ").lowercased() != "chunked" else { return nil }
        return .badFraming("Transfer-Encoding must be exactly chunked")
    }

    /// The JSON error document.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let (fields, body) = rendered()
        return Response(status: status, headers: fields, body: .init(byteBuffer: body))
    }

    /// Header fields and JSON body of the answer, for writers that are not Hummingbird responders.
    public func rendered() -> (HTTPFields, ByteBuffer) {
        let body = JSONValue.object([
            "error": .object(["code": .string(code.rawValue), "message": .string(message)])
        ]).serialized()
        var fields: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        if status == .unauthorized { fields[.wwwAuthenticate] = #"Bearer realm="calgate""# }
        if closeConnection { fields[.connection] = "close" }
        if let retryAfter { fields[.retryAfter] = "\(retryAfter)" }
        return (fields, ByteBuffer(bytes: body))
    }

    /// `status code: message`.
    public var description: String { "\(status.code) \(code.rawValue): \(message)" }
}
