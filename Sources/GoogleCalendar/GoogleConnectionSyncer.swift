import Foundation
import GatewayCore
import Synchronization

/// Google connections end to end: connect (verify credentials, list calendars, full sync, open channels) and the
/// `ProviderSyncing` port the scheduler drives.
public final class GoogleConnectionSyncer: ProviderSyncing, Sendable {
    /// Always `.google`.
    public let provider = Provider.google
    let client: GoogleCalendarClient
    let store: any GatewayStore
    let sealer: any SecretSealer
    let clock: any GatewayClock
    /// The HTTPS address Google pushes to (`…/webhooks/google`).
    let webhookAddress: String
    let pageSize: Int
    private let tokens = Mutex<[String: GoogleAccessToken]>([:])

    /// Creates the syncer.
    public init(client: GoogleCalendarClient, store: any GatewayStore, sealer: any SecretSealer, clock: any GatewayClock, webhookAddress: String, pageSize: Int = 250) {
        self.client = client
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self.webhookAddress = webhookAddress
        self.pageSize = pageSize
    }

    /// The same syncer without cached access tokens (every next sync refreshes first).
    public func withEmptyTokenCache() -> GoogleConnectionSyncer {
        GoogleConnectionSyncer(client: client, store: store, sealer: sealer, clock: clock, webhookAddress: webhookAddress, pageSize: pageSize)
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
        try await store.createConnection(connection, credentials: SealedCredentials(
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

    /// `events.watch` with a fresh channel id and a random per-channel token, stored sealed.
    func openChannel(calendar: ConnectionCalendar, accessToken: String) async throws {
        let channelID = UUID().uuidString.lowercased()
        var bytes = SystemRandomNumberGenerator()
        let secret = (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &bytes)) }.joined()
        let token = "c=\(calendar.calendarKey.utf8.count)&s=\(secret)"
        let opened = try await client.watch(
            calendarID: calendar.calendarID, accessToken: accessToken, channelID: channelID, token: token, address: webhookAddress
        )
        try await store.saveGoogleChannel(StoredGoogleChannel(
            id: channelID, resourceID: opened.resourceID,
            sealedToken: try sealer.seal(Array(token.utf8), context: "google_channel:\(channelID)"),
            calendarKey: calendar.calendarKey, expiresAt: opened.expiresAt
        ))
    }

    // MARK: ProviderSyncing

    /// The calendar a push is about, through its channel.
    public func calendarKey(for entry: StoredInboxEntry) async throws -> String? {
        guard let channel = try await store.googleChannel(id: entry.entry.channelID), channel.stoppedAt == nil else { return nil }
        return channel.calendarKey
    }

    /// One delta sync; refreshes the access token when needed (and once on 401).
    public func sync(calendarKey: String) async throws -> Int {
        guard let slash = calendarKey.firstIndex(of: "/") else {
            throw SyncFailure(kind: .failed, message: "\(calendarKey) is not <connection>/<calendar>")
        }
        let connectionID = String(calendarKey[..<slash])
        let calendarID = String(calendarKey[calendarKey.index(after: slash)...])
        guard let connection = try await store.connection(id: connectionID) else {
            throw SyncFailure(kind: .failed, message: "connection \(connectionID) no longer exists")
        }
        guard connection.state == .active else {
            throw SyncFailure(kind: .needsReconnect, message: connection.stateReason ?? "the connection needs to be reconnected")
        }
        let syncer = GoogleCalendarSyncer(client: client, store: store, pageSize: pageSize)
        do {
            do {
                let token = try await accessToken(connectionID: connectionID)
                return try await syncer.sync(calendarKey: calendarKey, calendarID: calendarID, accessToken: token).pages
            } catch let error as GoogleAPIError where error.kind == .unauthorized {
                _ = tokens.withLock { $0.removeValue(forKey: connectionID) }
                let token = try await accessToken(connectionID: connectionID)
                return try await syncer.sync(calendarKey: calendarKey, calendarID: calendarID, accessToken: token).pages
            }
        } catch let error as GoogleAPIError {
            switch error.kind {
            case .invalidGrant:
                let reason = "Google refused the stored refresh token (invalid_grant); the user must reconnect"
                try await store.setConnectionState(id: connectionID, state: .needsReconnect, reason: reason)
                throw SyncFailure(kind: .needsReconnect, message: reason)
            case .rateLimited(let after):
                throw SyncFailure(kind: .retry(retryAfter: after), message: error.description)
            case .server, .transport:
                throw SyncFailure(kind: .retry(retryAfter: nil), message: error.description)
            case .fullSyncRequired, .unauthorized, .badResponse, .other:
                throw SyncFailure(kind: .failed, message: error.description)
            }
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
