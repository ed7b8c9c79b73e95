import Foundation
import GatewayCore
import Synchronization

/// Google connections end to end: connect (verify credentials, list calendars, full sync, open channels) and the
/// `ProviderSyncing` port the scheduler drives.
public final class GoogleConnectionSyncer: ProviderSyncing, RefreshTokenConnecting, SubscriptionClientMaintaining, AppointmentPushing, Sendable {
    /// Always `.google`.
    public let provider = Provider.google
    let client: GoogleCalendarClient
    let store: any GatewayStore
    let sealer: any SecretSealer
    let clock: any GatewayClock
    /// The HTTPS address Google pushes to (`…/webhooks/google`).
    let webhookAddress: String
    let pageSize: Int
    /// When channels are renewed.
    let renewal: RenewalPolicy
    /// Delays after failed channel maintenance.
    let maintenanceBackoff: BackoffPolicy
    private let tokens = Mutex<[String: GoogleAccessToken]>([:])
    /// Channel id → calendar, for mapping inbox rows without a store read each.
    private let channelCalendars = CalendarKeyCache()
    /// Per calendar: when maintenance may try again after a failure, and how many failures in a row.
    /// Backoff state of the renewal job's passes.
    public let maintenance: MaintenancePass
    /// Where full syncs report how far they have come (the console and the connection API read it).
    public let progress: SyncProgressBoard

    /// Creates the syncer.
    public init(
        client: GoogleCalendarClient, store: any GatewayStore, sealer: any SecretSealer, clock: any GatewayClock, webhookAddress: String,
        pageSize: Int = 250, renewal: RenewalPolicy = RenewalPolicy(), maintenanceBackoff: BackoffPolicy = BackoffPolicy(base: 60, cap: 3600),
        progress: SyncProgressBoard? = nil
    ) {
        self.progress = progress ?? SyncProgressBoard(clock: clock)
        self.client = client
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self.webhookAddress = webhookAddress
        self.pageSize = pageSize
        self.renewal = renewal
        self.maintenanceBackoff = maintenanceBackoff
        self.maintenance = MaintenancePass(
            provider: .google, store: store, clock: clock, policy: renewal, backoff: maintenanceBackoff, failureLabel: "channel renewal failed"
        )
    }

    /// The same syncer without cached access tokens (every next sync refreshes first).
    public func withEmptyTokenCache() -> GoogleConnectionSyncer {
        GoogleConnectionSyncer(
            client: client, store: store, sealer: sealer, clock: clock, webhookAddress: webhookAddress, pageSize: pageSize,
            renewal: renewal, maintenanceBackoff: maintenanceBackoff, progress: progress
        )
    }

    // MARK: Connect

    /// Registers a Google account: proves the refresh token works, stores the connection with sealed secrets,
    /// lists its calendars (the primary one selected), full-syncs and watches each selected calendar.
    public func connect(userID: String, clientID: String, clientSecret: String, refreshToken: String) async throws -> Connection {
        let token: GoogleAccessToken
        do {
            token = try await client.refreshAccessToken(clientID: clientID, clientSecret: clientSecret, refreshToken: refreshToken, now: clock.now())
        } catch let error as GoogleAPIError where error.kind == .invalidGrant {
            throw SyncFailure(kind: .needsReconnect, message: "Google refused the refresh token (invalid_grant): connect the account again")
        }
        let id = "gc_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let connection = Connection(id: id, userID: userID, provider: .google, createdAt: clock.now())
        try await store.createConnection(
            connection,
            credentials: SealedCredentials(
                clientID: clientID,
                sealedClientSecret: try sealer.seal(Array(clientSecret.utf8), context: "connection:\(id):client_secret"),
                sealedRefreshToken: try sealer.seal(Array(refreshToken.utf8), context: "connection:\(id):refresh_token")
            ))
        tokens.withLock { $0[id] = token }
        let calendars = try await client.listCalendars(accessToken: token.value).map {
            ConnectionCalendar(connectionID: id, calendarID: $0.id, name: $0.name, selected: $0.primary)
        }
        try await store.saveCalendars(connectionID: id, calendars)
        for calendar in calendars where calendar.selected {
            _ = try await sync(calendarKey: calendar.calendarKey)
            try await openChannel(calendar: calendar, accessToken: token.value)
        }
        return connection
    }

    /// Re-reads the calendar list, keeping choices; selected calendars that vanished are deactivated.
    public func refreshCalendars(connectionID: String) async throws -> [ConnectionCalendar] {
        let current = try await store.syncingCalendars(connectionID: connectionID, provider: .google)
        return try await withAccessToken(connectionID) { token in
            let listed = try await self.client.listCalendars(accessToken: token)
            let selected = Set(current.filter(\.selected).map(\.calendarID))
            let calendars = listed.map {
                ConnectionCalendar(connectionID: connectionID, calendarID: $0.id, name: $0.name, selected: selected.contains($0.id))
            }
            try await self.store.saveCalendars(connectionID: connectionID, calendars)
            let remaining = Set(listed.map(\.id))
            for gone in current where gone.selected && !remaining.contains(gone.calendarID) { try await self.deactivate(gone, accessToken: token) }
            return calendars
        }
    }

    /// Makes exactly `calendarIDs` the synced calendars: new ones are full-synced and watched, dropped ones have
    /// their channels stopped and appointments removed.
    public func selectCalendars(connectionID: String, calendarIDs: Set<String>) async throws -> [ConnectionCalendar] {
        let current = try await store.syncingCalendars(connectionID: connectionID, provider: .google)
        let updated = try current.selecting(calendarIDs)
        try await store.saveCalendars(connectionID: connectionID, updated)
        return try await withAccessToken(connectionID) { token in
            for (before, after) in zip(current, updated) where before.selected != after.selected {
                if after.selected {
                    _ = try await self.sync(calendarKey: after.calendarKey)
                    try await self.openChannel(calendar: after, accessToken: token)
                } else {
                    try await self.deactivate(after, accessToken: token)
                }
            }
            return updated
        }
    }

    /// Stops channels (at Google when the credentials still work), removes imported appointments, marks disconnected.
    public func disconnect(connectionID: String) async throws -> Connection {
        let connection = try await store.existingConnection(connectionID, provider: .google)
        let atGoogle = connection.state.syncs ? (try? await accessToken(connectionID: connectionID)) != nil : false
        for calendar in try await store.calendars(connectionID: connectionID) {
            try await subscriptionClient.endAll(calendar, connectionID: connectionID, now: clock.now(), atProvider: atGoogle)
            _ = try await store.clearCalendar(calendarKey: calendar.calendarKey)
        }
        _ = tokens.withLock { $0.removeValue(forKey: connectionID) }
        try await store.setConnectionHealth(id: connectionID, connection.health.applying(.disconnected))
        return try await store.connection(id: connectionID) ?? connection
    }

    /// New credentials: proven, stored, then every selected calendar is fully re-synced and watched again.
    public func reconnect(connectionID: String, clientID: String, clientSecret: String, refreshToken: String) async throws -> Connection {
        let connection = try await store.existingConnection(connectionID, provider: .google)
        let token: GoogleAccessToken
        do {
            token = try await client.refreshAccessToken(clientID: clientID, clientSecret: clientSecret, refreshToken: refreshToken, now: clock.now())
        } catch let error as GoogleAPIError where error.kind == .invalidGrant {
            throw SyncFailure(kind: .needsReconnect, message: "Google refused the refresh token (invalid_grant): connect the account again")
        }
        try await store.updateCredentials(
            connectionID: connectionID,
            SealedCredentials(
                clientID: clientID,
                sealedClientSecret: try sealer.seal(Array(clientSecret.utf8), context: "connection:\(connectionID):client_secret"),
                sealedRefreshToken: try sealer.seal(Array(refreshToken.utf8), context: "connection:\(connectionID):refresh_token")
            ))
        tokens.withLock { $0[connectionID] = token }
        try await store.setConnectionHealth(id: connectionID, connection.health.applying(.reconnected))
        try await withAccessToken(connectionID) { token in
            for calendar in try await self.store.calendars(connectionID: connectionID) where calendar.selected {
                try await self.subscriptionClient.endAll(calendar, connectionID: connectionID, now: self.clock.now(), atProvider: true)
                _ = try await self.store.clearCalendar(calendarKey: calendar.calendarKey)
                _ = try await self.sync(calendarKey: calendar.calendarKey)
                try await self.openChannel(calendar: calendar, accessToken: token)
            }
        }
        return try await store.connection(id: connectionID) ?? connection
    }

    /// Stops the calendar's channels and removes its imported appointments.
    func deactivate(_ calendar: ConnectionCalendar, accessToken: String) async throws {
        for channel in try await store.liveGoogleChannels(calendarKey: calendar.calendarKey) {
            try await client.stop(channelID: channel.id, resourceID: channel.resourceID, accessToken: accessToken)
            try await store.stopGoogleChannel(id: channel.id, at: clock.now())
        }
        _ = try await store.clearCalendar(calendarKey: calendar.calendarKey)
    }

    /// Runs `body` with an access token (fresh after a 401) and maps Google failures to `SyncFailure`.
    func withAccessToken<T: Sendable>(_ connectionID: String, _ body: @Sendable (String) async throws -> T) async throws -> T {
        do {
            do {
                return try await body(try await accessToken(connectionID: connectionID))
            } catch let error as GoogleAPIError where error.kind == .unauthorized {
                _ = tokens.withLock { $0.removeValue(forKey: connectionID) }
                return try await body(try await accessToken(connectionID: connectionID))
            }
        } catch let error as GoogleAPIError {
            throw try await failure(error, connectionID: connectionID)
        }
    }

    /// `events.watch` with a fresh channel id and a random per-channel token, stored sealed.
    @discardableResult
    func openChannel(calendar: ConnectionCalendar, accessToken: String) async throws -> StoredGoogleChannel {
        let channelID = UUID().uuidString.lowercased()
        var bytes = SystemRandomNumberGenerator()
        let secret = (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &bytes)) }.joined()
        let token = "c=\(calendar.calendarKey.utf8.count)&s=\(secret)"
        let opened = try await client.watch(
            calendarID: calendar.calendarID, accessToken: accessToken, channelID: channelID, token: token, address: webhookAddress
        )
        let channel = StoredGoogleChannel(
            id: channelID, resourceID: opened.resourceID,
            sealedToken: try sealer.seal(Array(token.utf8), context: "google_channel:\(channelID)"),
            calendarKey: calendar.calendarKey, expiresAt: opened.expiresAt, createdAt: clock.now()
        )
        try await store.saveGoogleChannel(channel)
        return channel
    }

    // MARK: AppointmentPushing

    /// "Add to calendar": `events.insert/patch/delete` in the target calendar. Pushed events carry a private extended
    /// property `calgateId` naming the LeadCenter appointment.
    public func push(_ appointment: LeadCenterAppointment, action: PushAction, calendarKey: String, externalID: String?) async throws -> String? {
        guard let (connectionID, calendarID) = ConnectionCalendar.parts(of: calendarKey) else {
            throw SyncFailure(kind: .failed, message: "\(calendarKey) is not <connection>/<calendar>")
        }
        var fields: [String: JSONValue] = [
            "summary": .string(appointment.title),
            "extendedProperties": .object(["private": .object(["calgateId": .string(appointment.id)])]),
        ]
        switch appointment.time {
        case .timed(let start, let end, let zone):
            let iso = ISO8601DateFormatter()
            fields["start"] = .object(["dateTime": .string(iso.string(from: start)), "timeZone": .string(zone ?? "UTC")])
            fields["end"] = .object(["dateTime": .string(iso.string(from: end)), "timeZone": .string(zone ?? "UTC")])
        case .allDay(let startDate, let endDate):
            fields["start"] = .object(["date": .string(startDate)])
            fields["end"] = .object(["date": .string(endDate)])
        }
        if !appointment.recurrence.isEmpty { fields["recurrence"] = .array(appointment.recurrence.map(JSONValue.string)) }
        let body = JSONValue.object(fields)
        return try await withAccessToken(connectionID) { token -> String? in
            switch action {
            case .create:
                // Idempotent: an earlier attempt whose answer was lost left an event with our tag; adopt it.
                if let existing = try await self.client.findEvent(calendarID: calendarID, privateProperty: "calgateId", value: appointment.id, accessToken: token) {
                    try await self.client.patchEvent(calendarID: calendarID, eventID: existing, body: body, accessToken: token)
                    return existing
                }
                return try await self.client.insertEvent(calendarID: calendarID, body: body, accessToken: token)
            case .update:
                guard let externalID else { return try await self.client.insertEvent(calendarID: calendarID, body: body, accessToken: token) }
                do {
                    try await self.client.patchEvent(calendarID: calendarID, eventID: externalID, body: body, accessToken: token)
                    return externalID
                } catch let error as GoogleAPIError where error.kind == .fullSyncRequired || error.kind == .other(status: 404) {
                    // Deleted in Google meanwhile: LeadCenter's appointment wins, so it is created again.
                    return try await self.client.insertEvent(calendarID: calendarID, body: body, accessToken: token)
                }
            case .delete:
                if let externalID { try await self.client.deleteEvent(calendarID: calendarID, eventID: externalID, accessToken: token) }
                return nil
            }
        }
    }

    /// The pushed event's iCalUID (events.get).
    public func iCalUID(calendarKey: String, externalID: String) async throws -> String? {
        guard let (connectionID, calendarID) = ConnectionCalendar.parts(of: calendarKey) else { return nil }
        return try await withAccessToken(connectionID) { token -> String? in
            guard case .string(let uid)? = try await self.client.getEvent(calendarID: calendarID, eventID: externalID, accessToken: token)?["iCalUID"] else {
                return nil
            }
            return uid
        }
    }

    // MARK: SubscriptionMaintaining

    /// The lifecycle runs through `GoogleChannelClient`. Channels cannot be renewed, only replaced (PROVIDERS.md
    /// §1.7): a due channel gets a successor, which is switched to once Google confirmed it; then every older channel
    /// of the calendar is stopped (a failed stop is retried on the next pass). A calendar whose channel expired
    /// anyway, or that has none, gets a new one and a delta sync for what pushes may have missed.
    public var subscriptionClient: any SubscriptionClient { GoogleChannelClient(syncer: self) }

    static func lifecycleRecord(_ channel: StoredGoogleChannel) -> SubscriptionLifecycle.Subscription {
        SubscriptionLifecycle.Subscription(id: channel.id, createdAt: channel.createdAt, expiresAt: channel.expiresAt)
    }

    // MARK: ProviderSyncing

    /// The calendar a push is about, through its channel.
    public func calendarKey(for entry: StoredInboxEntry) async throws -> String? {
        // A stopped channel still names its calendar: a push acknowledged just before a renewal stopped the channel
        // (on another instance, say) announced a real change, so it gets its sync; a calendar deselected since
        // syncs as nothing.
        // Verification recorded the channel's calendar in the row: no lookup (rows from before that fall back).
        if let key = entry.entry.calendarKey { return key }
        return try await channelCalendars.calendarKey(of: entry.entry.channelID) {
            try await self.store.googleChannel(id: entry.entry.channelID)?.calendarKey
        }
    }

    /// One delta sync; refreshes the access token when needed (and once on 401).
    public func sync(calendarKey: String) async throws -> SyncOutcome {
        guard let calendar = try await store.syncTarget(calendarKey: calendarKey).calendar else {
            // Deselected since the push came: nothing to sync.
            return .nothing
        }
        let (connectionID, calendarID) = (calendar.connectionID, calendar.calendarID)
        let syncer = GoogleCalendarSyncer(client: client, store: store, pageSize: pageSize, progress: progress)
        do {
            do {
                let token = try await accessToken(connectionID: connectionID)
                return Self.outcome(try await syncer.sync(calendarKey: calendarKey, calendarID: calendarID, accessToken: token))
            } catch let error as GoogleAPIError where error.kind == .unauthorized {
                _ = tokens.withLock { $0.removeValue(forKey: connectionID) }
                let token = try await accessToken(connectionID: connectionID)
                return Self.outcome(try await syncer.sync(calendarKey: calendarKey, calendarID: calendarID, accessToken: token))
            }
        } catch let error as GoogleAPIError {
            throw try await failure(error, connectionID: connectionID)
        }
    }

    static func outcome(_ outcome: GoogleCalendarSyncer.Outcome) -> SyncOutcome {
        SyncOutcome(changes: outcome.changes, fullSync: outcome.fullSync)
    }

    /// What the scheduler and the API make of a Google failure; `invalid_grant` also marks the connection.
    func failure(_ error: GoogleAPIError, connectionID: String) async throws -> SyncFailure {
        switch error.kind {
        case .invalidGrant:
            let reason = "Google refused the stored refresh token (invalid_grant); the user must reconnect"
            try await store.setConnectionState(id: connectionID, state: .needsReconnect, reason: reason)
            return SyncFailure(kind: .needsReconnect, message: reason)
        case .rateLimited(let after):
            return SyncFailure(kind: .retry(retryAfter: after), message: error.description)
        case .server, .transport:
            return SyncFailure(kind: .retry(retryAfter: nil), message: error.description)
        case .fullSyncRequired, .unauthorized, .badResponse, .other:
            return SyncFailure(kind: .failed, message: error.description)
        }
    }

    /// A cached access token, refreshed a minute before it expires.
    func accessToken(connectionID: String) async throws -> String {
        let now = clock.now()
        if let cached = tokens.withLock({ $0[connectionID] }), cached.expiresAt.timeIntervalSince(now) > 60 {
            return cached.value
        }
        guard let credentials = try await store.credentials(connectionID: connectionID) else {
            throw SyncFailure(kind: .failed, message: "connection \(connectionID) has no credentials")
        }
        let secret = String(decoding: try sealer.open(credentials.sealedClientSecret, context: "connection:\(connectionID):client_secret"), as: UTF8.self)
        let refresh = String(decoding: try sealer.open(credentials.sealedRefreshToken, context: "connection:\(connectionID):refresh_token"), as: UTF8.self)
        let token = try await client.refreshAccessToken(clientID: credentials.clientID, clientSecret: secret, refreshToken: refresh, now: now)
        tokens.withLock { $0[connectionID] = token }
        return token.value
    }
}

/// Google's watch channels as `SubscriptionLifecycle` drives them: they cannot be renewed, only replaced, and
/// stopping one needs its `resourceId`, which is read from the store.
struct GoogleChannelClient: SubscriptionClient {
    let syncer: GoogleConnectionSyncer

    var renewal: SubscriptionLifecycle.Renewal { .replace }

    func live(calendarKey: String) async throws -> [SubscriptionLifecycle.Subscription] {
        try await syncer.store.liveGoogleChannels(calendarKey: calendarKey).map(GoogleConnectionSyncer.lifecycleRecord)
    }

    func markEnded(id: String, at: Date) async throws { try await syncer.store.stopGoogleChannel(id: id, at: at) }

    func create(_ calendar: ConnectionCalendar, connectionID: String, now: Date) async throws -> SubscriptionLifecycle.Subscription {
        let channel = try await syncer.withAccessToken(connectionID) { token in try await syncer.openChannel(calendar: calendar, accessToken: token) }
        return GoogleConnectionSyncer.lifecycleRecord(channel)
    }

    func renew(id: String, _ calendar: ConnectionCalendar, connectionID: String, now: Date) async throws -> SubscriptionLifecycle.Event {
        throw SyncFailure(kind: .failed, message: "channel \(id): Google channels cannot be renewed, only replaced")
    }

    func stop(id: String, _ calendar: ConnectionCalendar, connectionID: String, now: Date) async throws {
        guard let channel = try await syncer.store.googleChannel(id: id), channel.calendarKey == calendar.calendarKey else {
            throw SyncFailure(kind: .failed, message: "channel \(id) is not one of \(calendar.calendarKey)'s")
        }
        try await syncer.withAccessToken(connectionID) { token in
            try await syncer.client.stop(channelID: channel.id, resourceID: channel.resourceID, accessToken: token)
        }
        try await syncer.store.stopGoogleChannel(id: id, at: now)
    }
}
