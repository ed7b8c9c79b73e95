import Foundation
import GatewayCore

/// Redtail connections: Redtail has no webhooks, so its one "calendar" (the user's activities) is polled.
///
/// Connect exchanges API key, username and password for the UserKey (the password is never stored). A poll asks for
/// activities updated since the watermark minus an overlap window, skips those whose `(id, updated_at)` is already
/// stored, then lists the sync window to find deletions (Redtail exposes no tombstones), and stores the changes and
/// the new watermark in one transaction.
public final class RedtailConnector: ProviderSyncing, ConnectionManaging, AccountIntegrating, Sendable {
    /// Always `.redtail`.
    public let provider = Provider.redtail
    /// The id of the single calendar a Redtail connection has.
    public static let calendarID = "activities"
    /// The only LeadCenter account type that has Redtail.
    public static let financialAdvisor = "financial_advisor"

    let client: RedtailClient
    let store: any GatewayStore
    let sealer: any SecretSealer
    let clock: any GatewayClock
    /// How far before the watermark each poll starts (updated_at precision and clock skew).
    let overlap: TimeInterval
    let pageSize: Int

    /// Creates the connector.
    public init(client: RedtailClient, store: any GatewayStore, sealer: any SecretSealer, clock: any GatewayClock, overlap: TimeInterval = 900, pageSize: Int = 200) {
        self.client = client
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self.overlap = overlap
        self.pageSize = pageSize
    }

    /// The listing window: 30 days back, a year ahead.
    func window(now: Date) -> ClosedRange<Date> {
        now.addingTimeInterval(-30 * 86_400)...now.addingTimeInterval(365 * 86_400)
    }

    // MARK: Connect

    /// A user's calendar connects on the account's main integration (`account_id`); reconnecting takes the
    /// integration's credentials again.
    public static let connectShape = ConnectShape(connectFields: [], requiresAccount: true, reconnectFields: ["api_key", "username", "password"])

    /// Connects the user's Redtail calendar on the account's main integration (`connectCalendar`).
    public func connect(_ request: ConnectRequest) async throws -> Connection {
        guard let accountID = request.accountID, !accountID.isEmpty else { throw ConnectionInputError("account_id is required") }
        return try await connectCalendar(userID: request.userID, accountID: accountID)
    }

    /// The account's main integration (`registerIntegration`).
    public var accountIntegration: (any AccountIntegrating)? { self }

    /// Connects a Financial Advisor's Redtail account: exchanges the credentials for the UserKey, stores API key and
    /// UserKey sealed (not the password), and runs the first full listing.
    public func connect(userID: String, accountType: String, apiKey: String, username: String, password: String) async throws -> Connection {
        guard accountType == Self.financialAdvisor else { throw ConnectionInputError(Self.advisorsOnly(accountType)) }
        let session = try await authenticate(apiKey: apiKey, username: username, password: password)
        let id = "rc_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let connection = Connection(id: id, userID: userID, provider: .redtail, createdAt: clock.now(), accountType: accountType)
        try await store.createConnection(
            connection,
            credentials: SealedCredentials(
                clientID: session.userID ?? username,
                sealedClientSecret: try sealer.seal(Array(apiKey.utf8), context: "connection:\(id):client_secret"),
                sealedRefreshToken: try sealer.seal(Array(session.userKey.utf8), context: "connection:\(id):refresh_token")
            ))
        let calendar = ConnectionCalendar(connectionID: id, calendarID: Self.calendarID, name: "Redtail activities", selected: true)
        try await store.saveCalendars(connectionID: id, [calendar])
        _ = try await sync(calendarKey: calendar.calendarKey)
        return connection
    }

    /// Why an account that is not a Financial Advisor's cannot use Redtail.
    static func advisorsOnly(_ accountType: String) -> String {
        "Redtail is available to Financial Advisor accounts only (this account is \"\(accountType)\")"
    }

    /// Exchanges the credentials for a session (its UserKey), a refusal classified as `failure(_:)` says.
    func authenticate(apiKey: String, username: String, password: String) async throws -> RedtailSession {
        do { return try await client.authenticate(apiKey: apiKey, username: username, password: password) } catch let error as RedtailAPIError {
            throw Self.failure(error)
        }
    }

    // MARK: The account's main integration

    /// The `PUT /api/v1/accounts/{account}/redtail` fields.
    public static let integrationFields = ["account_type", "api_key", "username", "password"]

    /// The account's main integration.
    public func integration(accountID: String) async throws -> RedtailIntegration? {
        try await store.redtailIntegration(accountID: accountID)
    }

    /// Removes the account's main integration (its calendar connections stay until disconnected).
    public func removeIntegration(accountID: String) async throws -> Bool {
        try await store.deleteRedtailIntegration(accountID: accountID)
    }

    /// Registers the main integration from the checked fields.
    public func registerIntegration(accountID: String, fields: [String: String]) async throws -> RedtailIntegration {
        let request = ConnectRequest(userID: "", fields: fields)
        return try await registerIntegration(
            accountID: accountID, accountType: try request.field("account_type"), apiKey: try request.field("api_key"),
            username: try request.field("username"), password: try request.field("password")
        )
    }

    /// Connects a LeadCenter account's main Redtail integration: Financial Advisor accounts only (409 otherwise);
    /// the credentials are exchanged for the UserKey, which is kept sealed with the API key (not the password).
    public func registerIntegration(accountID: String, accountType: String, apiKey: String, username: String, password: String) async throws -> RedtailIntegration {
        guard accountType == Self.financialAdvisor else { throw ConnectionConflictError(Self.advisorsOnly(accountType)) }
        let session = try await authenticate(apiKey: apiKey, username: username, password: password)
        let integration = RedtailIntegration(
            accountID: accountID, accountType: accountType, redtailUserID: session.userID ?? username,
            sealedAPIKey: try sealer.seal(Array(apiKey.utf8), context: "redtail_integration:\(accountID):api_key"),
            sealedUserKey: try sealer.seal(Array(session.userKey.utf8), context: "redtail_integration:\(accountID):user_key"),
            createdAt: clock.now()
        )
        try await store.saveRedtailIntegration(integration)
        return integration
    }

    /// A user's Redtail calendar connection on the account's main integration: 409 while the account has none.
    public func connectCalendar(userID: String, accountID: String) async throws -> Connection {
        guard let integration = try await store.redtailIntegration(accountID: accountID) else {
            throw ConnectionConflictError("account \(accountID) has no main Redtail integration yet: connect Redtail for the account first")
        }
        guard integration.accountType == Self.financialAdvisor else {
            throw ConnectionConflictError("Redtail is available to Financial Advisor accounts only")
        }
        let apiKey = try sealer.open(integration.sealedAPIKey, context: "redtail_integration:\(accountID):api_key")
        let userKey = try sealer.open(integration.sealedUserKey, context: "redtail_integration:\(accountID):user_key")
        let id = "rc_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let connection = Connection(
            id: id, userID: userID, provider: .redtail, createdAt: clock.now(), accountType: integration.accountType, accountID: accountID
        )
        try await store.createConnection(
            connection,
            credentials: SealedCredentials(
                clientID: integration.redtailUserID ?? "",
                sealedClientSecret: try sealer.seal(apiKey, context: "connection:\(id):client_secret"),
                sealedRefreshToken: try sealer.seal(userKey, context: "connection:\(id):refresh_token")
            ))
        let calendar = ConnectionCalendar(connectionID: id, calendarID: Self.calendarID, name: "Redtail activities", selected: true)
        try await store.saveCalendars(connectionID: id, [calendar])
        _ = try await sync(calendarKey: calendar.calendarKey)
        return connection
    }

    /// Redtail has one calendar; the list never changes.
    public func refreshCalendars(connectionID: String) async throws -> [ConnectionCalendar] {
        try await store.syncingCalendars(connectionID: connectionID, provider: .redtail)
    }

    /// Turns polling of the activities calendar on or off.
    public func selectCalendars(connectionID: String, calendarIDs: Set<String>) async throws -> [ConnectionCalendar] {
        let current = try await store.syncingCalendars(connectionID: connectionID, provider: .redtail)
        let updated = try current.selecting(calendarIDs, hint: "Redtail has only \"\(Self.calendarID)\"")
        try await store.saveCalendars(connectionID: connectionID, updated)
        for (before, after) in zip(current, updated) where before.selected != after.selected {
            if after.selected { _ = try await sync(calendarKey: after.calendarKey) } else { _ = try await store.clearCalendar(calendarKey: after.calendarKey) }
        }
        return updated
    }

    /// Removes imported activities and marks the connection disconnected (polling stops).
    public func disconnect(connectionID: String) async throws -> Connection {
        let connection = try await store.existingConnection(connectionID, provider: .redtail)
        for calendar in try await store.calendars(connectionID: connectionID) { _ = try await store.clearCalendar(calendarKey: calendar.calendarKey) }
        try await store.setConnectionHealth(id: connectionID, connection.health.applying(.disconnected))
        return try await store.connection(id: connectionID) ?? connection
    }

    /// New credentials (`api_key`, `username`, `password`) for an existing connection.
    public func reconnect(connectionID: String, fields: [String: String]) async throws -> Connection {
        let request = ConnectRequest(userID: "", fields: fields)
        return try await reconnect(
            connectionID: connectionID, apiKey: try request.field("api_key"), username: try request.field("username"), password: try request.field("password")
        )
    }

    /// New credentials: a fresh UserKey, then a full re-poll.
    public func reconnect(connectionID: String, apiKey: String, username: String, password: String) async throws -> Connection {
        let connection = try await store.existingConnection(connectionID, provider: .redtail)
        let session: RedtailSession
        do { session = try await client.authenticate(apiKey: apiKey, username: username, password: password) } catch let error as RedtailAPIError {
            throw Self.failure(error)
        }
        try await store.updateCredentials(
            connectionID: connectionID,
            SealedCredentials(
                clientID: session.userID ?? username,
                sealedClientSecret: try sealer.seal(Array(apiKey.utf8), context: "connection:\(connectionID):client_secret"),
                sealedRefreshToken: try sealer.seal(Array(session.userKey.utf8), context: "connection:\(connectionID):refresh_token")
            ))
        try await store.setConnectionHealth(id: connectionID, connection.health.applying(.reconnected))
        for calendar in try await store.calendars(connectionID: connectionID) where calendar.selected {
            _ = try await store.clearCalendar(calendarKey: calendar.calendarKey)
            _ = try await sync(calendarKey: calendar.calendarKey)
        }
        return try await store.connection(id: connectionID) ?? connection
    }

    // MARK: ProviderSyncing

    /// Redtail sends no notifications.
    public func calendarKey(for entry: StoredInboxEntry) async throws -> String? { nil }

    /// One poll.
    public func sync(calendarKey: String) async throws -> SyncOutcome {
        guard let calendar = try await store.syncTarget(calendarKey: calendarKey).calendar else { return .nothing }
        let connectionID = calendar.connectionID
        guard let credentials = try await store.credentials(connectionID: connectionID) else {
            throw SyncFailure(kind: .failed, message: "connection \(connectionID) has no credentials")
        }
        let apiKey = String(decoding: try sealer.open(credentials.sealedClientSecret, context: "connection:\(connectionID):client_secret"), as: UTF8.self)
        let userKey = String(decoding: try sealer.open(credentials.sealedRefreshToken, context: "connection:\(connectionID):refresh_token"), as: UTF8.self)
        do {
            return try await poll(calendarKey: calendarKey, apiKey: apiKey, userKey: userKey)
        } catch let error as RedtailAPIError {
            let failure = Self.failure(error)
            if failure.kind == .needsReconnect {
                try await store.setConnectionState(id: connectionID, state: .needsReconnect, reason: failure.message)
            }
            throw failure
        } catch let error as RedtailMappingError {
            throw SyncFailure(kind: .failed, message: error.description)
        }
    }

    func poll(calendarKey: String, apiKey: String, userKey: String) async throws -> SyncOutcome {
        let now = clock.now()
        let window = window(now: now)
        let cursor = try await store.syncCursor(calendarKey: calendarKey).flatMap { RedtailActivityMapper.parseInstant($0) }
        let inWindow = try await list(apiKey: apiKey, userKey: userKey, updatedSince: nil, window: window)
        var watermark = cursor ?? .distantPast
        guard let cursor else {
            // First poll: the window listing is the calendar.
            let changes = try inWindow.map { AppointmentChange.upsert(try RedtailActivityMapper.appointment($0, calendarKey: calendarKey)) }
            for activity in inWindow { if let at = activity.updatedAt.flatMap(RedtailActivityMapper.parseInstant) { watermark = max(watermark, at) } }
            let mark = watermark == .distantPast ? now : watermark
            _ = try await store.applySync(calendarKey: calendarKey, changes: changes, cursor: ISO8601DateFormatter().string(from: mark), replaceAll: true)
            return SyncOutcome(changes: changes.count, fullSync: true)
        }
        let updated = try await list(apiKey: apiKey, userKey: userKey, updatedSince: cursor.addingTimeInterval(-overlap), window: nil)
        let stored = Dictionary(try await store.appointments(calendarKey: calendarKey).map { ($0.externalID, $0) }, uniquingKeysWith: { a, _ in a })
        var changes: [AppointmentChange] = []
        var seen: Set<String> = []
        // Changed since the watermark, then anything in the window the store does not have as it is (a missed edit).
        for activity in updated + inWindow {
            let id = String(activity.id)
            guard seen.insert(id).inserted else { continue }
            let updatedAt = activity.updatedAt.flatMap(RedtailActivityMapper.parseInstant)
            if let updatedAt { watermark = max(watermark, updatedAt) }
            // Dedupe on (id, updated_at): the overlap window returns unchanged activities again.
            if let existing = stored[id], let updatedAt, existing.updatedAt == updatedAt { continue }
            changes.append(.upsert(try RedtailActivityMapper.appointment(activity, calendarKey: calendarKey)))
        }
        // Deletions: stored activities inside the window that the window listing no longer has.
        let present = Set(inWindow.map { String($0.id) })
        for (id, appointment) in stored where !present.contains(id) && !seen.contains(id) && Self.inside(appointment.time, window) {
            changes.append(.delete(externalID: id))
        }
        _ = try await store.applySync(calendarKey: calendarKey, changes: changes, cursor: ISO8601DateFormatter().string(from: watermark), replaceAll: false)
        return SyncOutcome(changes: changes.count, fullSync: false)
    }

    func list(apiKey: String, userKey: String, updatedSince: Date?, window: ClosedRange<Date>?) async throws -> [RedtailActivity] {
        var all: [RedtailActivity] = []
        var page = 1
        var pages = 1
        repeat {
            try Task.checkCancellation()
            let result = try await client.activities(apiKey: apiKey, userKey: userKey, updatedSince: updatedSince, window: window, page: page, pageSize: pageSize)
            all += result.activities
            pages = min(result.totalPages, 1000)
            page += 1
        } while page <= pages
        return all
    }

    static func inside(_ time: AppointmentTime, _ window: ClosedRange<Date>) -> Bool {
        switch time {
        case .timed(let start, let end, _): return start < window.upperBound && end >= window.lowerBound
        case .allDay(let startDate, _):
            guard let start = RedtailActivityMapper.parseInstant(startDate + "T00:00:00Z") else { return true }
            return start < window.upperBound && start.addingTimeInterval(86_400) >= window.lowerBound
        }
    }

    static func failure(_ error: RedtailAPIError) -> SyncFailure {
        switch error.kind {
        case .unauthorized:
            return SyncFailure(kind: .needsReconnect, message: "Redtail refused the credentials (401); connect the account again")
        case .accountLocked:
            return SyncFailure(kind: .needsReconnect, message: "the Redtail account is locked; unlock it in Redtail and connect again")
        case .retry(let after):
            return SyncFailure(kind: .retry(retryAfter: after), message: error.description)
        case .transport:
            return SyncFailure(kind: .retry(retryAfter: nil), message: error.description)
        case .badResponse, .other:
            return SyncFailure(kind: .failed, message: error.description)
        }
    }
}

extension ProviderPlugin {
    /// Redtail CRM: no webhooks, polled; connections build on the account's main integration.
    public static func redtail(_ connector: RedtailConnector?, pollInterval: TimeInterval = 300) -> ProviderPlugin {
        ProviderPlugin(
            provider: .redtail, connectShape: RedtailConnector.connectShape, accountIntegrationFields: RedtailConnector.integrationFields,
            connector: connector, syncer: connector, pollInterval: pollInterval
        )
    }
}
