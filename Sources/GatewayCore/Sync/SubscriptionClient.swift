import Foundation

/// One provider's push channels or subscriptions of one calendar, as `SubscriptionLifecycle` drives them: the
/// provider calls (create, renew, stop) and the store writes that go with them. The decisions are the machine's;
/// `SubscriptionLifecycle.run(_:calendar:connectionID:policy:now:force:report:)` is the one interpreter.
public protocol SubscriptionClient: Sendable {
    /// Whether the provider renews in place (Graph) or only replaces (Google).
    var renewal: SubscriptionLifecycle.Renewal { get }
    /// The calendar's live (not ended) channels or subscriptions.
    func live(calendarKey: String) async throws -> [SubscriptionLifecycle.Subscription]
    /// Records that one ended on its own (expired); nothing is sent to the provider.
    func markEnded(id: String, at: Date) async throws
    /// Creates one at the provider and stores it.
    func create(_ calendar: ConnectionCalendar, connectionID: String, now: Date) async throws -> SubscriptionLifecycle.Subscription
    /// Extends one at the provider and stores the new expiry: `.renewed`, or `.gone` when the provider no longer has it.
    func renew(id: String, _ calendar: ConnectionCalendar, connectionID: String, now: Date) async throws -> SubscriptionLifecycle.Event
    /// Stops one at the provider, then records it ended.
    func stop(id: String, _ calendar: ConnectionCalendar, connectionID: String, now: Date) async throws
}

extension SubscriptionLifecycle {
    /// Runs one maintenance pass of the calendar through `client`: the machine decides, the client calls. Counts
    /// go to `report` also when a step fails part way (a successor opened before a failed stop is still renewed).
    public static func run(
        _ client: any SubscriptionClient, calendar: ConnectionCalendar, connectionID: String, policy: RenewalPolicy, now: Date, force: Bool,
        report: inout MaintenanceReport
    ) async throws {
        let live = try await client.live(calendarKey: calendar.calendarKey)
        var lifecycle = SubscriptionLifecycle(renewal: client.renewal, policy: policy, subscriptions: live, now: now, force: force)
        defer { lifecycle.tally.add(to: &report) }
        var action = lifecycle.start()
        while action != .finished {
            let event: Event
            switch action {
            case .markStopped(let id):
                try await client.markEnded(id: id, at: now)
                event = .done
            case .create:
                event = .created(try await client.create(calendar, connectionID: connectionID, now: now))
            case .renew(let id):
                event = try await client.renew(id: id, calendar, connectionID: connectionID, now: now)
            case .stopAtProvider(let id):
                try await client.stop(id: id, calendar, connectionID: connectionID, now: now)
                event = .done
            case .resync:
                report.resync.append(calendar.calendarKey)
                event = .done
            case .finished:
                return
            }
            action = lifecycle.handle(event)
        }
    }
}

extension SubscriptionClient {
    /// Ends every live subscription of the calendar: stopped at the provider when `atProvider` (a failure there is
    /// ignored: calgate refuses its pushes from now on either way), and recorded ended.
    public func endAll(_ calendar: ConnectionCalendar, connectionID: String, now: Date, atProvider: Bool) async throws {
        for subscription in try await live(calendarKey: calendar.calendarKey) {
            if atProvider, (try? await stop(id: subscription.id, calendar, connectionID: connectionID, now: now)) != nil { continue }
            try await markEnded(id: subscription.id, at: now)
        }
    }
}
