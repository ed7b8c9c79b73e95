import Foundation
import GatewayCore
import Synchronization

/// Microsoft 365 connections end to end: connect, calendar choice, subscriptions (with their lifecycle events) and
/// the `ProviderSyncing` port the scheduler drives.
///
/// Lifecycle notifications are stored in the inbox like change notifications. When the scheduler maps one to its
/// calendar, the recovery it asks for (reauthorize, or recreate a removed subscription) is noted; the calendar's
/// next sync carries it out before its delta round, and only a successful sync marks the rows processed, so a crash
/// or a failure repeats the recovery instead of losing it.
public final class GraphConnectionSyncer: ProviderSyncing, RefreshTokenConnecting, SubscriptionClientMaintaining, AppointmentPushing, Sendable {
    /// What a lifecycle event asks of a calendar before its next delta round.
    enum Recovery: Hashable, Sendable {
        case reauthorize(subscriptionID: String)
        case recreate(subscriptionID: String)
    }

    /// Always `.microsoft`.
    public let provider = Provider.microsoft
    let client: GraphClient
    let store: any GatewayStore
    let sealer: any SecretSealer
    let clock: any GatewayClock
    /// `…/webhooks/microsoft`.
    let notificationURL: String
    /// `…/webhooks/microsoft/lifecycle`.
    let lifecycleURL: String
    let pageSize: Int
    /// How long new subscriptions are asked to live (Graph's maximum for Outlook events is 10,080 minutes).
    let subscriptionLifetime: TimeInterval
    /// When subscriptions are renewed.
    let renewal: RenewalPolicy
    /// Delays after failed subscription maintenance (validation failures during renew included).
    let maintenanceBackoff: BackoffPolicy
    private let tokens = Mutex<[String: GraphAccessToken]>([:])
    /// Per calendar, the recoveries lifecycle notifications asked for, each with the inbox rows that asked.
    private let recoveries = Mutex<[String: [Recovery: Set<Int64>]]>([:])
    /// Subscription id → calendar, for mapping inbox rows without a store read each.
    private let subscriptionCalendars = CalendarKeyCache()
    /// Backoff state of the renewal job's passes.
    public let maintenance: MaintenancePass
    /// Where full rounds report how far they have come (the console and the connection API read it).
    public let progress: SyncProgressBoard

    /// Creates the syncer. `publicURL` is the gateway's HTTPS base that Graph reaches.
    public init(
        client: GraphClient, store: any GatewayStore, sealer: any SecretSealer, clock: any GatewayClock, publicURL: String,
        pageSize: Int = 100, subscriptionLifetime: TimeInterval = 10_000 * 60, renewal: RenewalPolicy = RenewalPolicy(),
        maintenanceBackoff: BackoffPolicy = BackoffPolicy(base: 60, cap: 3600), progress: SyncProgressBoard? = nil
    ) {
        self.progress = progress ?? SyncProgressBoard(clock: clock)
        self.renewal = renewal
        self.maintenanceBackoff = maintenanceBackoff
        self.maintenance = MaintenancePass(
            provider: .microsoft, store: store, clock: clock, policy: renewal, backoff: maintenanceBackoff, failureLabel: "subscription renewal failed"
        )
        self.client = client
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self.notificationURL = publicURL + "/webhooks/microsoft"
        self.lifecycleURL = publicURL + "/webhooks/microsoft/lifecycle"
        self.pageSize = pageSize
        self.subscriptionLifetime = subscriptionLifetime
    }

    /// The same syncer without cached access tokens or noted recoveries (as after a restart).
    public func restarted() -> GraphConnectionSyncer {
        GraphConnectionSyncer(
            client: client, store: store, sealer: sealer, clock: clock, publicURL: String(notificationURL.dropLast("/webhooks/microsoft".count)),
            pageSize: pageSize, subscriptionLifetime: subscriptionLifetime, renewal: renewal, maintenanceBackoff: maintenanceBackoff,
            progress: progress
        )
    }

    /// The window of the first delta round: a year back, two years ahead.
    func syncWindow() -> ClosedRange<Date> {
        let now = clock.now()
        return now.addingTimeInterval(-365 * 86_400)...now.addingTimeInterval(2 * 365 * 86_400)
    }

    // MARK: ConnectionManaging

    /// Connects a Microsoft account: redeems the refresh token (storing the rotated one), lists calendars with the
    /// default one selected, then subscribes and full-syncs each selected calendar.
    public func connect(userID: String, clientID: String, clientSecret: String, refreshToken: String) async throws -> Connection {
        let token: GraphAccessToken
        do {
            token = try await client.refreshAccessToken(clientID: clientID, clientSecret: clientSecret, refreshToken: refreshToken, now: clock.now())
        } catch let error as GraphAPIError {
            throw Self.failure(error)
        }
        let id = "mc_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let connection = Connection(id: id, userID: userID, provider: .microsoft, createdAt: clock.now())
        try await store.createConnection(
            connection,
            credentials: try seal(
                connectionID: id, clientID: clientID, clientSecret: clientSecret, refreshToken: token.refreshToken ?? refreshToken
            ))
        tokens.withLock { $0[id] = token }
        let auth = GraphAuthorization(accessToken: token.value, mailbox: id)
        do {
            let calendars = try await client.listCalendars(auth).map {
                ConnectionCalendar(connectionID: id, calendarID: $0.id, name: $0.name, selected: $0.isDefault)
            }
            try await store.saveCalendars(connectionID: id, calendars)
            for calendar in calendars where calendar.selected { try await activate(calendar, auth) }
        } catch let error as GraphAPIError {
            throw Self.failure(error)
        }
        return connection
    }

    /// Re-reads the calendar list, keeping choices; selected calendars that vanished are deactivated.
    public func refreshCalendars(connectionID: String) async throws -> [ConnectionCalendar] {
        let current = try await store.syncingCalendars(connectionID: connectionID, provider: .microsoft)
        return try await withAuthorization(connectionID) { auth in
            let listed = try await self.client.listCalendars(auth)
            let selected = Set(current.filter(\.selected).map(\.calendarID))
            let calendars = listed.map {
                ConnectionCalendar(connectionID: connectionID, calendarID: $0.id, name: $0.name, selected: selected.contains($0.id))
            }
            try await self.store.saveCalendars(connectionID: connectionID, calendars)
            let remaining = Set(listed.map(\.id))
            for gone in current where gone.selected && !remaining.contains(gone.calendarID) { try await self.deactivate(gone, auth) }
            return calendars
        }
    }

    /// Makes exactly `calendarIDs` the synced calendars.
    public func selectCalendars(connectionID: String, calendarIDs: Set<String>) async throws -> [ConnectionCalendar] {
        let current = try await store.syncingCalendars(connectionID: connectionID, provider: .microsoft)
        let updated = try current.selecting(calendarIDs)
        try await store.saveCalendars(connectionID: connectionID, updated)
        return try await withAuthorization(connectionID) { auth in
            for (before, after) in zip(current, updated) where before.selected != after.selected {
                if after.selected { try await self.activate(after, auth) } else { try await self.deactivate(after, auth) }
            }
            return updated
        }
    }

    /// Deletes subscriptions (at Graph when the credentials still work), removes imported appointments, marks
    /// disconnected.
    public func disconnect(connectionID: String) async throws -> Connection {
        let connection = try await store.existingConnection(connectionID, provider: .microsoft)
        let atGraph = connection.state.syncs ? (try? await authorization(connectionID)) != nil : false
        for calendar in try await store.calendars(connectionID: connectionID) {
            try await subscriptionClient.endAll(calendar, connectionID: connectionID, now: clock.now(), atProvider: atGraph)
            _ = try await store.clearCalendar(calendarKey: calendar.calendarKey)
            recoveries.withLock { $0[calendar.calendarKey] = nil }
        }
        _ = tokens.withLock { $0.removeValue(forKey: connectionID) }
        try await store.setConnectionHealth(id: connectionID, connection.health.applying(.disconnected))
        return try await store.connection(id: connectionID) ?? connection
    }

    /// New credentials: proven (the rotated refresh token stored), then every selected calendar is subscribed again
    /// and fully re-synced.
    public func reconnect(connectionID: String, clientID: String, clientSecret: String, refreshToken: String) async throws -> Connection {
        let connection = try await store.existingConnection(connectionID, provider: .microsoft)
        let token: GraphAccessToken
        do {
            token = try await client.refreshAccessToken(clientID: clientID, clientSecret: clientSecret, refreshToken: refreshToken, now: clock.now())
        } catch let error as GraphAPIError {
            throw Self.failure(error)
        }
        try await store.updateCredentials(
            connectionID: connectionID,
            try seal(
                connectionID: connectionID, clientID: clientID, clientSecret: clientSecret, refreshToken: token.refreshToken ?? refreshToken
            ))
        tokens.withLock { $0[connectionID] = token }
        try await store.setConnectionHealth(id: connectionID, connection.health.applying(.reconnected))
        try await withAuthorization(connectionID) { auth in
            for calendar in try await self.store.calendars(connectionID: connectionID) where calendar.selected {
                try await self.subscriptionClient.endAll(calendar, connectionID: connectionID, now: self.clock.now(), atProvider: true)
                _ = try await self.store.clearCalendar(calendarKey: calendar.calendarKey)
                try await self.activate(calendar, auth)
            }
        }
        return try await store.connection(id: connectionID) ?? connection
    }

    /// Subscribes the calendar, then runs a full delta round (changes during the round arrive as notifications).
    func activate(_ calendar: ConnectionCalendar, _ auth: GraphAuthorization) async throws {
        try await subscribe(calendar, auth)
        _ = try await GraphCalendarSyncer(client: client, store: store, pageSize: pageSize, window: syncWindow(), progress: progress)
            .sync(calendarKey: calendar.calendarKey, calendarID: calendar.calendarID, auth)
    }

    /// Deletes the calendar's subscriptions (Graph first, then the rows) and its imported appointments.
    func deactivate(_ calendar: ConnectionCalendar, _ auth: GraphAuthorization) async throws {
        for subscription in try await store.liveGraphSubscriptions(calendarKey: calendar.calendarKey) {
            try await client.deleteSubscription(id: subscription.id, auth)
            try await store.markGraphSubscriptionRemoved(id: subscription.id, at: clock.now())
        }
        _ = try await store.clearCalendar(calendarKey: calendar.calendarKey)
        recoveries.withLock { $0[calendar.calendarKey] = nil }
    }

    /// `POST /subscriptions` for one calendar with a fresh random `clientState`, stored sealed.
    @discardableResult
    func subscribe(_ calendar: ConnectionCalendar, _ auth: GraphAuthorization) async throws -> StoredGraphSubscription {
        var generator = SystemRandomNumberGenerator()
        let clientState = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        let created = try await client.createSubscription(
            resource: "/me/calendars/\(calendar.calendarID)/events", notificationURL: notificationURL, lifecycleURL: lifecycleURL,
            clientState: clientState, expiresAt: clock.now().addingTimeInterval(subscriptionLifetime), auth
        )
        let subscription = StoredGraphSubscription(
            id: created.id, calendarKey: calendar.calendarKey,
            sealedClientState: try sealer.seal(Array(clientState.utf8), context: "graph_subscription:\(created.id)"),
            expiresAt: created.expiresAt, createdAt: clock.now()
        )
        try await store.saveGraphSubscription(subscription)
        return subscription
    }

    // MARK: AppointmentPushing

    /// The extended property pushed events carry (a GUID-named string property).
    static let calgateProperty = "String {7d3c2b1a-9f8e-4d6c-b5a4-39281706f5e4} Name calgateId"

    /// "Add to calendar": create, update or delete the event in the target calendar. Recurring LeadCenter appointments
    /// are not pushed to Outlook (Graph needs a patterned recurrence; calgate keeps RRULEs): that fails clearly.
    public func push(_ appointment: LeadCenterAppointment, action: PushAction, calendarKey: String, externalID: String?) async throws -> String? {
        guard let (connectionID, calendarID) = ConnectionCalendar.parts(of: calendarKey) else {
            throw SyncFailure(kind: .failed, message: "\(calendarKey) is not <connection>/<calendar>")
        }
        if action != .delete && !appointment.recurrence.isEmpty {
            throw SyncFailure(kind: .failed, message: "recurring appointments are not pushed to Outlook calendars")
        }
        var fields: [String: JSONValue] = [
            "subject": .string(appointment.title),
            "singleValueExtendedProperties": .array([.object(["id": .string(Self.calgateProperty), "value": .string(appointment.id)])]),
        ]
        let formatter = ISO8601DateFormatter()
        func wall(_ date: Date) -> JSONValue { .string(String(formatter.string(from: date).dropLast()) + ".0000000") }
        switch appointment.time {
        case .timed(let start, let end, _):
            fields["isAllDay"] = .bool(false)
            fields["start"] = .object(["dateTime": wall(start), "timeZone": .string("UTC")])
            fields["end"] = .object(["dateTime": wall(end), "timeZone": .string("UTC")])
        case .allDay(let startDate, let endDate):
            fields["isAllDay"] = .bool(true)
            fields["start"] = .object(["dateTime": .string(startDate + "T00:00:00.0000000"), "timeZone": .string("UTC")])
            fields["end"] = .object(["dateTime": .string(endDate + "T00:00:00.0000000"), "timeZone": .string("UTC")])
        }
        let body = JSONValue.object(fields)
        return try await withAuthorization(connectionID) { auth -> String? in
            switch action {
            case .create:
                return try await self.client.createEvent(calendarID: calendarID, body: body, auth)
            case .update:
                guard let externalID else { return try await self.client.createEvent(calendarID: calendarID, body: body, auth) }
                do {
                    try await self.client.updateEvent(eventID: externalID, body: body, auth)
                    return externalID
                } catch let error as GraphAPIError where error.kind == .notFound {
                    return try await self.client.createEvent(calendarID: calendarID, body: body, auth)
                }
            case .delete:
                if let externalID { try await self.client.deleteEvent(eventID: externalID, auth) }
                return nil
            }
        }
    }

    /// The pushed event's iCalUId (GET the event).
    public func iCalUID(calendarKey: String, externalID: String) async throws -> String? {
        guard let (connectionID, calendarID) = ConnectionCalendar.parts(of: calendarKey) else { return nil }
        return try await withAuthorization(connectionID) { auth in
            try await self.client.event(calendarID: calendarID, eventID: externalID, auth)?.iCalUId
        }
    }

    // MARK: SubscriptionMaintaining

    /// The lifecycle runs through `GraphSubscriptionClient`: due subscriptions are renewed by PATCHing the expiry to
    /// the configured lifetime; one Graph no longer has (404), or one that expired anyway, is recreated and its
    /// calendar delta-synced; duplicates are deleted. Failures (validation timeouts during renew included) back off
    /// per calendar.
    public var subscriptionClient: any SubscriptionClient { GraphSubscriptionClient(syncer: self) }

    static func lifecycleRecord(_ subscription: StoredGraphSubscription) -> SubscriptionLifecycle.Subscription {
        SubscriptionLifecycle.Subscription(id: subscription.id, createdAt: subscription.createdAt, expiresAt: subscription.expiresAt)
    }

    // MARK: ProviderSyncing

    /// The calendar a stored notification is about; lifecycle events also note the recovery the next sync runs.
    public func calendarKey(for entry: StoredInboxEntry) async throws -> String? {
        switch entry.entry.kind {
        case "reauthorizationRequired", "subscriptionRemoved", "missed":
            guard let row = try await store.graphSubscription(id: entry.entry.channelID) else { return nil }
            // A lifecycle row replayed after a crash may name a subscription already replaced: the calendar still
            // gets its delta round, which is what closes the gap.
            if row.removedAt == nil {
                let recovery: Recovery? =
                    switch entry.entry.kind {
                    case "reauthorizationRequired": .reauthorize(subscriptionID: row.id)
                    case "subscriptionRemoved": .recreate(subscriptionID: row.id)
                    default: nil
                    }
                if let recovery { _ = recoveries.withLock { $0[row.calendarKey, default: [:]][recovery, default: []].insert(entry.id) } }
            }
            return row.calendarKey
        default:
            // Verification recorded the subscription's calendar in the row: no lookup (rows from before that fall
            // back). A change acknowledged just before its subscription was removed (by another instance, say) still
            // gets its calendar's sync; a calendar deselected since syncs as nothing.
            if let key = entry.entry.calendarKey { return key }
            return try await subscriptionCalendars.calendarKey(of: entry.entry.channelID) {
                try await self.store.graphSubscription(id: entry.entry.channelID)?.calendarKey
            }
        }
    }

    /// Carries out noted recoveries, then one delta round; refreshes the access token when needed (and once on 401).
    public func sync(calendarKey: String) async throws -> SyncOutcome {
        guard let calendar = try await store.syncTarget(calendarKey: calendarKey).calendar else {
            // Deselected since the notification came: nothing to sync.
            recoveries.withLock { $0[calendarKey] = nil }
            return .nothing
        }
        return try await withAuthorization(calendar.connectionID) { auth in
            try await self.recover(calendar, auth)
            let outcome = try await GraphCalendarSyncer(client: self.client, store: self.store, pageSize: self.pageSize, window: self.syncWindow(), progress: self.progress)
                .sync(calendarKey: calendarKey, calendarID: calendar.calendarID, auth)
            return SyncOutcome(changes: outcome.changes, fullSync: outcome.fullSync)
        }
    }

    func recover(_ calendar: ConnectionCalendar, _ auth: GraphAuthorization) async throws {
        let key = calendar.calendarKey
        for (recovery, rows) in recoveries.withLock({ $0[key] ?? [:] }).sorted(by: { "\($0.key)" < "\($1.key)" }) {
            // Instances sharing a database all read every lifecycle row; the one whose sync covered the rows did the
            // recovery and marked them processed. Rows read here but processed since are someone else's work done.
            if try await store.unprocessed(Array(rows)).isEmpty {
                _ = recoveries.withLock { $0[key]?[recovery] = nil }
                continue
            }
            switch recovery {
            case .reauthorize(let id):
                do {
                    try await client.reauthorizeSubscription(id: id, auth)
                } catch let error as GraphAPIError where error.kind == .notFound {
                    // Gone meanwhile (expired or removed): replace it.
                    try await replace(subscriptionID: id, calendar, auth)
                }
            case .recreate(let id):
                try await replace(subscriptionID: id, calendar, auth)
            }
            _ = recoveries.withLock { $0[key]?[recovery] = nil }
        }
    }

    /// Marks `subscriptionID` removed and subscribes the calendar again unless another live subscription covers it.
    func replace(subscriptionID: String, _ calendar: ConnectionCalendar, _ auth: GraphAuthorization) async throws {
        try await store.markGraphSubscriptionRemoved(id: subscriptionID, at: clock.now())
        let others = try await store.liveGraphSubscriptions(calendarKey: calendar.calendarKey)
        if others.isEmpty { try await subscribe(calendar, auth) }
    }

    // MARK: Tokens

    /// Runs `body` with a valid authorization, once more with a fresh token after a 401; maps Graph failures to
    /// `SyncFailure` and records `needs_reconnect` when the refresh token is refused.
    func withAuthorization<T: Sendable>(_ connectionID: String, _ body: @Sendable (GraphAuthorization) async throws -> T) async throws -> T {
        do {
            do {
                return try await body(try await authorization(connectionID))
            } catch let error as GraphAPIError where error.kind == .unauthorized {
                _ = tokens.withLock { $0.removeValue(forKey: connectionID) }
                return try await body(try await authorization(connectionID))
            }
        } catch let error as GraphAPIError {
            let failure = Self.failure(error)
            if failure.kind == .needsReconnect {
                try await store.setConnectionState(id: connectionID, state: .needsReconnect, reason: failure.message)
            }
            throw failure
        }
    }

    /// A cached access token, refreshed five minutes before it lapses; a rotated refresh token replaces the stored one.
    func authorization(_ connectionID: String) async throws -> GraphAuthorization {
        let now = clock.now()
        if let cached = tokens.withLock({ $0[connectionID] }), cached.expiresAt.timeIntervalSince(now) > 300 {
            return GraphAuthorization(accessToken: cached.value, mailbox: connectionID)
        }
        guard let credentials = try await store.credentials(connectionID: connectionID) else {
            throw SyncFailure(kind: .failed, message: "connection \(connectionID) has no credentials")
        }
        let secret = String(decoding: try sealer.open(credentials.sealedClientSecret, context: "connection:\(connectionID):client_secret"), as: UTF8.self)
        let refresh = String(decoding: try sealer.open(credentials.sealedRefreshToken, context: "connection:\(connectionID):refresh_token"), as: UTF8.self)
        let token = try await client.refreshAccessToken(clientID: credentials.clientID, clientSecret: secret, refreshToken: refresh, now: now)
        if let rotated = token.refreshToken, rotated != refresh {
            try await store.updateCredentials(
                connectionID: connectionID,
                try seal(
                    connectionID: connectionID, clientID: credentials.clientID, clientSecret: secret, refreshToken: rotated
                ))
        }
        tokens.withLock { $0[connectionID] = token }
        return GraphAuthorization(accessToken: token.value, mailbox: connectionID)
    }

    func seal(connectionID: String, clientID: String, clientSecret: String, refreshToken: String) throws -> SealedCredentials {
        SealedCredentials(
            clientID: clientID,
            sealedClientSecret: try sealer.seal(Array(clientSecret.utf8), context: "connection:\(connectionID):client_secret"),
            sealedRefreshToken: try sealer.seal(Array(refreshToken.utf8), context: "connection:\(connectionID):refresh_token")
        )
    }

    /// What the scheduler and the API make of a Graph failure.
    static func failure(_ error: GraphAPIError) -> SyncFailure {
        switch error.kind {
        case .invalidGrant:
            return SyncFailure(kind: .needsReconnect, message: "Microsoft refused the stored refresh token (invalid_grant); the user must connect the account again")
        case .interactionRequired:
            return SyncFailure(kind: .needsReconnect, message: "Microsoft requires the user to sign in again interactively (interaction_required: multi-factor or conditional access)")
        case .rateLimited(let after):
            return SyncFailure(kind: .retry(retryAfter: after), message: error.description)
        case .server, .transport, .validationFailed:
            return SyncFailure(kind: .retry(retryAfter: nil), message: error.description)
        case .resyncRequired, .unauthorized, .notFound, .badResponse, .other:
            return SyncFailure(kind: .failed, message: error.description)
        }
    }
}

/// Graph's subscriptions as `SubscriptionLifecycle` drives them: renewed in place by PATCHing the expiry to the
/// configured lifetime; one Graph no longer has (404) is reported gone, and the machine recreates it.
struct GraphSubscriptionClient: SubscriptionClient {
    let syncer: GraphConnectionSyncer

    var renewal: SubscriptionLifecycle.Renewal { .extend }

    func live(calendarKey: String) async throws -> [SubscriptionLifecycle.Subscription] {
        try await syncer.store.liveGraphSubscriptions(calendarKey: calendarKey).map(GraphConnectionSyncer.lifecycleRecord)
    }

    func markEnded(id: String, at: Date) async throws { try await syncer.store.markGraphSubscriptionRemoved(id: id, at: at) }

    func create(_ calendar: ConnectionCalendar, connectionID: String, now: Date) async throws -> SubscriptionLifecycle.Subscription {
        let created = try await syncer.withAuthorization(connectionID) { auth in try await syncer.subscribe(calendar, auth) }
        return GraphConnectionSyncer.lifecycleRecord(created)
    }

    func renew(id: String, _ calendar: ConnectionCalendar, connectionID: String, now: Date) async throws -> SubscriptionLifecycle.Event {
        let lifetime = syncer.subscriptionLifetime
        return try await syncer.withAuthorization(connectionID) { auth -> SubscriptionLifecycle.Event in
            do {
                let renewed = try await syncer.client.renewSubscription(id: id, expiresAt: now.addingTimeInterval(lifetime), auth)
                try await syncer.store.updateGraphSubscriptionExpiry(id: id, expiresAt: renewed.expiresAt, renewedAt: now)
                return .renewed(id: id, expiresAt: renewed.expiresAt)
            } catch let error as GraphAPIError where error.kind == .notFound {
                return .gone(id: id)
            }
        }
    }

    func stop(id: String, _ calendar: ConnectionCalendar, connectionID: String, now: Date) async throws {
        try await syncer.withAuthorization(connectionID) { auth in try await syncer.client.deleteSubscription(id: id, auth) }
        try await syncer.store.markGraphSubscriptionRemoved(id: id, at: now)
    }
}
