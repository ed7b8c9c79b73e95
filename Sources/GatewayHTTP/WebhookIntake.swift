import Foundation
import GatewayCore
import GoogleCalendar
import HTTPTypes
import Logging
import MicrosoftGraph
import NIOCore

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
        WebhookReply(status: status, fields: [:], body: ByteBuffer())
    }

    /// The one JSON error shape (`GatewayHTTPError.body`).
    static func error(_ error: GatewayHTTPError) -> WebhookReply {
        let (fields, body) = error.rendered()
        return WebhookReply(status: error.status, fields: fields, body: body)
    }
}

/// Verifies provider webhooks and appends them to the durable inbox, without Swift concurrency on the hot path.
///
/// Shared by both ways a webhook arrives: `WebhookAckHandler` on the event loop (the normal path) and the route
/// handlers registered by `GoogleWebhookController` / `MicrosoftWebhookController`. Secrets come from
/// `WebhookCredentialCache`; only a miss reads the store (in a task) before verification goes on. Completions run
/// on whichever thread finished the work (the caller's, a task's, or the store's commit thread); callers hop.
///
/// Answers follow the providers' retry rules (PROVIDERS.md §1.5, §3): forged or unknown → 4xx, which they do not
/// retry; only a store failure answers 503, which they retry.
public final class WebhookIntake: Sendable {
    /// A verified Google push or a Graph batch, ready to be stored.
    public enum Evidence: Sendable {
        /// A Google push (a `sync` push is acknowledged without storing).
        case google(GoogleChannelVerifier.Push)
        /// A Graph validation handshake carrying this token.
        case graphValidation(String)
        /// Verified Graph items; `dropped` were unknown or forged.
        case graphNotifications([InboxEntry], dropped: Int)
    }

    /// What verification concluded. Refusals are counted by the caller under its verifier key (Graph items that
    /// are dropped from an otherwise valid batch are counted here, one by one).
    public enum Verification: Sendable {
        /// Go on to `accept`.
        case verified(Evidence)
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
    /// Opened secrets by id.
    public let credentials: WebhookCredentialCache
    private let googleVerifier = GoogleChannelVerifier()

    /// Verifier keys (route files) of the two provider checks.
    public static let googleVerifierKey = "google_channel"
    /// See `googleVerifierKey`.
    public static let graphVerifierKey = "graph_client_state"

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

    // MARK: Google

    /// Verifies a Google push (`X-Goog-*` fields, empty body) against its channel.
    public func verifyGoogle(fields: HTTPFields, bodyLength: Int, then done: @escaping @Sendable (Verification) -> Void) {
        var headers: [String: String] = [:]
        for field in fields where field.name.canonicalName.hasPrefix("x-goog-") {
            headers[field.name.canonicalName] = field.value
        }
        guard let id = googleVerifier.channelID(in: headers) else {
            return done(finishGoogle(headers: headers, bodyLength: bodyLength, credential: .absent))
        }
        let key = WebhookCredentialCache.googleKey(id)
        switch credentials.lookup(key) {
        case .hit(let credential):
            done(finishGoogle(headers: headers, bodyLength: bodyLength, credential: credential))
        case .miss(let miss):
            Task { [self] in
                let credential: WebhookCredentialCache.Credential
                do {
                    credential = try await loadGoogleChannel(id)
                } catch {
                    logger.error("google channel lookup failed", metadata: ["provider": "google", "error.type": "\(type(of: error))"])
                    return done(rejectedForStore())
                }
                credentials.insert(credential, for: key, after: miss)
                done(finishGoogle(headers: headers, bodyLength: bodyLength, credential: credential))
            }
        }
    }

    private func loadGoogleChannel(_ id: String) async throws -> WebhookCredentialCache.Credential {
        guard let row = try await store.googleChannel(id: id) else { return .absent }
        let token = try sealer.open(row.sealedToken, context: "google_channel:\(row.id)")
        return .googleChannel(
            id: row.id, resourceID: row.resourceID, token: String(decoding: token, as: UTF8.self),
            calendarKey: row.calendarKey, expiresAt: row.expiresAt, stoppedAt: row.stoppedAt
        )
    }

    private func finishGoogle(headers: [String: String], bodyLength: Int, credential: WebhookCredentialCache.Credential) -> Verification {
        let now = clock.now()
        var channel: GoogleChannel?
        if case .googleChannel(let id, let resourceID, let token, let calendarKey, let expiresAt, let stoppedAt) = credential {
            if stoppedAt != nil || expiresAt <= now {
                return .rejected(.notFound("this channel is no longer active"), reason: stoppedAt != nil ? "stopped_channel" : "expired_channel")
            }
            channel = GoogleChannel(id: id, resourceID: resourceID, token: token, calendarKey: calendarKey, expiresAt: expiresAt)
        }
        switch googleVerifier.verify(headers: headers, bodyLength: bodyLength, channel: channel, receivedAt: now) {
        case .success(let push):
            return .verified(.google(push))
        case .failure(let rejection):
            return .rejected(Self.error(for: rejection), reason: rejection.rawValue)
        }
    }

    /// The one place a Google rejection becomes a status.
    static func error(for rejection: GoogleChannelVerifier.Rejection) -> GatewayHTTPError {
        switch rejection {
        case .missingHeader, .badMessageNumber, .unknownState, .unexpectedBody, .oversizedHeader:
            return .badRequest("not a valid Google Calendar push notification")
        case .tokenMismatch, .resourceMismatch:
            return .forbidden("notification does not match its channel")
        case .unknownChannel:
            return .notFound("unknown channel")
        }
    }

    // MARK: Graph

    /// Verifies a Graph validation handshake or notification batch, item by item against each subscription's
    /// clientState. Unknown or forged items are counted and dropped; a batch in which nothing verifies is refused 403.
    public func verifyGraph(query: String?, lifecycle: Bool, body: ByteBuffer, then done: @escaping @Sendable (Verification) -> Void) {
        if let token = query.flatMap(GraphNotificationDecoder.validationToken(inQuery:)) {
            return done(Self.validation(token))
        }
        let notifications: [GraphNotification]
        do {
            notifications = try GraphNotificationDecoder.decode(Array(buffer: body), lifecycle: lifecycle)
        } catch {
            return done(.rejected(.badRequest("not a Graph notification collection: \(error.description)"), reason: "malformed"))
        }
        var known: [String: WebhookCredentialCache.Credential] = [:]
        var missing: [(id: String, miss: WebhookCredentialCache.Miss)] = []
        for notification in notifications where known[notification.subscriptionID] == nil {
            let id = notification.subscriptionID
            guard !missing.contains(where: { $0.id == id }) else { continue }
            switch credentials.lookup(WebhookCredentialCache.graphKey(id)) {
            case .hit(let credential): known[id] = credential
            case .miss(let miss): missing.append((id, miss))
            }
        }
        guard !missing.isEmpty else { return done(finishGraph(notifications, known: known)) }
        Task { [self, known, missing] in
            var known = known
            for (id, miss) in missing {
                let credential: WebhookCredentialCache.Credential
                do {
                    if let row = try await store.graphSubscription(id: id) {
                        let state = try sealer.open(row.sealedClientState, context: "graph_subscription:\(row.id)")
                        credential = .graphSubscription(clientState: String(decoding: state, as: UTF8.self), removed: row.removedAt != nil)
                    } else {
                        credential = .absent
                    }
                } catch {
                    logger.error("graph subscription lookup failed", metadata: ["provider": "microsoft", "error.type": "\(type(of: error))"])
                    return done(rejectedForStore())
                }
                credentials.insert(credential, for: WebhookCredentialCache.graphKey(id), after: miss)
                known[id] = credential
            }
            done(finishGraph(notifications, known: known))
        }
    }

    private static func validation(_ token: String) -> Verification {
        guard !token.isEmpty, token.utf8.count <= 1024 else {
            return .rejected(.badRequest("validationToken must be 1 to 1024 bytes"), reason: "bad_validation")
        }
        // Echoed verbatim, so nothing that could split or smuggle a response: no control characters at all.
        guard !token.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            return .rejected(.badRequest("validationToken contains control characters"), reason: "bad_validation")
        }
        return .verified(.graphValidation(token))
    }

    private func finishGraph(_ notifications: [GraphNotification], known: [String: WebhookCredentialCache.Credential]) -> Verification {
        let now = clock.now()
        var accepted: [InboxEntry] = []
        var unknown = 0
        var forged = 0
        for notification in notifications {
            guard case .graphSubscription(let expected, let removed)? = known[notification.subscriptionID], !removed else {
                unknown += 1
                continue
            }
            guard let given = notification.clientState, !expected.isEmpty, ConstantTime.equals(given, expected) else {
                forged += 1
                continue
            }
            accepted.append(GraphNotificationDecoder.inboxEntry(for: notification, receivedAt: now))
        }
        for _ in 0..<unknown { metrics.verificationRejected(verifier: Self.graphVerifierKey, reason: "unknown_subscription") }
        for _ in 0..<forged { metrics.verificationRejected(verifier: Self.graphVerifierKey, reason: "client_state_mismatch") }
        guard !accepted.isEmpty else {
            // Nothing verifies: refuse without saying which subscriptions exist.
            return .rejected(
                .forbidden("no notification in the batch matches a live subscription and its clientState"),
                reason: forged > 0 ? "client_state_mismatch" : "unknown_subscription"
            )
        }
        return .verified(.graphNotifications(accepted, dropped: unknown + forged))
    }

    // MARK: Storing and answering

    /// Stores what verification produced (after the group commit) and says what to answer.
    public func accept(_ evidence: Evidence, then done: @escaping @Sendable (WebhookReply) -> Void) {
        switch evidence {
        case .google(let push):
            // `sync` only announces that the channel works: acknowledged, nothing to fetch.
            guard push.state != "sync" else {
                metrics.notificationAccepted(provider: "google", kind: push.state)
                return done(.empty(.ok))
            }
            store.append([push.entry]) { [metrics, logger] result in
                switch result {
                case .success:
                    metrics.notificationAccepted(provider: "google", kind: push.state)
                    done(.empty(.ok))
                case .failure(let error):
                    logger.error("inbox append failed; answering 503 so Google retries", metadata: [
                        "provider": "google", "channel.id": "\(push.channel.id)", "error.type": "\(type(of: error))",
                    ])
                    done(.error(.unavailable("the notification could not be stored; retry")))
                }
            }
        case .graphValidation(let token):
            // Echoed only as text/plain with nosniff: the token is opaque and may carry markup.
            done(WebhookReply(
                status: .ok,
                fields: [.contentType: "text/plain; charset=utf-8", HTTPField.Name("X-Content-Type-Options")!: "nosniff", .cacheControl: "no-store"],
                body: ByteBuffer(string: token)
            ))
        case .graphNotifications(let entries, _):
            store.append(entries) { [metrics, logger] result in
                switch result {
                case .success:
                    for entry in entries { metrics.notificationAccepted(provider: "microsoft", kind: entry.kind) }
                    done(.empty(.accepted))
                case .failure(let error):
                    logger.error("inbox append failed; answering 503 so Graph retries", metadata: ["provider": "microsoft", "error.type": "\(type(of: error))"])
                    done(.error(.unavailable("the notifications could not be stored; retry")))
                }
            }
        }
    }

    /// Verifies, stores and answers one webhook request from `source` (the peer address).
    ///
    /// The same rules as the router: an address over its failed-verification budget is answered 429 unverified; a
    /// refusal (not a 5xx, which is the gateway's fault) spends budget and is counted and logged with fixed labels.
    public func receive(
        _ route: WebhookRoute, fields: HTTPFields, query: String?, body: ByteBuffer, source: String,
        then done: @escaping @Sendable (WebhookReply) -> Void
    ) {
        if let retryAfter = failures.retryAfter(address: source, now: clock.now()) {
            metrics.verificationRejected(verifier: route.verifierKey, reason: "rate_limited")
            return done(.error(.tooManyFailures(retryAfter: retryAfter)))
        }
        let verified: @Sendable (Verification) -> Void = { [self] verification in
            switch verification {
            case .verified(let evidence):
                accept(evidence, then: done)
            case .rejected(let error, let reason):
                metrics.verificationRejected(verifier: route.verifierKey, reason: reason)
                logger.debug("verification rejected", metadata: [
                    "verifier": "\(route.verifierKey)", "reason": "\(reason)", "source.address": "\(source)",
                ])
                if error.status.code < 500 { failures.recordFailure(address: source, now: clock.now()) }
                done(.error(error))
            }
        }
        switch route.kind {
        case .google:
            verifyGoogle(fields: fields, bodyLength: body.readableBytes, then: verified)
        case .graph:
            verifyGraph(query: query, lifecycle: false, body: body, then: verified)
        case .graphLifecycle:
            verifyGraph(query: query, lifecycle: true, body: body, then: verified)
        }
    }

    // MARK: Helpers

    private func rejectedForStore() -> Verification {
        .rejected(.unavailable("the gateway cannot verify notifications right now; retry"), reason: "store_unavailable")
    }
}
