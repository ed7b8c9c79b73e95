import Foundation

/// Connections, their sealed credentials and calendars.
public protocol ConnectionStore: Sendable {
    /// Stores a new connection with its credentials.
    func createConnection(_ connection: Connection, credentials: SealedCredentials) async throws
    /// One connection.
    func connection(id: String) async throws -> Connection?
    /// All connections, or one user's.
    func connections(userID: String?) async throws -> [Connection]
    /// A connection's sealed credentials.
    func credentials(connectionID: String) async throws -> SealedCredentials?
    /// Replaces the sealed credentials (providers such as Entra ID rotate the refresh token on every refresh).
    func updateCredentials(connectionID: String, _ credentials: SealedCredentials) async throws
    /// Changes who may see the connection's imported appointments.
    func setConnectionVisibility(id: String, _ visibility: Connection.Visibility) async throws
    /// Sets the LeadCenter account the connection belongs to.
    func setConnectionAccount(id: String, accountID: String) async throws
    /// Stores the connection's health (state, reason, next retry, failing since).
    func setConnectionHealth(id: String, _ health: ConnectionHealth) async throws
    /// Changes the sync state.
    func setConnectionState(id: String, state: Connection.State, reason: String?) async throws
    /// Replaces the connection's calendar list.
    func saveCalendars(connectionID: String, _ calendars: [ConnectionCalendar]) async throws
    /// The connection's calendars.
    func calendars(connectionID: String) async throws -> [ConnectionCalendar]
}
