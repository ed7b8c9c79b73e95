import Foundation
import Synchronization

/// The part of a subscription-maintenance pass every provider shares: walk each syncing connection's selected
/// calendars, skip calendars of partitions another instance owns and calendars still backing off after a failure, run the provider's per-calendar step under the
/// calendar's maintenance lease (so instances sharing a database never renew the same channel twice), and turn its
/// outcome into backoff state and the report's per-connection health events.
public final class MaintenancePass: Sendable {
    /// Whose subscriptions.
    public let provider: Provider
    let store: any GatewayStore
    let clock: any GatewayClock
    /// When a subscription is due for renewal.
    public let policy: RenewalPolicy
    /// Delays after a calendar's maintenance failed.
    public let backoff: BackoffPolicy
    /// How a failure is described in the connection's health: "`failureLabel`: error".
    let failureLabel: String
    /// Per calendar: when maintenance may try again, and how many failures in a row.
    private let retry = Mutex<[String: SubscriptionLifecycle.Retry]>([:])

    /// How long one calendar's maintenance lease lasts: well beyond one step's provider calls (they time out sooner).
    public let leaseDuration: TimeInterval

    /// Creates the pass state.
    public init(
        provider: Provider, store: any GatewayStore, clock: any GatewayClock, policy: RenewalPolicy, backoff: BackoffPolicy, failureLabel: String,
        leaseDuration: TimeInterval = 300
    ) {
        self.provider = provider
        self.store = store
        self.clock = clock
        self.policy = policy
        self.backoff = backoff
        self.failureLabel = failureLabel
        self.leaseDuration = leaseDuration
    }

    /// One pass over the provider's syncing connections: each selected calendar's `SubscriptionLifecycle` runs
    /// through `client`.
    public func run(_ client: any SubscriptionClient, now: Date) async -> MaintenanceReport {
        await run(now: now) { calendar, connectionID, report in
            try await SubscriptionLifecycle.run(
                client, calendar: calendar, connectionID: connectionID, policy: self.policy, now: now, force: false, report: &report
            )
        }
    }

    /// The operator's "renew now": every selected calendar of the connection runs its lifecycle through `client` due
    /// or not (calendars without a live subscription get one and a delta sync). Throws what
    /// `GatewayStore.syncingCalendars(connectionID:provider:)` throws, and the first failing calendar's error.
    public func renewNow(_ client: any SubscriptionClient, connectionID: String) async throws -> MaintenanceReport {
        let now = clock.now()
        var report = MaintenanceReport()
        for calendar in try await store.syncingCalendars(connectionID: connectionID, provider: provider) where calendar.selected {
            try await SubscriptionLifecycle.run(client, calendar: calendar, connectionID: connectionID, policy: policy, now: now, force: true, report: &report)
        }
        return report
    }

    /// One pass over the provider's syncing connections; `step` maintains one selected calendar and may add to the
    /// report.
    func run(now: Date, step: (ConnectionCalendar, _ connectionID: String, inout MaintenanceReport) async throws -> Void) async -> MaintenanceReport {
        var report = MaintenanceReport()
        let leases = store.workLeases
        let connections: [Connection]
        do { connections = try await store.connections(userID: nil).filter { $0.provider == provider && $0.state.syncs } } catch {
            report.failures += 1
            return report
        }
        for connection in connections {
            guard let calendars = try? await store.calendars(connectionID: connection.id) else {
                report.failed(connection.id, .failed(reason: "the store could not list calendars", nextRetryAt: now.addingTimeInterval(60), at: now))
                continue
            }
            for calendar in calendars where calendar.selected {
                let key = calendar.calendarKey
                // Another instance's partition: it maintains this calendar's subscriptions.
                guard leases.partitions.owns(calendarKey: key) else { continue }
                if retry.withLock({ $0[key]?.allowsAttempt(at: now) == false }) { continue }
                // Another instance maintaining this calendar now: it is its turn. The step reads the channels after the
                // claim, so what that instance renewed is seen here on a later pass and not renewed again.
                let leaseKey = "maintain:\(key)"
                guard (try? await leases.claim(leaseKey, for: leaseDuration)) == true else { continue }
                // The work log's start is wall-clock time after the claim (`now` may be a test clock).
                let startedAt = Date()
                let before = report
                do {
                    try await step(calendar, connection.id, &report)
                    await leases.release(leaseKey, record: report.changedSince(before) ? WorkRecord(kind: "renewal", startedAt: startedAt, outcome: "ok") : nil)
                    retry.withLock { $0[key] = nil }
                    report.succeeded(connection.id)
                } catch {
                    await leases.release(leaseKey, record: WorkRecord(kind: "renewal", startedAt: startedAt, outcome: "failed: \(error)"))
                    let failure = error as? SyncFailure
                    var retryAfter: TimeInterval?
                    if case .retry(let after)? = failure?.kind { retryAfter = after }
                    let unit = Double.random(in: 0.5..<1)
                    let next = retry.withLock { $0[key, default: .init()].failed(now: now, policy: backoff, unit: unit, retryAfter: retryAfter) }
                    if let failure, failure.kind == .needsReconnect {
                        report.failed(connection.id, .credentialsRefused(reason: failure.message))
                    } else {
                        report.failed(connection.id, .failed(reason: "\(failureLabel): \(error)", nextRetryAt: next, at: now))
                    }
                }
            }
        }
        return report
    }
}

/// A maintainer whose calendars' subscriptions run through one `SubscriptionClient`: its maintenance pass and
/// "renew now" are its `MaintenancePass`'s.
public protocol SubscriptionClientMaintaining: SubscriptionMaintaining {
    /// The client the lifecycle runs through.
    var subscriptionClient: any SubscriptionClient { get }
    /// The pass: provider, policy and the per-calendar backoff state.
    var maintenance: MaintenancePass { get }
}

extension SubscriptionClientMaintaining {
    /// One maintenance pass over every syncing connection's selected calendars.
    public func maintainSubscriptions(now: Date) async -> MaintenanceReport { await maintenance.run(subscriptionClient, now: now) }

    /// Runs the lifecycle of each of the connection's selected calendars now, due or not.
    public func renewNow(connectionID: String) async throws -> MaintenanceReport {
        try await maintenance.renewNow(subscriptionClient, connectionID: connectionID)
    }
}

extension GatewayStore {
    /// The connection; a `ConnectionInputError` (not found) when there is no such connection of `provider`.
    public func existingConnection(_ id: String, provider: Provider) async throws -> Connection {
        guard let connection = try await connection(id: id), connection.provider == provider else {
            throw ConnectionInputError("no \(provider.displayName) connection with id \(id)", connectionNotFound: true)
        }
        return connection
    }

    /// The calendars of a connection that may sync now: a `ConnectionInputError` (not found) when there is no such
    /// connection of `provider`, a `.needsReconnect` `SyncFailure` when its credentials were refused.
    public func syncingCalendars(connectionID: String, provider: Provider) async throws -> [ConnectionCalendar] {
        let connection = try await existingConnection(connectionID, provider: provider)
        guard connection.state.syncs else {
            throw SyncFailure(kind: .needsReconnect, message: connection.stateReason ?? "the connection needs to be reconnected")
        }
        return try await calendars(connectionID: connectionID)
    }
}

extension [ConnectionCalendar] {
    /// The calendars with exactly `calendarIDs` selected; a `ConnectionInputError` naming the first id that is not one
    /// of them, followed by `hint` in parentheses.
    public func selecting(_ calendarIDs: Set<String>, hint: String = "refresh the list first") throws -> [ConnectionCalendar] {
        if let unknown = calendarIDs.subtracting(map(\.calendarID)).sorted().first {
            throw ConnectionInputError("calendar \"\(unknown)\" is not one of this connection's calendars (\(hint))")
        }
        return map { calendar in
            var calendar = calendar
            calendar.selected = calendarIDs.contains(calendar.calendarID)
            return calendar
        }
    }
}
