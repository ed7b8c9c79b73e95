import CalgateMacros
import Foundation
import Synchronization

/// How far a calendar's full sync has come: pages fetched and appointments received as it goes, and appointments
/// applied once the round is committed (a round is applied in one transaction with its cursor, so nothing is applied
/// before the last page).
@MemberwiseInit
public struct SyncProgress: Sendable, Hashable {
    /// Where the sync is.
    public enum Phase: String, Sendable, Hashable {
        /// Fetching pages from the provider.
        case fetching
        /// All pages fetched; writing the changes and the new cursor.
        case applying
        /// Committed.
        case done
        /// Stopped by an error (nothing of it was applied).
        case failed
    }

    /// The calendar (`<connection>/<calendar>`).
    public var calendarKey: String
    /// Where it is.
    public var phase: Phase
    /// Pages fetched so far.
    public var pagesFetched: Int = 0
    /// Appointment changes received so far.
    public var appointmentsFetched: Int = 0
    /// Appointment changes committed (0 until `done`).
    public var appointmentsApplied: Int = 0
    /// When the sync started.
    public var startedAt: Date
    /// When it last moved.
    public var updatedAt: Date

    /// Whether it is still running.
    public var isRunning: Bool { phase == .fetching || phase == .applying }
}

/// The latest full sync of each calendar, updated by the provider syncers page by page; read by the console and the
/// connection API. In memory only: a restart forgets finished records (a running sync starts over anyway).
public final class SyncProgressBoard: Sendable {
    private let clock: any GatewayClock
    private let records = Mutex<[String: SyncProgress]>([:])

    /// Creates an empty board.
    public init(clock: any GatewayClock = SystemGatewayClock()) {
        self.clock = clock
    }

    /// A full sync of `calendarKey` starts (replacing the calendar's previous record).
    public func started(calendarKey: String) {
        let now = clock.now()
        records.withLock { $0[calendarKey] = SyncProgress(calendarKey: calendarKey, phase: .fetching, startedAt: now, updatedAt: now) }
    }

    /// One more page with `changes` appointment changes arrived.
    public func pageFetched(calendarKey: String, changes: Int) {
        update(calendarKey) {
            $0.pagesFetched += 1
            $0.appointmentsFetched += changes
        }
    }

    /// Every page is in; the round is being written.
    public func applying(calendarKey: String, changes: Int) {
        update(calendarKey) {
            $0.phase = .applying
            $0.appointmentsFetched = changes
        }
    }

    /// The round was committed with `applied` changes.
    public func finished(calendarKey: String, applied: Int) {
        update(calendarKey) {
            $0.phase = .done
            $0.appointmentsApplied = applied
        }
    }

    /// The round stopped with an error.
    public func failed(calendarKey: String) {
        update(calendarKey) { $0.phase = .failed }
    }

    /// The records of the connection's calendars, by calendar key.
    public func progress(connectionID: String) -> [SyncProgress] {
        let prefix = connectionID + "/"
        return records.withLock { $0.values.filter { $0.calendarKey.hasPrefix(prefix) } }.sorted { $0.calendarKey < $1.calendarKey }
    }

    /// Full syncs running now.
    public var runningCount: Int { records.withLock { $0.values.filter(\.isRunning).count } }

    private func update(_ calendarKey: String, _ change: (inout SyncProgress) -> Void) {
        let now = clock.now()
        records.withLock { records in
            guard var record = records[calendarKey], record.isRunning else { return }
            change(&record)
            record.updatedAt = now
            records[calendarKey] = record
        }
    }
}
