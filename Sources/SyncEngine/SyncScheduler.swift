import Foundation
import GatewayCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Turns inbox rows into coalesced per-calendar delta syncs, and marks rows processed only after a sync that
/// started after them succeeded, so nothing acknowledged is lost across crashes (replayed rows cause one
/// extra, idempotent sync).
///
/// Each sync runs under the calendar's lease (`sync:<calendar>`), kept alive by a heartbeat while it runs. When
/// several instances share one PostgreSQL, each reads only the inbox rows of the partitions it owns
/// (`WorkLeasing.partitions`, kept by `PartitionKeeper`), so a notification costs one read and one routing however
/// many instances run. When the instance gains partitions it reads their unprocessed rows from the start (rows it
/// already holds are not queued twice); when it loses some it starts no more syncs there (a running sync keeps its
/// calendar's lease, so correctness never rests on partition ownership alone: an instance that still had a row of a
/// moved partition finds its lease held, or the row processed, and drops it).
public final class SyncScheduler: Service, Sendable {
    /// Tuning.
    public struct Configuration: Sendable {
        /// How long notifications are gathered before a fetch: a burst of any size within one window causes at
        /// most two fetches.
        public var window: TimeInterval = 1
        /// How often the inbox and timers are checked.
        public var tick: Duration = .milliseconds(25)
        /// Most syncs at once.
        public var maxConcurrentSyncs: Int = 8
        /// Most syncs at once for one connection (calendar keys are `<connection>/<calendar>`), so one account
        /// with many calendars cannot use up a provider's per-user quota or the whole pool.
        public var maxConcurrentSyncsPerConnection: Int = 2
        /// Backoff after failures. The cap is an hour: a calendar whose provider is down for days is retried about
        /// twice an hour (jittered), not every few minutes (the fleet month found a 300 s cap sending a week-long Graph
        /// outage 110,000 failed calls a day for 380 calendars, and the whole backlog back within 5 minutes of the
        /// end); the exponential start keeps short blips retried within seconds.
        public var backoff = BackoffPolicy(base: 1, cap: 3600)
        /// Syncs each connection may start, per minute (nil: unlimited); a calendar over its connection's budget
        /// stays due and starts when the budget has refilled.
        public var connectionBudget: SyncBudget? = .standard
        /// How often the inbox is read when nothing woke the scheduler (`wakeForInbox`); with a store that announces
        /// appends (PostgreSQL `LISTEN/NOTIFY`) this is only the fallback.
        public var inboxPollInterval: Duration = .milliseconds(25)
        /// How long a calendar's sync lease lasts without a heartbeat: how soon another instance takes over the
        /// calendars of an instance that died. The heartbeat renews it every third of this while the sync runs.
        public var leaseDuration: TimeInterval = 30
        /// Creates defaults.
        public init() {}
    }

    private struct State: Sendable {
        var coalescer: SyncCoalescer<String>
        var wakes: [String: Date] = [:]
        /// Inbox rows per calendar not yet covered by a started sync.
        var waiting: [String: [Int64]] = [:]
        /// Rows a running sync covers.
        var covering: [String: [Int64]] = [:]
        /// How far the inbox has been read: each row is read once (unprocessed rows from before a restart are
        /// re-read, because a new scheduler starts at the beginning).
        var inboxCursor = InboxCursor.start
        /// Which provider syncs each calendar.
        var providerOf: [String: Provider] = [:]
        var running: Int = 0
        var runningPerConnection: [Substring: Int] = [:]
        var fetchCount: Int = 0
        /// Calendars the reconciliation sweep asked for, and whether the running fetch was the sweep's alone.
        var sweepRequested: Set<String> = []
        var sweepOnly: Set<String> = []
        /// Changes found by sweep-only syncs, per provider ("missed by push").
        var missedByPush: [Provider: Int] = [:]
        /// Every inbox row id in `waiting` or `covering`, so a re-read (after gaining partitions) queues none twice.
        var known: Set<Int64> = []
        /// Calendars asked for by `requestSync` (not by an inbox row): they run even outside the owned partitions.
        var requested: Set<String> = []
        /// Calendars with a queued row of another partition than theirs (a row that named no calendar goes by its
        /// channel's partition): this instance read it, so it syncs them whoever owns the calendar's partition (kept:
        /// at most one entry per such calendar).
        var foreign: Set<String> = []
        /// The owned partitions as last seen (nil: all) and their generation.
        var owned: Set<Int>? = nil
        var ownedGeneration: UInt64 = 0
        /// Syncs each connection may still start (`Configuration.connectionBudget`).
        var budget: SyncBudget?
    }

    private let store: any InboxStore
    private let leases: any WorkLeasing
    /// Set when the store announced new rows; the next tick reads the inbox even before the poll interval.
    private let inboxWoken = Atomic<Bool>(true)
    private let health: (any ConnectionHealthRecording)?
    private let providers: [Provider: any ProviderSyncing]
    private let clock: any GatewayClock
    private let configuration: Configuration
    private let logger: Logger
    private let state: Mutex<State>
    private let random = Mutex(SystemRandomNumberGenerator())
    private let activity: GatewayActivity?

    /// Creates the scheduler; `activity` (the console's) learns of every routed notification and finished sync.
    public init(
        store: any InboxStore, leases: any WorkLeasing = LocalWorkLeases(), providers: [any ProviderSyncing], health: (any ConnectionHealthRecording)? = nil,
        clock: any GatewayClock = SystemGatewayClock(), configuration: Configuration = .init(), activity: GatewayActivity? = nil, logger: Logger
    ) {
        self.activity = activity
        self.store = store
        self.leases = leases
        self.health = health
        self.providers = Dictionary(providers.map { ($0.provider, $0) }, uniquingKeysWith: { first, _ in first })
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        self.state = Mutex(State(coalescer: SyncCoalescer(window: configuration.window, backoff: configuration.backoff), budget: configuration.connectionBudget))
    }

    /// Delta fetches started since start (benchmarks and tests read it).
    public var fetchesStarted: Int { state.withLock { $0.fetchCount } }

    /// Changes found by syncs only the reconciliation sweep asked for, per provider: what push missed.
    public var missedByPush: [Provider: Int] { state.withLock { $0.missedByPush } }

    /// Whether nothing is pending, running or backing off (tests and the simulated month wait for this).
    public var isIdle: Bool { state.withLock { $0.coalescer.busyCount == 0 && $0.waiting.isEmpty } }

    /// Calendars with a sync pending, running or backing off (the simulated month reports its peak).
    public var backlog: Int { state.withLock { $0.coalescer.busyCount } }

    /// Syncs running now.
    public var runningCount: Int { state.withLock { $0.running } }

    /// The earliest time a pending or backing-off calendar wakes up (the simulated month jumps its clock there).
    public var nextWake: Date? { state.withLock { $0.wakes.values.min() } }

    /// Asks for a sync of `calendarKey` (renewal repairs, reconnect); `sweep` marks the reconciliation sweep's
    /// requests, whose findings count as missed by push when no notification asked for the same sync.
    public func requestSync(calendarKey: String, provider: Provider, sweep: Bool = false) {
        let now = clock.now()
        state.withLock { state in
            state.providerOf[calendarKey] = provider
            state.requested.insert(calendarKey)
            if sweep { state.sweepRequested.insert(calendarKey) }
            if case .wake(_, let at) = state.coalescer.notify(calendarKey, now: now) { state.wakes[calendarKey] = at }
        }
    }

    /// Asks for the inbox to be read on the next tick (the store announced rows another instance, or this one,
    /// committed). Safe from any thread.
    public func wakeForInbox() {
        inboxWoken.store(true, ordering: .releasing)
    }

    /// Runs until graceful shutdown; in-flight syncs finish (their rows stay unprocessed if they do not).
    public func run() async throws {
        let clock = ContinuousClock()
        var lastPull = clock.now
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                // New rows announced, the poll interval passed, or the owned partitions changed (gained ones are read
                // from the start at once).
                let ownershipChanged = leases.partitions.snapshot.generation != state.withLock { $0.ownedGeneration }
                if inboxWoken.exchange(false, ordering: .acquiringAndReleasing) || ownershipChanged
                    || clock.now - lastPull >= configuration.inboxPollInterval
                {
                    lastPull = clock.now
                    await pullInbox()
                }
                for key in dueCalendars() {
                    group.addTask { await self.runSync(key) }
                }
                try? await Task.sleep(for: configuration.tick)
            }
        }
    }

    /// Reads new inbox rows (in pages, until none are left) and feeds them to the coalescer.
    func pullInbox() async {
        for _ in 0..<50 {
            guard await pullInboxPage(limit: 1_000) == 1_000 else { return }
        }
    }

    /// Notices a change of the owned partitions: after a gain the inbox is read again from the start (only the owned
    /// partitions' unprocessed rows; rows already queued are skipped), so rows a moved partition left behind are
    /// synced here. Losses are handled as calendars come due (`dueCalendars`). Returns the partitions to read.
    private func followOwnership() -> Set<Int>? {
        let (owned, generation) = leases.partitions.snapshot
        state.withLock { state in
            guard state.ownedGeneration != generation else { return }
            let gained: Bool
            switch (state.owned, owned) {
            case (_, nil): gained = state.owned != nil
            case (nil, .some): gained = false
            case (.some(let before), .some(let now)): gained = !now.isSubset(of: before)
            }
            if gained { state.inboxCursor = .start }
            state.owned = owned
            state.ownedGeneration = generation
        }
        return owned
    }

    /// Reads one page of rows above the watermark; returns how many it read.
    ///
    /// Per row only the provider's mapping to a calendar runs (verification recorded the calendar in the row, so it is
    /// no store read, and `pendingRoutes` decodes neither headers nor body); the coalescer, the waiting lists and the
    /// console's activity are updated once per calendar and page.
    private func pullInboxPage(limit: Int) async -> Int {
        let owned = followOwnership()
        let fresh: [StoredInboxEntry]
        do {
            fresh = try await store.pendingRoutes(after: state.withLock { $0.inboxCursor }, limit: limit, partitions: owned)
        } catch {
            logger.warning("cannot read the inbox", metadata: ["error": "\(error)"])
            return 0
        }
        guard !fresh.isEmpty else { return 0 }
        Counter(label: "calgate_inbox_rows_read_total").increment(by: fresh.count)
        var orphans: [Int64] = []
        // Per calendar, its rows' positions in the page.
        var rowsOf: [String: (provider: Provider, rows: [Int])] = [:]
        var foreign: Set<String> = []
        for (index, row) in fresh.enumerated() {
            guard let provider = providers[row.entry.provider] else { continue }
            do {
                if let key = try await provider.calendarKey(for: row) {
                    rowsOf[key, default: (provider.provider, [])].rows.append(index)
                    if row.entry.calendarKey != key, row.entry.partition != Partitions.partition(of: key) { foreign.insert(key) }
                } else {
                    orphans.append(row.id)
                }
            } catch {
                logger.warning("cannot map a notification to a calendar", metadata: ["provider": "\(row.entry.provider.rawValue)", "error": "\(error)"])
            }
        }
        if let activity {
            // The console keeps a few recent notifications per connection: only each calendar's newest reach it.
            let kept = activity.recentNotificationLimit
            var routed: [(index: Int, key: String)] = []
            for (key, calendar) in rowsOf {
                for index in calendar.rows.suffix(kept) { routed.append((index, key)) }
            }
            activity.notificationsRouted(
                routed.sorted { $0.index < $1.index }.map { .init(calendarKey: $0.key, kind: fresh[$0.index].entry.kind, receivedAt: fresh[$0.index].entry.receivedAt) }
            )
        }
        let now = clock.now()
        state.withLock { state in
            state.inboxCursor.advance(past: fresh)
            for (key, calendar) in rowsOf {
                let ids = calendar.rows.map { fresh[$0].id }.filter { state.known.insert($0).inserted }
                guard !ids.isEmpty else { continue }
                if foreign.contains(key) { state.foreign.insert(key) }
                state.providerOf[key] = calendar.provider
                state.waiting[key, default: []].append(contentsOf: ids)
                if case .wake(_, let at) = state.coalescer.notify(key, now: now) { state.wakes[key] = at }
            }
        }
        if !orphans.isEmpty {
            // About a calendar calgate no longer syncs: nothing to do, ever.
            try? await store.markProcessed(orphans)
        }
        return fresh.count
    }

    /// Calendars whose wake-up is due and may start now (within the concurrency cap).
    func dueCalendars() -> [String] {
        let now = clock.now()
        return state.withLock { state in
            var started: [String] = []
            for (key, at) in state.wakes.sorted(by: { $0.value < $1.value }) where at <= now {
                guard state.running < configuration.maxConcurrentSyncs else { break }
                let connection = Self.connection(of: key)
                // Over the connection's cap: stays due and is picked up when one of its syncs ends.
                guard state.runningPerConnection[connection, default: 0] < configuration.maxConcurrentSyncsPerConnection else { continue }
                // Over the connection's budget: wakes again when it has refilled.
                if let later = state.budget?.nextAvailable(String(connection), now: now) {
                    state.wakes[key] = later
                    continue
                }
                state.wakes[key] = nil
                // A calendar of a partition this instance no longer owns: its new owner reads its rows from the start.
                if !state.requested.contains(key), !state.foreign.contains(key), let owned = state.owned,
                    !owned.contains(Partitions.partition(of: key))
                {
                    for id in state.waiting.removeValue(forKey: key) ?? [] { state.known.remove(id) }
                    state.coalescer.remove(key)
                    state.sweepRequested.remove(key)
                    continue
                }
                switch state.coalescer.wake(key, now: now) {
                case .fetch:
                    state.requested.remove(key)
                    state.budget?.spend(String(connection), now: now)
                    state.running += 1
                    state.runningPerConnection[connection, default: 0] += 1
                    let covering = state.waiting.removeValue(forKey: key) ?? []
                    state.covering[key] = covering
                    if state.sweepRequested.remove(key) != nil, covering.isEmpty { state.sweepOnly.insert(key) }
                    started.append(key)
                case .wake(_, let next):
                    state.wakes[key] = next
                case .none:
                    break
                }
            }
            return started
        }
    }

    /// Runs one due calendar: under its lease, unless another instance holds it or already did the work.
    func runSync(_ key: String) async {
        let leaseKey = "sync:\(key)"
        // Another instance may have synced some or all of these rows since they were read: only the rest is this
        // turn's work (and, if the lease is busy, all that waits for the next window, so the list never grows with
        // rows done elsewhere).
        guard await keepUnprocessedRows(of: key) else { return finishWithoutFetch(key, requeue: false) }
        let claimed: Bool
        do { claimed = try await leases.claim(leaseKey, for: configuration.leaseDuration) } catch {
            logger.warning("cannot claim a calendar for its sync; trying again", metadata: ["calendar.key": "\(key)", "error": "\(error)"])
            return finishWithoutFetch(key, requeue: true)
        }
        // Held by another instance (or another task here): its sync covers what it read; ours waits a window and
        // then looks again.
        guard claimed else { return finishWithoutFetch(key, requeue: true) }
        let startedAt = Date()
        // Once more under the lease: the previous holder may have finished in between.
        guard await keepUnprocessedRows(of: key) else {
            await leases.release(leaseKey)
            return finishWithoutFetch(key, requeue: false)
        }
        let covering = state.withLock {
            $0.fetchCount += 1
            return $0.covering[key] ?? []
        }
        let heartbeat = Task { [leases, configuration] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(configuration.leaseDuration / 3))
                if Task.isCancelled { break }
                _ = try? await leases.claim(leaseKey, for: configuration.leaseDuration)
            }
        }
        let outcome = await sync(key)
        heartbeat.cancel()
        let record = WorkRecord(kind: "sync", startedAt: startedAt, inboxRows: covering, outcome: outcome.succeeded ? "ok" : "failed")
        if !outcome.covered.isEmpty {
            do { try await store.markProcessed(outcome.covered) } catch {
                logger.warning("cannot mark inbox rows processed; they will cause one more sync", metadata: ["error": "\(error)"])
            }
        }
        await leases.release(leaseKey, record: record)
    }

    /// With leases shared between instances, narrows the rows `key`'s turn covers to those still unprocessed; false
    /// when rows were covered and none is left (another instance did the work). Alone, or when the store cannot
    /// tell, it keeps them all.
    private func keepUnprocessedRows(of key: String) async -> Bool {
        guard leases.isShared else { return true }
        let covering = state.withLock { $0.covering[key] ?? [] }
        guard !covering.isEmpty, let left = try? await store.unprocessed(covering) else { return true }
        state.withLock { state in
            guard state.covering[key] != nil else { return }
            state.covering[key] = left
            let remaining = Set(left)
            for id in covering where !remaining.contains(id) { state.known.remove(id) }
        }
        return !left.isEmpty
    }

    /// Ends a due calendar's turn without a fetch: the rows it covered were done by another instance (`requeue`
    /// false), or its lease was busy and they wait one more window (`requeue` true).
    private func finishWithoutFetch(_ key: String, requeue: Bool) {
        let now = clock.now()
        state.withLock { state in
            Self.endTurn(of: key, in: &state)
            let rows = state.covering.removeValue(forKey: key) ?? []
            let sweepOnly = state.sweepOnly.remove(key) != nil
            if case .wake(_, let at) = state.coalescer.fetchFinished(key, succeeded: true, now: now) { state.wakes[key] = at }
            if !requeue { for id in rows { state.known.remove(id) } }
            if requeue {
                state.waiting[key, default: []].insert(contentsOf: rows, at: 0)
                if sweepOnly { state.sweepRequested.insert(key) }
                if case .wake(_, let at) = state.coalescer.notify(key, now: now) { state.wakes[key] = at }
            }
        }
    }

    /// Runs the provider's sync of `key` and books its outcome; returns the inbox rows it covered (to mark processed)
    /// when it succeeded.
    private func sync(_ key: String) async -> (succeeded: Bool, covered: [Int64]) {
        let provider = state.withLock { $0.providerOf[key] }.flatMap { providers[$0] }
        var succeeded = false
        var retryAfter: TimeInterval?
        var outcome: SyncOutcome?
        var failureReason: String?
        var credentialsRefused = false
        do {
            guard let provider else { throw SyncFailure(kind: .failed, message: "no provider syncs \(key)") }
            outcome = try await provider.sync(calendarKey: key)
            succeeded = true
        } catch let failure as SyncFailure {
            if case .retry(let after) = failure.kind { retryAfter = after }
            if failure.kind == .needsReconnect {
                // Nothing will change until the user reconnects; the rows are done with.
                succeeded = true
                credentialsRefused = true
            }
            failureReason = failure.message
            logger.warning("calendar sync failed", metadata: ["calendar.key": "\(key)", "error": "\(failure)"])
        } catch {
            failureReason = "\(error)"
            logger.warning("calendar sync failed", metadata: ["calendar.key": "\(key)", "error": "\(error)"])
        }
        let unit = random.withLock { Double.random(in: 0..<1, using: &$0) }
        let now = clock.now()
        let providerName = state.withLock { $0.providerOf[key] }
        let (covered, nextAttempt, missed): ([Int64], Date?, Int) = state.withLock { state in
            Self.endTurn(of: key, in: &state)
            let rows = state.covering.removeValue(forKey: key) ?? []
            if succeeded {
                for id in rows { state.known.remove(id) }
            } else {
                state.waiting[key, default: []].insert(contentsOf: rows, at: 0)
            }
            var next: Date?
            if case .wake(_, let at) = state.coalescer.fetchFinished(key, succeeded: succeeded, now: now, unit: unit, retryAfter: retryAfter) {
                state.wakes[key] = at
                next = at
            }
            var missed = 0
            if state.sweepOnly.remove(key) != nil, let outcome, !outcome.fullSync, outcome.changes > 0, let providerName {
                missed = outcome.changes
                state.missedByPush[providerName, default: 0] += missed
            }
            return (succeeded ? rows : [], next, missed)
        }
        if let activity, let providerName {
            activity.syncFinished(
                calendarKey: key, provider: providerName,
                GatewayActivity.SyncRecord(
                    finishedAt: now, succeeded: succeeded && !credentialsRefused, changes: outcome?.changes ?? 0, fullSync: outcome?.fullSync ?? false,
                    message: failureReason
                ))
        }
        if missed > 0, let providerName {
            Counter(label: "calgate_changes_missed_by_push_total", dimensions: [("provider", providerName.rawValue)]).increment(by: missed)
            logger.info(
                "the reconciliation sweep found changes push did not announce",
                metadata: [
                    "calendar.key": "\(key)", "changes": "\(missed)",
                ])
        }
        if let health {
            let connection = String(Self.connection(of: key))
            if credentialsRefused {
                await health.record(connectionID: connection, .credentialsRefused(reason: failureReason ?? "the provider refused the credentials"))
            } else if succeeded {
                await health.record(connectionID: connection, .succeeded)
            } else {
                await health.record(
                    connectionID: connection,
                    .failed(
                        reason: "sync failing: \(failureReason ?? "unknown error")", nextRetryAt: nextAttempt ?? now, at: now
                    ))
            }
        }
        return (succeeded, covered)
    }

    /// Frees the concurrency slots a calendar's turn held (overall and its connection's).
    private static func endTurn(of key: String, in state: inout State) {
        state.running -= 1
        let connection = connection(of: key)
        state.runningPerConnection[connection, default: 1] -= 1
        if state.runningPerConnection[connection] == 0 { state.runningPerConnection[connection] = nil }
    }

    static func connection(of key: String) -> Substring {
        key.split(separator: "/", maxSplits: 1).first ?? Substring(key)
    }
}
