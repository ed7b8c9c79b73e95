import GatewayCore

/// What the operator console asks of the services behind the HTTP layer (the sync scheduler and the renewal
/// service, which GatewayHTTP does not import); the `calgate` composition root implements it.
public protocol ConsoleOperations: Sendable {
    /// Asks for a sync of each of the connection's selected calendars; with `full`, their cursors are dropped first so
    /// each sync replaces the calendar. Returns how many calendars were asked for.
    func resync(_ connection: Connection, full: Bool) async throws -> Int
    /// Renews the connection's push channels or subscriptions now; returns how many were renewed and created.
    func renew(_ connection: Connection) async throws -> (renewed: Int, created: Int)
    /// Changes found by reconciliation sweeps that push never announced, per provider, since start.
    func missedByPush() -> [Provider: Int]
    /// Syncs running now.
    func runningSyncs() -> Int
}
