import Foundation
import GatewayCore
import Testing

/// Connections, calendars and Redtail integrations (`ConnectionStore`, `RedtailIntegrationStore`).
@Suite("Store contract: connections")
struct ConnectionContractTests {
    static func connection(_ id: String, user: String = "u1", created: Double) -> Connection {
        Connection(id: id, userID: user, provider: .microsoft, createdAt: date(created))
    }

    static let credentials = SealedCredentials(clientID: "client", sealedClientSecret: [0, 1, 2, 255], sealedRefreshToken: Array(repeating: 7, count: 300))

    @Test(arguments: Backend.available)
    func connectionsRoundTripAndOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let full = Connection(
                id: "c-full", userID: "u1", provider: .redtail, state: .degraded, stateReason: "HTTP 503", createdAt: date(1_700_000_000.5),
                nextRetryAt: date(1_700_000_600), failingSince: date(1_699_999_000), accountType: "financial_advisor", accountID: "acct-9",
                visibility: .everyone
            )
            try await store.createConnection(Self.connection("c-b", created: 1_700_000_100), credentials: Self.credentials)
            try await store.createConnection(full, credentials: Self.credentials)
            try await store.createConnection(Self.connection("c-a", created: 1_700_000_100), credentials: Self.credentials)
            try await store.createConnection(Self.connection("c-other", user: "u2", created: 1_600_000_000), credentials: Self.credentials)

            var created = full
            created.nextRetryAt = nil
            created.failingSince = nil
            #expect(try await store.connection(id: "c-full") == created, "creating stores every field but the retry times (setConnectionHealth does)")
            #expect(try await store.connection(id: "c-b") == Self.connection("c-b", created: 1_700_000_100), "nil fields and defaults round-trip")
            #expect(try await store.connection(id: "nope") == nil)
            #expect(try await store.connections(userID: "u1").map(\.id) == ["c-full", "c-a", "c-b"], "oldest first, then id")
            #expect(try await store.connections(userID: nil).map(\.id) == ["c-other", "c-full", "c-a", "c-b"])
            #expect(try await store.connections(userID: "nobody").isEmpty)
            await #expect(throws: (any Error).self, "an existing id is an error") {
                try await store.createConnection(Self.connection("c-a", created: 1), credentials: Self.credentials)
            }
        }
    }

    @Test(arguments: Backend.available)
    func credentialsHealthStateVisibilityAccount(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.createConnection(Self.connection("c1", created: 1_700_000_000), credentials: Self.credentials)
            #expect(try await store.credentials(connectionID: "c1") == Self.credentials)
            #expect(try await store.credentials(connectionID: "nope") == nil)
            let rotated = SealedCredentials(clientID: "client-2", sealedClientSecret: [], sealedRefreshToken: [9, 9])
            try await store.updateCredentials(connectionID: "c1", rotated)
            #expect(try await store.credentials(connectionID: "c1") == rotated)
            await #expect(throws: (any Error).self, "updating a missing connection throws") {
                try await store.updateCredentials(connectionID: "nope", rotated)
            }

            try await store.setConnectionVisibility(id: "c1", .everyone)
            try await store.setConnectionAccount(id: "c1", accountID: "acct-2")
            let health = ConnectionHealth(state: .degraded, reason: "timeout", nextRetryAt: date(1_700_000_900.25), failingSince: date(1_700_000_100))
            try await store.setConnectionHealth(id: "c1", health)
            var connection = try #require(try await store.connection(id: "c1"))
            #expect(connection.visibility == .everyone)
            #expect(connection.accountID == "acct-2")
            #expect(connection.health == health)

            try await store.setConnectionState(id: "c1", state: .needsReconnect, reason: "invalid_grant")
            connection = try #require(try await store.connection(id: "c1"))
            #expect(connection.health == ConnectionHealth(state: .needsReconnect, reason: "invalid_grant", nextRetryAt: nil, failingSince: nil))
            try await store.setConnectionState(id: "c1", state: .active, reason: nil)
            #expect(try await store.connection(id: "c1")?.stateReason == nil)
        }
    }

    @Test(arguments: Backend.available)
    func calendarsAreReplacedAndOrdered(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.createConnection(Self.connection("c1", created: 1_700_000_000), credentials: Self.credentials)
            try await store.saveCalendars(
                connectionID: "c1",
                [
                    ConnectionCalendar(connectionID: "c1", calendarID: "work", name: "Work", selected: true),
                    ConnectionCalendar(connectionID: "c1", calendarID: "Home/Family", name: "Family ✓", selected: false),
                ])
            #expect(
                try await store.calendars(connectionID: "c1") == [
                    ConnectionCalendar(connectionID: "c1", calendarID: "Home/Family", name: "Family ✓", selected: false),
                    ConnectionCalendar(connectionID: "c1", calendarID: "work", name: "Work", selected: true),
                ])
            try await store.saveCalendars(connectionID: "c1", [ConnectionCalendar(connectionID: "c1", calendarID: "new", name: "New", selected: true)])
            #expect(try await store.calendars(connectionID: "c1").map(\.calendarID) == ["new"])
            try await store.saveCalendars(connectionID: "c1", [])
            #expect(try await store.calendars(connectionID: "c1").isEmpty)
            #expect(try await store.calendars(connectionID: "nope").isEmpty)
        }
    }

    @Test(arguments: Backend.available)
    func redtailIntegrations(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let integration = RedtailIntegration(
                accountID: "acct", accountType: "financial_advisor", redtailUserID: nil, sealedAPIKey: [1, 2, 3], sealedUserKey: [0, 0, 0, 0],
                createdAt: date(1_700_000_000.75)
            )
            #expect(try await store.redtailIntegration(accountID: "acct") == nil)
            try await store.saveRedtailIntegration(integration)
            #expect(try await store.redtailIntegration(accountID: "acct") == integration)
            var replaced = integration
            replaced.redtailUserID = "rt-42"
            replaced.sealedAPIKey = [9]
            replaced.createdAt = date(1_800_000_000)
            try await store.saveRedtailIntegration(replaced)
            var expected = replaced
            expected.createdAt = integration.createdAt
            #expect(try await store.redtailIntegration(accountID: "acct") == expected, "a replacement keeps the first creation time")
            #expect(try await store.deleteRedtailIntegration(accountID: "acct"))
            #expect(try await store.deleteRedtailIntegration(accountID: "acct") == false)
            #expect(try await store.redtailIntegration(accountID: "acct") == nil)
        }
    }
}
