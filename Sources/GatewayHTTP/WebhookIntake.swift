import Foundation
import GatewayCore
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1

/// The answer to one webhook request: status, header fields and body.
public struct WebhookReply: Sendable {
    /// Status answered.
    public var status: HTTPResponse.Status
    /// Header fields (Content-Length is added by whoever writes it).
    public var fields: HTTPFields
    /// Body, empty for acknowledgements.
    public var body: ByteBuffer

    /// Whether the connection closes after this answer.
    public var closesConnection: Bool { fields[.connection] == "close" }

    /// An acknowledgement with no body.
    static func empty(_ status: HTTPResponse.Status) -> WebhookReply {
        WebhookReply(status: status, fields: [:], body: emptyBody)
    }

    /// Shared by every empty answer (an empty `ByteBuffer()` allocates its storage).
    private static let emptyBody = ByteBuffer()

    /// The one JSON error shape (`GatewayHTTPError.body`).
    static func error(_ error: GatewayHTTPError) -> WebhookReply {
        let (fields, body) = error.rendered()
        return WebhookReply(status: error.status, fields: fields, body: body)
    }
}

/// Verifies provider webhooks and appends them to the durable inbox, without Swift concurrency on the hot path.
///
/// Provider-neutral: each route names a `WebhookVerifying` from a provider plugin, which parses the request, names
/// the credentials it needs and decides. Shared by both ways a webhook arrives: `WebhookAckHandler` on the event
/// loop (the normal path) and the route handlers registered by `WebhookController`. Credentials come from
/// `WebhookCredentialCache`; only a miss reads the store (in a task) before verification goes on. Completions run on
/// whichever thread finished the work (the caller's, a task's, or the store's commit thread); callers hop.
///
/// Answers follow the providers' retry rules (PROVIDERS.md §1.5, §3): forged or unknown → 4xx, which they do not
/// retry; only a store failure answers 503, which they retry.
public final class WebhookIntake: Sendable {
    /// What verification concluded. Refusals are counted by the caller under its verifier key (items dropped from
    /// an otherwise valid batch are counted here, one by one).
    public enum Verification: Sendable {
        /// Go on to `accept`.
        case verified(WebhookVerdict, provider: Provider)
        /// Refuse with this error; `reason` is the metric label.
        case rejected(GatewayHTTPError, reason: String)
    }

    let store: any GatewayStore
    let sealer: any SecretSealer
    let metrics: GatewayMetrics
    let clock: any GatewayClock
    let logger: Logger
    /// Failed verifications per source address (shared with the router).
    let failures: VerificationFailureGate
    /// Opened secrets by verifier and id.
    public let credentials: WebhookCredentialCache

    /// Creates the intake over `store`.
    public init(
        store: any GatewayStore, sealer: any SecretSealer, metrics: GatewayMetrics, clock: any GatewayClock, logger: Logger,
        failures: VerificationFailureGate = VerificationFailureGate()
    ) {
        self.failures = failures
        self.store = store
        self.sealer = sealer
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
        self.credentials = WebhookCredentialCache { [store] in store.webhookCredentialsVersion }
    }

    /// The request as the verifier sees it: only the header fields it asked for.
    static func request(
        for verifier: any WebhookVerifying, handlerKey: String?, path: String, query: String?, fields: HTTPFields, body: ByteBuffer
    ) -> WebhookRequest {
        var headers: [String: String] = [:]
        if let prefix = verifier.headerPrefix {
            headers.reserveCapacity(fields.count)  // one allocation, not one per doubling
            for field in fields where field.name.canonicalName.hasPrefix(prefix) { headers[field.name.canonicalName] = field.value }
        }
        return WebhookRequest(handlerKey: handlerKey, path: path, query: query, headers: headers, body: Array(buffer: body))
    }

    /// The same from NIO's own header list (the event-loop path): names are matched without regard to case and kept
    /// lowercased, as `HTTPFields` gives them; only the names that match are lowercased.
    static func request(
        for verifier: any WebhookVerifying, handlerKey: String?, path: String, query: String?, headers fields: HTTPHeaders, body: ByteBuffer
    ) -> WebhookRequest {
        var headers: [String: String] = [:]
        if let prefix = verifier.headerPrefix {
            headers.reserveCapacity(fields.count)
            // A repeated field keeps its last value, as on the router's path.
            for (name, value) in fields where hasPrefixIgnoringASCIICase(name, prefix) { headers[name.lowercased()] = value }
        }
        return WebhookRequest(handlerKey: handlerKey, path: path, query: query, headers: headers, body: Array(buffer: body))
    }

    /// Whether `name` starts with `prefix` (lowercase ASCII) in any letter case, without allocating.
    static func hasPrefixIgnoringASCIICase(_ name: String, _ prefix: String) -> Bool {
        var remaining = name.utf8.makeIterator()
        for expected in prefix.utf8 {
            guard var byte = remaining.next() else { return false }
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 32 }
            guard byte == expected else { return false }
        }
        return true
    }

    /// Verifies one request with `verifier`: parse, credentials from the cache (the store on a miss), decide.
    public func verify(_ request: WebhookRequest, with verifier: any WebhookVerifying, then done: @escaping @Sendable (Verification) -> Void) {
        let parsed: any Sendable
        let ids: [String]
        switch verifier.parse(request) {
        case .verdict(let verdict):
            return done(verified(verdict, by: verifier))
        case .lookup(let wanted, let payload):
            (ids, parsed) = (wanted, payload)
        }
        var known: [String: WebhookCredential] = [:]
        var missing: [(id: String, miss: WebhookCredentialCache.Miss)] = []
        for id in ids {
            switch credentials.lookup(WebhookCredentialCache.key(verifier: verifier.key, id: id)) {
            case .hit(let credential?): known[id] = credential
            case .hit(nil): continue
            case .miss(let miss): missing.append((id, miss))
            }
        }
        guard !missing.isEmpty else { return done(verified(verifier.verify(parsed, credentials: known, now: clock.now()), by: verifier)) }
        Task { [self, known, missing, parsed] in
            var known = known
            for (id, miss) in missing {
                let credential: WebhookCredential?
                do {
                    credential = try await verifier.credential(id: id, store: store, sealer: sealer)
                } catch {
                    logger.error(
                        "webhook credential lookup failed",
                        metadata: [
                            "provider": "\(verifier.provider.rawValue)", "verifier": "\(verifier.key)", "error.type": "\(type(of: error))",
                        ])
                    return done(rejectedForStore())
                }
                credentials.insert(credential, for: WebhookCredentialCache.key(verifier: verifier.key, id: id), after: miss)
                if let credential { known[id] = credential }
            }
            done(verified(verifier.verify(parsed, credentials: known, now: clock.now()), by: verifier))
        }
    }

    /// Counts the items a verdict dropped and turns a refusal into its answer.
    private func verified(_ verdict: WebhookVerdict, by verifier: any WebhookVerifying) -> Verification {
        switch verdict {
        case .rejected(let rejection):
            for reason in rejection.itemReasons { metrics.verificationRejected(verifier: verifier.key, reason: reason) }
            return .rejected(Self.error(for: rejection), reason: rejection.reason)
        case .store(_, _, let dropped):
            for reason in dropped { metrics.verificationRejected(verifier: verifier.key, reason: reason) }
            return .verified(verdict, provider: verifier.provider)
        case .answer:
            return .verified(verdict, provider: verifier.provider)
        }
    }

    /// The one place a provider's refusal becomes an HTTP error.
    static func error(for rejection: WebhookRejection) -> GatewayHTTPError {
        let error: GatewayHTTPError =
            switch rejection.status {
            case .badRequest: .badRequest(rejection.message)
            case .forbidden: .forbidden(rejection.message)
            case .notFound: .notFound(rejection.message)
            }
        return rejection.isStale ? error.sparingFailureBudget() : error
    }

    // MARK: Storing and answering

    /// Stores what verification produced (after the group commit) and says what to answer.
    public func accept(_ verdict: WebhookVerdict, provider: Provider, then done: @escaping @Sendable (WebhookReply) -> Void) {
        switch verdict {
        case .rejected(let rejection):
            done(.error(Self.error(for: rejection)))
        case .answer(let answer):
            if let kind = answer.acknowledgedKind { metrics.notificationAccepted(provider: provider.rawValue, kind: kind) }
            var fields: HTTPFields = [:]
            if let type = answer.contentType {
                // A body is echoed provider data (Graph's validation token may carry markup): text only, never sniffed.
                fields[.contentType] = type
                fields[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
                fields[.cacheControl] = "no-store"
            }
            done(WebhookReply(status: HTTPResponse.Status(code: answer.status), fields: fields, body: ByteBuffer(bytes: answer.body)))
        case .store(let entries, let status, _):
            store.append(entries) { [metrics, logger] result in
                switch result {
                case .success:
                    for entry in entries { metrics.notificationAccepted(provider: entry.provider.rawValue, kind: entry.kind) }
                    done(.empty(HTTPResponse.Status(code: status)))
                case .failure(let error):
                    logger.error(
                        "inbox append failed; answering 503 so the provider retries",
                        metadata: [
                            "provider": "\(provider.rawValue)", "error.type": "\(type(of: error))",
                        ])
                    done(.error(.unavailable("the notification could not be stored; retry")))
                }
            }
        }
    }

    /// Verifies, stores and answers one webhook request from `source` (the peer address).
    ///
    /// The same rules as the router: an address over its failed-verification budget is answered 429 unverified; a
    /// refusal (not a 5xx, which is the gateway's fault) spends budget and is counted and logged with fixed labels.
    public func receive(
        _ route: WebhookRoute, headers: HTTPHeaders, query: String?, body: ByteBuffer, source: String,
        then done: @escaping @Sendable (WebhookReply) -> Void
    ) {
        if let retryAfter = failures.retryAfter(address: source, now: clock.now()) {
            metrics.verificationRejected(verifier: route.verifierKey, reason: "rate_limited")
            return done(.error(.tooManyFailures(retryAfter: retryAfter)))
        }
        let verified: @Sendable (Verification) -> Void = { [self] verification in
            switch verification {
            case .verified(let verdict, let provider):
                accept(verdict, provider: provider, then: done)
            case .rejected(let error, let reason):
                metrics.verificationRejected(verifier: route.verifierKey, reason: reason, source: source, logger: logger)
                if error.spendsFailureBudget { failures.recordFailure(address: source, now: clock.now()) }
                done(.error(error))
            }
        }
        let request = Self.request(for: route.verifier, handlerKey: route.handlerKey, path: route.path, query: query, headers: headers, body: body)
        verify(request, with: route.verifier, then: verified)
    }

    // MARK: Helpers

    private func rejectedForStore() -> Verification {
        .rejected(.unavailable("the gateway cannot verify notifications right now; retry"), reason: "store_unavailable")
    }
}
