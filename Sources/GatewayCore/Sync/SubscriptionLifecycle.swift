import CalgateMacros
import Foundation

/// One calendar's push-channel or subscription upkeep for one maintenance pass, as a state machine: the calendar's
/// live records, the time and the renewal policy go in; the store and provider calls to make come out one at a time,
/// and each call's result comes back as an event. It does no I/O, so Google channel rotation and Graph renewal share
/// one set of decisions and the syncers only carry the calls out.
///
/// A pass: rows already past their expiry are marked stopped (the provider dropped them); with nothing live left a
/// new one is created and the calendar re-synced (pushes may have been missed); when the newest is due (or the pass
/// is forced) it is replaced (`.replace`) or extended (`.extend`, recreated if the provider says it is gone); then
/// every live record but the kept one is stopped at the provider. Failures are the interpreter's: it stops stepping
/// and records the failure in a `Retry`.
public struct SubscriptionLifecycle: Sendable, Hashable {
    /// How a provider keeps a channel or subscription alive.
    public enum Renewal: Sendable, Hashable {
        /// No renew operation (Google channels): a successor is opened, then the older ones are stopped.
        case replace
        /// Extended in place (Graph subscriptions, by PATCH); recreated when the provider no longer has it.
        case extend
    }

    /// A channel or subscription as the machine sees it.
    @MemberwiseInit
    public struct Subscription: Sendable, Hashable {
        /// The provider's (or calgate's) id.
        public var id: String
        /// Start of its current life (creation or last renewal); nil for rows older than that column.
        public var createdAt: Date?
        /// When the provider drops it.
        public var expiresAt: Date
    }

    /// The next call to make.
    public enum Action: Sendable, Hashable {
        /// Mark the row stopped in the store only (the provider has dropped it already); answer `.done`.
        case markStopped(id: String)
        /// Open a channel or create a subscription and store it; answer `.created`.
        case create
        /// Extend `id` at the provider and store its new expiry; answer `.renewed`, or `.gone` when the provider no
        /// longer has it.
        case renew(id: String)
        /// Stop or delete `id` at the provider, then mark its row stopped; answer `.done`.
        case stopAtProvider(id: String)
        /// Queue a delta sync of the calendar (notifications may have been lost); answer `.done`.
        case resync
        /// Nothing more this pass.
        case finished
    }

    /// The result of the last action.
    public enum Event: Sendable, Hashable {
        /// A `markStopped`, `stopAtProvider` or `resync` was carried out.
        case done
        /// The new channel or subscription, as stored.
        case created(Subscription)
        /// `renew` succeeded with this expiry.
        case renewed(id: String, expiresAt: Date)
        /// `renew` found the subscription gone at the provider (Graph's 404).
        case gone(id: String)
    }

    /// What the pass did so far, in `MaintenanceReport` terms (the calendar re-sync is the `.resync` action).
    public struct Tally: Sendable, Hashable {
        /// Replaced or extended ahead of expiry.
        public var renewed = 0
        /// Created because none was live or the provider had dropped it.
        public var created = 0
        /// 1 when the calendar's records had all expired before a replacement was attempted.
        public var lapsed = 0
        /// Stopped at the provider as superseded or duplicate.
        public var stopped = 0

        /// An empty tally.
        public init() {}

        /// Adds the counts to `report`.
        public func add(to report: inout MaintenanceReport) {
            report.renewed += renewed
            report.created += created
            report.lapsed += lapsed
            report.stopped += stopped
        }
    }

    /// Per calendar, across passes: failures in a row and when maintenance may try again.
    public struct Retry: Sendable, Hashable {
        /// Failed passes in a row.
        public private(set) var attempt = 0
        /// No maintenance before this; nil when the last pass succeeded.
        public private(set) var notBefore: Date?

        /// No failures yet.
        public init() {}

        /// Whether a pass may maintain the calendar at `now` (a forced renewal ignores this).
        public func allowsAttempt(at now: Date) -> Bool {
            notBefore.map { $0 <= now } ?? true
        }

        /// Records a failed pass and returns when the next may run; `unit` is the jitter draw in [0, 1).
        @discardableResult
        public mutating func failed(now: Date, policy: BackoffPolicy, unit: Double, retryAfter: TimeInterval? = nil) -> Date {
            attempt += 1
            let next = now.addingTimeInterval(policy.delay(attempt: attempt, unit: unit, retryAfter: retryAfter))
            notBefore = next
            return next
        }
    }

    /// Why a `create` is made; decides what its success counts as and what follows.
    private enum Purpose: Sendable, Hashable {
        /// Nothing was live.
        case first
        /// A due or forced channel gets its successor.
        case successor
        /// The provider said the subscription is gone.
        case recreate
    }

    /// Work not yet handed out. Counting and the list of channels to stop are settled when a step is reached, so
    /// the tally matches what was really attempted when the interpreter stops on a failure.
    private enum Step: Sendable, Hashable {
        case markStopped(String)
        case create(Purpose, afterLapse: Bool)
        case renew(String)
        case stopAllButKept
        case stop(String)
        case resync
    }

    /// How this provider renews.
    public let renewal: Renewal
    /// The pass time: expiry checks and the new life of an extended subscription are measured from it.
    public let now: Date
    /// Counts so far.
    public private(set) var tally = Tally()
    /// Live records, the kept one first.
    private var live: [Subscription]
    private var steps: [Step]
    /// The action handed out and not yet answered.
    private var outstanding: Action?
    private var creating: Purpose?

    /// Plans a pass over the calendar's records (stopped ones excluded). `force` renews even when not due (the
    /// operator's "renew now").
    public init(renewal: Renewal, policy: RenewalPolicy, subscriptions: [Subscription], now: Date, force: Bool = false) {
        self.renewal = renewal
        self.now = now
        let ordered = subscriptions.sorted(by: Self.keptFirst)
        let expired = ordered.filter { $0.expiresAt <= now }
        live = ordered.filter { $0.expiresAt > now }
        steps = expired.map { .markStopped($0.id) }
        if let newest = live.first {
            if force || policy.isDue(id: newest.id, createdAt: newest.createdAt, expiresAt: newest.expiresAt, now: now) {
                switch renewal {
                case .replace: steps.append(.create(.successor, afterLapse: false))
                case .extend: steps.append(.renew(newest.id))
                }
            } else {
                steps.append(.stopAllButKept)
            }
        } else {
            steps.append(.create(.first, afterLapse: !expired.isEmpty))
        }
    }

    /// The first action of the pass.
    public mutating func start() -> Action {
        precondition(outstanding == nil, "start() is called once, before any event")
        return advance()
    }

    /// Takes the result of the outstanding action and returns the next one.
    public mutating func handle(_ event: Event) -> Action {
        guard let action = outstanding else { preconditionFailure("no action is waiting for \(event)") }
        switch (action, event) {
        case (.markStopped(let id), .done):
            live.removeAll { $0.id == id }
        case (.stopAtProvider(let id), .done):
            live.removeAll { $0.id == id }
            tally.stopped += 1
        case (.resync, .done):
            break
        case (.create, .created(let subscription)):
            switch creating {
            case .successor?:
                // Keep whichever the store would list first, as a fresh read after opening would. Pushes through
                // both channels during the overlap coalesce into one sync, so the older is stopped only now.
                live.append(subscription)
                live.sort(by: Self.keptFirst)
                tally.renewed += 1
                steps.insert(.stopAllButKept, at: 0)
            case .first?, .recreate?:
                live.insert(subscription, at: 0)
                tally.created += 1
                steps.insert(contentsOf: [.resync, .stopAllButKept], at: 0)
            case nil:
                preconditionFailure("a create without a purpose")
            }
            creating = nil
        case (.renew(let id), .renewed(let renewedID, let expiresAt)) where renewedID == id:
            if let index = live.firstIndex(where: { $0.id == id }) {
                live[index].expiresAt = expiresAt
                live[index].createdAt = now
            }
            tally.renewed += 1
            steps.insert(.stopAllButKept, at: 0)
        case (.renew(let id), .gone(let goneID)) where goneID == id:
            // Its row goes first, so nothing routes to it while the replacement is created.
            live.removeAll { $0.id == id }
            steps.insert(contentsOf: [.markStopped(id), .create(.recreate, afterLapse: false)], at: 0)
        default:
            preconditionFailure("\(event) does not answer \(action)")
        }
        return advance()
    }

    /// Hands out the next step, expanding and counting as it goes.
    private mutating func advance() -> Action {
        while !steps.isEmpty {
            let action: Action
            switch steps.removeFirst() {
            case .markStopped(let id):
                action = .markStopped(id: id)
            case .create(let purpose, let afterLapse):
                // A lapse counts once a replacement is attempted, whether or not it then succeeds.
                if afterLapse { tally.lapsed += 1 }
                creating = purpose
                action = .create
            case .renew(let id):
                action = .renew(id: id)
            case .stopAllButKept:
                steps.insert(contentsOf: live.dropFirst().map { .stop($0.id) }, at: 0)
                continue
            case .stop(let id):
                action = .stopAtProvider(id: id)
            case .resync:
                action = .resync
            }
            outstanding = action
            return action
        }
        outstanding = nil
        return .finished
    }

    /// The store's order for live records: latest expiry first, then by id.
    private static func keptFirst(_ a: Subscription, _ b: Subscription) -> Bool {
        a.expiresAt != b.expiresAt ? a.expiresAt > b.expiresAt : Array(a.id.utf8).lexicographicallyPrecedes(Array(b.id.utf8))
    }
}
