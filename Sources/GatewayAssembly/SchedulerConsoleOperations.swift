import CalgateMacros
import GatewayCore
import GatewayHTTP
import SyncEngine

/// The console's buttons and figures, carried out by the sync scheduler and the renewal service.
@MemberwiseInit
public struct SchedulerConsoleOperations: ConsoleOperations {
    let store: any GatewayStore
    let scheduler: SyncScheduler
    let renewal: RenewalService

    /// See `ConsoleOperations`.
    public func resync(_ connection: Connection, full: Bool) async throws -> Int {
        var count = 0
        for calendar in try await store.calendars(connectionID: connection.id) where calendar.selected {
            // The appointments stay until the full sync commits its replacement (cursor and data move together).
            if full { try await store.dropSyncCursor(calendarKey: calendar.calendarKey) }
            scheduler.requestSync(calendarKey: calendar.calendarKey, provider: connection.provider)
            count += 1
        }
        return count
    }

    /// See `ConsoleOperations`.
    public func renew(_ connection: Connection) async throws -> (renewed: Int, created: Int) {
        let report = try await renewal.renewNow(connectionID: connection.id, provider: connection.provider)
        return (report.renewed, report.created)
    }

    /// See `ConsoleOperations`.
    public func missedByPush() -> [Provider: Int] { scheduler.missedByPush }

    /// See `ConsoleOperations`.
    public func runningSyncs() -> Int { scheduler.runningCount }
}
