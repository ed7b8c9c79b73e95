import CoreMetrics
import GatewayCore
import HTTPTypes
import Logging
import Metrics
import Prometheus
import Synchronization

/// The gateway's metrics, created once with fixed dimensions, served as Prometheus text at `/admin/metrics`.
///
/// Created through swift-metrics with an explicit Prometheus factory, so tests can each have their own registry
/// and the process does not depend on the global bootstrap.
public final class GatewayMetrics: Sendable {
    /// The registry `/admin/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    /// The swift-metrics factory over `registry`.
    public let factory: PrometheusMetricsFactory

    /// Counters by their two dimension values: looked up per request without building a key string or a
    /// dimensions array (the pair hashes the two strings as they are).
    private struct CounterKey: Hashable {
        var first: String
        var second: String
    }
    private let requestCounters: Mutex<[HandlerStatus: CoreMetrics.Counter]>
    private let rejectionCounters: Mutex<[CounterKey: CoreMetrics.Counter]>
    private let acceptedCounters = Mutex<[CounterKey: CoreMetrics.Counter]>([:])
    private struct HandlerStatus: Hashable {
        var handler: String
        var statusClass: Int
    }
    private let cutCounters: [ConnectionGuardHandler.CutReason: CoreMetrics.Counter]
    private let handshakeFailures: CoreMetrics.Counter
    private let handshakesCompleted: CoreMetrics.Counter
    private let lastHandshakeCounts = Mutex<(completed: Int, failed: Int)>((0, 0))
    private let certificateReloads: CoreMetrics.Counter
    private let certificateReloadFailures: CoreMetrics.Counter
    /// Which provider each webhook verifier key belongs to (from the plugins), for the console's rejection figures.
    private let verifierProviders = Mutex<[String: Provider]>([:])
    /// The last minutes of notifications and syncs, for the operator console (fed by the counters here and by the
    /// sync scheduler).
    public let activity: GatewayActivity

    /// Creates the metric set over a fresh registry.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), activity: GatewayActivity = GatewayActivity()) {
        self.activity = activity
        self.registry = registry
        self.factory = PrometheusMetricsFactory(registry: registry)
        self.requestCounters = Mutex([:])
        self.rejectionCounters = Mutex([:])
        var cuts: [ConnectionGuardHandler.CutReason: CoreMetrics.Counter] = [:]
        for reason in [ConnectionGuardHandler.CutReason.slowHead, .slowBody] {
            cuts[reason] = CoreMetrics.Counter(label: "calgate_http_connections_cut_total", dimensions: [("reason", reason.rawValue)], factory: factory)
        }
        self.cutCounters = cuts
        self.handshakeFailures = CoreMetrics.Counter(label: "calgate_tls_handshake_failures_total", factory: factory)
        self.handshakesCompleted = CoreMetrics.Counter(label: "calgate_tls_handshakes_total", factory: factory)
        self.certificateReloads = CoreMetrics.Counter(label: "calgate_tls_certificate_reloads_total", dimensions: [("result", "ok")], factory: factory)
        self.certificateReloadFailures = CoreMetrics.Counter(
            label: "calgate_tls_certificate_reloads_total", dimensions: [("result", "failed")], factory: factory
        )
    }

    /// Counts a served request by handler key and status class (never by path or id).
    public func requestServed(handler: String, status: HTTPResponse.Status) {
        let key = HandlerStatus(handler: handler, statusClass: status.code / 100)
        let counter = requestCounters.withLock { counters in
            if let existing = counters[key] { return existing }
            let made = CoreMetrics.Counter(
                label: "calgate_http_requests_total", dimensions: [("handler", handler), ("status", "\(key.statusClass)xx")], factory: factory
            )
            counters[key] = made
            return made
        }
        counter.increment()
    }

    /// Counts a request a verifier refused.
    public func verificationRejected(verifier: String, reason: String) {
        counter(rejectionCounters, "calgate_verification_rejected_total", ("verifier", verifier), ("reason", reason)).increment()
        if let provider = verifierProviders.withLock({ $0[verifier] }) { activity.notificationRejected(provider: provider, reason: reason) }
    }

    /// Counts a refused verification and logs it at debug with fixed labels and the peer address only: never a
    /// header, token or body.
    public func verificationRejected(verifier: String, reason: String, source: String, logger: Logger) {
        verificationRejected(verifier: verifier, reason: reason)
        logger.debug("verification rejected", metadata: ["verifier": "\(verifier)", "reason": "\(reason)", "source.address": "\(source)"])
    }

    /// Attributes the rejections of these webhook verifiers to their providers (called once, from the plugins).
    public func attribute(_ verifiers: [any WebhookVerifying]) {
        verifierProviders.withLock { known in
            for verifier in verifiers { known[verifier.key] = verifier.provider }
        }
    }

    /// Counts a verified, stored notification by provider and kind (kinds are a small fixed set per provider).
    public func notificationAccepted(provider: String, kind: String) {
        counter(acceptedCounters, "calgate_notifications_accepted_total", ("provider", provider), ("kind", kind)).increment()
        if let known = Provider(rawValue: provider) { activity.notificationAccepted(provider: known) }
    }

    /// The counter for these dimension values, created on first use (values come from fixed small sets).
    private func counter(
        _ cache: borrowing Mutex<[CounterKey: CoreMetrics.Counter]>, _ label: String, _ first: (String, String), _ second: (String, String)
    ) -> CoreMetrics.Counter {
        let key = CounterKey(first: first.1, second: second.1)
        return cache.withLock { counters in
            if let existing = counters[key] { return existing }
            let made = CoreMetrics.Counter(label: label, dimensions: [first, second], factory: factory)
            counters[key] = made
            return made
        }
    }

    /// Counts a connection cut for reading too slowly.
    public func connectionCut(_ reason: ConnectionGuardHandler.CutReason) {
        cutCounters[reason]?.increment()
    }

    /// Counts a certificate reload attempt.
    public func certificateReloaded(success: Bool) {
        (success ? certificateReloads : certificateReloadFailures).increment()
    }

    /// Brings the TLS handshake counters up to the TLS context's own totals (it counts on the event loops).
    public func syncHandshakeCounts(completed: Int, failed: Int) {
        let (deltaCompleted, deltaFailed) = lastHandshakeCounts.withLock { last in
            let deltas = (max(0, completed - last.completed), max(0, failed - last.failed))
            last = (completed, failed)
            return deltas
        }
        if deltaCompleted > 0 { handshakesCompleted.increment(by: deltaCompleted) }
        if deltaFailed > 0 { handshakeFailures.increment(by: deltaFailed) }
    }

    /// The Prometheus exposition text.
    public func render() -> [UInt8] { registry.emitToBuffer() }
}
