import Foundation
import GatewayCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Keeps every Google channel and Graph subscription alive: every `interval` (on the injected clock) each provider
/// renews what is due, recreates what lapsed or went missing and removes duplicates; calendars whose notifications
/// may have been lost get a delta sync; outcomes move each connection's health; lapses are counted in
/// `calgate_subscription_lapses_total` (which should stay at zero).
public final class RenewalService: Service, Sendable {
    private let maintainers: [any SubscriptionMaintaining]
    private let scheduler: SyncScheduler?
    private let health: (any ConnectionHealthRecording)?
    private let clock: any GatewayClock
    private let interval: TimeInterval
    private let tick: Duration
    private let logger: Logger
    private let totals = Mutex<[Provider: MaintenanceReport]>([:])

    /// Creates the service; `interval` is in clock seconds, `tick` how often the clock is looked at.
    public init(
        maintainers: [any SubscriptionMaintaining], scheduler: SyncScheduler?, health: (any ConnectionHealthRecording)?,
        clock: any GatewayClock = SystemGatewayClock(), interval: TimeInterval = 300, tick: Duration = .seconds(1), logger: Logger
    ) {
        self.maintainers = maintainers
        self.scheduler = scheduler
        self.health = health
        self.clock = clock
        self.interval = interval
        self.tick = tick
        self.logger = logger
        // Exported from the start, so dashboards see a zero rather than nothing.
        for maintainer in maintainers {
            Counter(label: "calgate_subscription_lapses_total", dimensions: [("provider", maintainer.provider.rawValue)]).increment(by: 0)
        }
    }

    /// Sums of every pass so far, per provider.
    public var totalsByProvider: [Provider: MaintenanceReport] { totals.withLock { $0 } }

    /// Renews one connection's channels or subscriptions now (the operator's "renew now"), due or not; calendars
    /// that had none get a delta sync. Throws when the provider has no maintainer or the renewal failed.
    @discardableResult
    public func renewNow(connectionID: String, provider: Provider) async throws -> MaintenanceReport {
        guard let maintainer = maintainers.first(where: { $0.provider == provider }) else {
            throw SyncFailure(kind: .failed, message: "\(provider.rawValue) has no push channels or subscriptions to renew")
        }
        let report = try await maintainer.renewNow(connectionID: connectionID)
        for key in report.resync { scheduler?.requestSync(calendarKey: key, provider: provider) }
        if report.renewed > 0 {
            Counter(label: "calgate_subscription_renewals_total", dimensions: [("provider", provider.rawValue)]).increment(by: report.renewed)
        }
        await health?.record(connectionID: connectionID, .succeeded)
        return report
    }

    /// Runs a pass now, then every `interval`, until graceful shutdown.
    public func run() async throws {
        var next = clock.now()
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            if clock.now() >= next {
                _ = await runOnce()
                next = clock.now().addingTimeInterval(interval)
            }
            try? await Task.sleep(for: tick)
        }
    }

    /// Adds a pass's `count` (when not zero) to the provider's counter `label`; with `warning`, also logs its message
    /// with the count under the warning's field name.
    private func count(_ count: Int, _ label: String, _ provider: String, warning: (message: Logger.Message, field: String)? = nil) {
        guard count > 0 else { return }
        Counter(label: label, dimensions: [("provider", provider)]).increment(by: count)
        if let warning { logger.warning(warning.message, metadata: ["provider": "\(provider)", "\(warning.field)": "\(count)"]) }
    }

    /// One pass over every provider; returns what each did.
    @discardableResult
    public func runOnce() async -> [Provider: MaintenanceReport] {
        var reports: [Provider: MaintenanceReport] = [:]
        for maintainer in maintainers {
            let report = await maintainer.maintainSubscriptions(now: clock.now())
            reports[maintainer.provider] = report
            for key in report.resync { scheduler?.requestSync(calendarKey: key, provider: maintainer.provider) }
            if let health {
                for (connection, event) in report.outcomes.sorted(by: { $0.key < $1.key }) { await health.record(connectionID: connection, event) }
            }
            let provider = maintainer.provider.rawValue
            count(report.lapsed, "calgate_subscription_lapses_total", provider, warning: ("subscriptions lapsed before renewal; recreated and re-syncing", "lapsed"))
            count(report.renewed, "calgate_subscription_renewals_total", provider)
            count(
                report.failures, "calgate_subscription_renewal_failures_total", provider,
                warning: ("subscription maintenance failed for some calendars; retrying with backoff", "failures"))
            totals.withLock { totals in
                var sum = totals[maintainer.provider] ?? MaintenanceReport()
                sum.renewed += report.renewed
                sum.created += report.created
                sum.lapsed += report.lapsed
                sum.stopped += report.stopped
                sum.failures += report.failures
                totals[maintainer.provider] = sum
            }
        }
        return reports
    }
}

/// Gives every synced calendar a delta sync at least once per `interval` even when no notification came (push is
/// not fully reliable), spread evenly: each calendar's sweeps land at a stable fraction of the interval (a per-key
/// phase), exactly `interval` apart. Changes these syncs find are counted by the scheduler as missed by push.
///
/// The same schedule with `missedByPush: false` is the Redtail poller: Redtail has no push, every poll is the sync.
///
/// Instances sharing one database keep the same schedule (the phases are stable per calendar), and each requests
/// only the calendars of its own partitions; at a calendar's slot it also claims `sweep:<calendar>` (or `poll:`)
/// for most of an interval, so a partition that just moved is not swept twice. An instance that dies after claiming
/// loses that one slot; the next one runs.
public final class ReconciliationSweep: Service, Sendable {
    private let store: any ConnectionStore
    private let leases: any WorkLeasing
    private let scheduler: SyncScheduler
    private let providers: Set<Provider>
    private let clock: any GatewayClock
    private let interval: TimeInterval
    private let tick: Duration
    private let logger: Logger
    private let schedule = Mutex<(due: [String: Date], provider: [String: Provider], listedAt: Date?)>(([:], [:], nil))
    private let requested = Mutex(0)
    private let marksSweep: Bool

    /// Creates the sweep over the calendars of `providers`.
    public init(
        store: any ConnectionStore, leases: any WorkLeasing = LocalWorkLeases(), scheduler: SyncScheduler, providers: Set<Provider>,
        clock: any GatewayClock = SystemGatewayClock(), interval: TimeInterval = 3600, tick: Duration = .seconds(1), missedByPush: Bool = true,
        logger: Logger
    ) {
        self.marksSweep = missedByPush
        self.store = store
        self.leases = leases
        self.scheduler = scheduler
        self.providers = providers
        self.clock = clock
        self.interval = interval
        self.tick = tick
        self.logger = logger
    }

    /// Sweep syncs requested so far.
    public var requestedSyncs: Int { requested.withLock { $0 } }

    /// When the next calendar is due (nil before the first pass).
    public var nextDue: Date? { schedule.withLock { $0.due.values.min() } }

    /// Runs until graceful shutdown.
    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await runOnce()
            try? await Task.sleep(for: tick)
        }
    }

    /// Re-reads the calendar list when due (at most every `interval / 12`), then requests the syncs that are due.
    public func runOnce() async {
        let now = clock.now()
        let listedAt = schedule.withLock { $0.listedAt }
        if listedAt.map({ now.timeIntervalSince($0) >= interval / 12 || now < $0 }) ?? true {
            do {
                var current: [String: Provider] = [:]
                for connection in try await store.connections(userID: nil) where connection.state.syncs && providers.contains(connection.provider) {
                    for calendar in try await store.calendars(connectionID: connection.id) where calendar.selected {
                        current[calendar.calendarKey] = connection.provider
                    }
                }
                let interval = self.interval
                schedule.withLock { schedule in
                    schedule.due = schedule.due.filter { current[$0.key] != nil }
                    for key in current.keys where schedule.due[key] == nil {
                        schedule.due[key] = now.addingTimeInterval(interval * RenewalPolicy.unit(key))
                    }
                    schedule.provider = current
                    schedule.listedAt = now
                }
            } catch {
                logger.warning("reconciliation sweep cannot list calendars", metadata: ["error": "\(error)"])
            }
        }
        let due: [(String, Provider)] = schedule.withLock { schedule in
            var due: [(String, Provider)] = []
            for (key, at) in schedule.due where at <= now {
                guard let provider = schedule.provider[key] else { continue }
                due.append((key, provider))
                // Next one a whole interval after the one that was due (not after now), so a late pass never drifts.
                var next = at.addingTimeInterval(interval)
                if next <= now { next = now.addingTimeInterval(interval) }
                schedule.due[key] = next
            }
            return due
        }
        var count = 0
        let partitions = leases.partitions
        for (key, provider) in due.sorted(by: { $0.0 < $1.0 }) where partitions.owns(calendarKey: key) {
            if leases.isShared {
                let slot = "\(marksSweep ? "sweep" : "poll"):\(key)"
                guard (try? await leases.claim(slot, for: interval * 0.9)) == true else { continue }
            }
            scheduler.requestSync(calendarKey: key, provider: provider, sweep: marksSweep)
            count += 1
        }
        if count > 0 { requested.withLock { $0 += count } }
    }
}
