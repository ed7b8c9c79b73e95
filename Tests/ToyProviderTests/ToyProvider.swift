import Foundation
import GatewayCore
import Synchronization

/// A fourth calendar provider, written only against GatewayCore's provider boundary: a webhook whose pushes carry a
/// channel id and token in `X-Toy-*` fields, a connect request with one `toy_token` field, and a calendar that is
/// also polled. Nothing outside this file and one line of the gateway's assembly knows it exists.
enum Toy {
    static let provider = Provider(rawValue: "toy")!
    /// The token the toy service accepts.
    static let validToken = "let-me-in"

    /// The plugin (what the assembly line adds).
    static func plugin(service: ToyService, store: any GatewayStore, sealer: any SecretSealer, pollInterval: TimeInterval) -> ProviderPlugin {
        let connector = ToyConnector(service: service, store: store, sealer: sealer)
        return ProviderPlugin(
            provider: provider, webhooks: [ToyWebhook(service: service)],
            connectShape: ConnectShape(connectFields: ["toy_token"], reconnectFields: ["toy_token"]), connector: connector, syncer: connector, pollInterval: pollInterval
        )
    }
}

/// The toy provider's "remote API": calendars with events and a change counter, and the push channels it issued.
final class ToyService: Sendable {
    struct Channel: Sendable {
        var id: String
        var token: String
        var calendarKey: String
    }

    private struct State {
        var events: [String: [String: String]] = [:]  // calendar key → event id → title
        var version = 0
        var channels: [String: Channel] = [:]
    }

    private let state = Mutex(State())

    /// Adds or retitles an event.
    func put(calendarKey: String, eventID: String, title: String) {
        state.withLock {
            $0.events[calendarKey, default: [:]][eventID] = title
            $0.version += 1
        }
    }

    /// Everything in the calendar, and the version it is at.
    func snapshot(calendarKey: String) -> (events: [String: String], version: Int) {
        state.withLock { ($0.events[calendarKey] ?? [:], $0.version) }
    }

    /// Opens a push channel for the calendar.
    func openChannel(calendarKey: String) -> Channel {
        let channel = Channel(id: "toych-\(UUID().uuidString.prefix(8))", token: UUID().uuidString, calendarKey: calendarKey)
        state.withLock { $0.channels[channel.id] = channel }
        return channel
    }

    /// A channel by id.
    func channel(id: String) -> Channel? { state.withLock { $0.channels[id] } }

    /// The calendar's channels.
    func channels(calendarKey: String) -> [Channel] { state.withLock { $0.channels.values.filter { $0.calendarKey == calendarKey } } }
}

/// `toy_signature`: the channel id and token in `X-Toy-Channel` / `X-Toy-Token`.
struct ToyWebhook: WebhookVerifying {
    let service: ToyService
    var provider: Provider { Toy.provider }
    var key: String { "toy_signature" }
    var handlers: [WebhookHandlerSpec] { [WebhookHandlerSpec(key: "webhook.toy", defaultBodyLimit: 1024)] }
    var headerPrefix: String? { "x-toy-" }

    func parse(_ request: WebhookRequest) -> WebhookParse {
        guard let id = request.headers["x-toy-channel"], !id.isEmpty, id.utf8.count <= 64 else {
            return .verdict(.rejected(WebhookRejection(.badRequest, "X-Toy-Channel is required", reason: "missing_header")))
        }
        return .lookup(ids: [id], parsed: request.headers)
    }

    func credential(id: String, store: any GatewayStore, sealer: any SecretSealer) async throws -> WebhookCredential? {
        service.channel(id: id).map { WebhookCredential(id: $0.id, secret: $0.token, calendarKey: $0.calendarKey) }
    }

    func verify(_ parsed: any Sendable, credentials: [String: WebhookCredential], now: Date) -> WebhookVerdict {
        guard let headers = parsed as? [String: String], let id = headers["x-toy-channel"] else {
            return .rejected(WebhookRejection(.badRequest, "not a toy push", reason: "malformed"))
        }
        guard let credential = credentials[id] else { return .rejected(WebhookRejection(.notFound, "unknown channel", reason: "unknown_channel")) }
        guard ConstantTime.equals(headers["x-toy-token"] ?? "", credential.secret) else {
            return .rejected(WebhookRejection(.forbidden, "the token does not match the channel", reason: "token_mismatch"))
        }
        let entry = InboxEntry(provider: Toy.provider, channelID: id, dedupeKey: nil, kind: "changed", receivedAt: now, headers: [:], body: [])
            .naming(calendar: credential.calendarKey)
        return .store([entry], status: 204, dropped: [])
    }
}

/// Connects toy accounts (one calendar each) and syncs them from the service.
struct ToyConnector: ConnectionManaging, ProviderSyncing {
    let service: ToyService
    let store: any GatewayStore
    let sealer: any SecretSealer

    var provider: Provider { Toy.provider }

    func connect(_ request: ConnectRequest) async throws -> Connection {
        let token = try request.field("toy_token")
        guard token == Toy.validToken else { throw SyncFailure(kind: .needsReconnect, message: "the toy service refused the token") }
        let id = "toy_" + UUID().uuidString.lowercased().prefix(12)
        let connection = Connection(id: id, userID: request.userID, provider: Toy.provider, createdAt: Date())
        let sealed = try sealer.seal(Array(token.utf8), context: "connection:\(id):refresh_token")
        try await store.createConnection(
            connection,
            credentials: SealedCredentials(
                clientID: "toy", sealedClientSecret: try sealer.seal(Array(token.utf8), context: "connection:\(id):client_secret"), sealedRefreshToken: sealed
            ))
        let calendar = ConnectionCalendar(connectionID: id, calendarID: "main", name: "Toy calendar", selected: true)
        try await store.saveCalendars(connectionID: id, [calendar])
        _ = service.openChannel(calendarKey: calendar.calendarKey)
        _ = try await sync(calendarKey: calendar.calendarKey)
        return connection
    }

    func refreshCalendars(connectionID: String) async throws -> [ConnectionCalendar] { try await store.calendars(connectionID: connectionID) }

    func selectCalendars(connectionID: String, calendarIDs: Set<String>) async throws -> [ConnectionCalendar] {
        guard calendarIDs == ["main"] else { throw ConnectionInputError("a toy account has one calendar, \"main\"") }
        return try await store.calendars(connectionID: connectionID)
    }

    func disconnect(connectionID: String) async throws -> Connection {
        try await store.setConnectionState(id: connectionID, state: .disconnected, reason: nil)
        guard let connection = try await store.connection(id: connectionID) else { throw ConnectionInputError("no such connection", connectionNotFound: true) }
        return connection
    }

    func reconnect(connectionID: String, fields: [String: String]) async throws -> Connection {
        guard fields["toy_token"] == Toy.validToken else { throw SyncFailure(kind: .needsReconnect, message: "the toy service refused the token") }
        guard let connection = try await store.connection(id: connectionID) else { throw ConnectionInputError("no such connection", connectionNotFound: true) }
        return connection
    }

    func calendarKey(for entry: StoredInboxEntry) async throws -> String? {
        entry.entry.calendarKey ?? service.channel(id: entry.entry.channelID)?.calendarKey
    }

    /// A full listing each time (the toy has no delta API); the cursor is the service's version.
    func sync(calendarKey: String) async throws -> SyncOutcome {
        let (events, version) = service.snapshot(calendarKey: calendarKey)
        if try await store.syncCursor(calendarKey: calendarKey) == String(version) { return .nothing }
        let changes = events.sorted { $0.key < $1.key }.map { id, title in
            AppointmentChange.upsert(
                Appointment(
                    source: Toy.provider, calendarKey: calendarKey, externalID: id, title: title,
                    time: .allDay(startDate: "2026-12-24", endDate: "2026-12-25")
                ))
        }
        let result = try await store.applySync(calendarKey: calendarKey, changes: changes, cursor: String(version), replaceAll: true)
        return SyncOutcome(changes: result.upserted + result.deleted, fullSync: true)
    }
}
