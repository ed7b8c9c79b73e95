import Foundation
import GatewayCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Carries out "Add to calendar" pushes: durable jobs from the store, each appointment's jobs in order, retried with
/// backoff through provider outages and restarts (a job leaves the queue only after the provider answered), given
/// up only on errors retrying cannot fix. An instance pushes only jobs whose target calendar is in its partitions.
/// Each job runs under its appointment's lease (`push:<appointment>`), and
/// only if it is still queued as read, so instances sharing a database never push the same job twice.
public final class PushWorker: Service, Sendable {
    private let store: any GatewayStore
    private let pushers: [Provider: any AppointmentPushing]
    private let clock: any GatewayClock
    private let tick: Duration
    private let backoff: BackoffPolicy
    private let maxFailedAttempts: Int
    /// How long an appointment's push lease lasts: beyond one provider call's timeouts.
    private let leaseDuration: TimeInterval = 120
    private let logger: Logger
    private let done = Mutex(0)

    /// Creates the worker.
    public init(
        store: any GatewayStore, pushers: [any AppointmentPushing], clock: any GatewayClock = SystemGatewayClock(), tick: Duration = .milliseconds(250),
        backoff: BackoffPolicy = BackoffPolicy(base: 5, cap: 1800), maxFailedAttempts: Int = 5, logger: Logger
    ) {
        self.store = store
        self.pushers = Dictionary(pushers.map { ($0.provider, $0) }, uniquingKeysWith: { first, _ in first })
        self.clock = clock
        self.tick = tick
        self.backoff = backoff
        self.maxFailedAttempts = maxFailedAttempts
        self.logger = logger
    }

    /// Jobs completed since start.
    public var completed: Int { done.withLock { $0 } }

    /// Runs until graceful shutdown; a job in flight at shutdown stays queued.
    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await runOnce()
            try? await Task.sleep(for: tick)
        }
    }

    /// Runs every due job once, in order; returns how many it handled.
    @discardableResult
    public func runOnce() async -> Int {
        let jobs: [PushJob]
        do { jobs = try await store.duePushJobs(now: clock.now(), limit: 100) } catch {
            logger.warning("cannot read push jobs", metadata: ["error": "\(error)"])
            return 0
        }
        var handled = 0
        let leases = store.workLeases
        for job in jobs {
            if Task.isShuttingDownGracefully { break }
            // Another instance's partition (the target calendar's): it pushes this job.
            guard leases.partitions.owns(calendarKey: job.calendarKey) else { continue }
            let leaseKey = "push:\(job.appointmentID)"
            // Another instance is pushing this appointment now: its jobs stay in order there.
            guard (try? await leases.claim(leaseKey, for: leaseDuration)) == true else { continue }
            let startedAt = Date()
            if leases.isShared, (try? await store.isPushJobDue(job, now: clock.now())) != true {
                await leases.release(leaseKey)
                continue
            }
            let outcome = await process(job)
            await leases.release(leaseKey, record: WorkRecord(kind: "push", startedAt: startedAt, inboxRows: [job.id], outcome: outcome))
            handled += 1
        }
        return handled
    }

    /// Carries out one job; returns its outcome for the work log (`ok`, `retry`, `failed`).
    @discardableResult
    func process(_ job: PushJob) async -> String {
        do {
            let connectionID = String(job.calendarKey.split(separator: "/", maxSplits: 1).first ?? "")
            guard let connection = try await store.connection(id: connectionID), connection.state != .disconnected,
                let pusher = pushers[connection.provider]
            else {
                try await store.abandonPushJob(job, error: "the \"Add to calendar\" target is no longer connected")
                return "failed"
            }
            guard connection.state.syncs else {
                throw SyncFailure(kind: .retry(retryAfter: nil), message: "the target connection needs to be reconnected")
            }
            let state = try await store.pushState(appointmentID: job.appointmentID) ?? PushState(status: "pending")
            let existing = state.calendarKey == job.calendarKey ? state.externalID : nil
            switch job.action {
            case .delete:
                _ = try await pusher.push(
                    LeadCenterAppointment(
                        id: job.appointmentID, userID: "", accountID: "", title: "", time: .allDay(startDate: "", endDate: ""),
                        createdAt: .distantPast, updatedAt: .distantPast),
                    action: .delete, calendarKey: job.calendarKey, externalID: existing
                )
                try await store.completePushJob(job, state: PushState(status: "deleted"))
            case .create, .update:
                guard let appointment = try await store.leadCenterAppointment(id: job.appointmentID) else {
                    // Deleted meanwhile: its delete job follows.
                    try await store.completePushJob(job, state: state)
                    return "ok"
                }
                let action: PushAction = existing == nil ? .create : .update
                let id = try await pusher.push(appointment, action: action, calendarKey: job.calendarKey, externalID: existing)
                try await store.completePushJob(job, state: PushState(status: "pushed", calendarKey: job.calendarKey, externalID: id ?? existing))
                if action == .create, let id, let uid = try? await pusher.iCalUID(calendarKey: job.calendarKey, externalID: id) {
                    try? await store.setPushedICalUID(appointmentID: job.appointmentID, iCalUID: uid)
                }
            }
            done.withLock { $0 += 1 }
            Counter(label: "calgate_push_jobs_total", dimensions: [("outcome", "done")]).increment()
            return "ok"
        } catch {
            let failure = error as? SyncFailure
            let retryable: Bool
            var retryAfter: TimeInterval?
            switch failure?.kind {
            case .retry(let after)?:
                retryable = true
                retryAfter = after
            case .needsReconnect?: retryable = true
            case .failed?, nil: retryable = job.attempts + 1 < maxFailedAttempts
            }
            let message = failure?.message ?? "\(error)"
            do {
                if retryable {
                    let delay = backoff.delay(attempt: job.attempts + 1, unit: Double.random(in: 0.5..<1), retryAfter: retryAfter)
                    try await store.retryPushJob(job, nextAttemptAt: clock.now().addingTimeInterval(delay), error: message)
                    Counter(label: "calgate_push_jobs_total", dimensions: [("outcome", "retry")]).increment()
                    return "retry"
                } else {
                    try await store.abandonPushJob(job, error: message)
                    Counter(label: "calgate_push_jobs_total", dimensions: [("outcome", "failed")]).increment()
                    logger.warning("push to the \"Add to calendar\" target failed for good", metadata: ["appointment.id": "\(job.appointmentID)", "error": "\(message)"])
                    return "failed"
                }
            } catch {
                logger.warning("cannot record a push failure; the job runs again", metadata: ["error": "\(error)"])
                return "failed"
            }
        }
    }
}
