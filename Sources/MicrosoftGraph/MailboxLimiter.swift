import Synchronization

/// Caps concurrent Graph requests per mailbox (Outlook allows 4 per app and mailbox, PROVIDERS.md §4.5), so a
/// connection with many calendars, a renewal and a lifecycle recovery at once never earns a `MailboxConcurrency` 429.
/// Waiters are served first come, first served.
public final class MailboxLimiter: Sendable {
    private struct Slot {
        var active = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Most requests at once per mailbox.
    public let limit: Int
    private let slots = Mutex<[String: Slot]>([:])
    private let peak = Mutex(0)

    /// Creates a limiter.
    public init(limit: Int) {
        precondition(limit >= 1, "a mailbox needs at least one request slot")
        self.limit = limit
    }

    /// Highest number of requests one mailbox had at once (tests and metrics read it).
    public var highWaterMark: Int { peak.withLock { $0 } }

    /// Waits for a slot of `mailbox`.
    public func acquire(_ mailbox: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = slots.withLock { slots -> Bool in
                var slot = slots[mailbox] ?? Slot()
                defer { slots[mailbox] = slot }
                guard slot.active < limit else {
                    slot.waiters.append(continuation)
                    return false
                }
                slot.active += 1
                let active = slot.active
                peak.withLock { $0 = max($0, active) }
                return true
            }
            if admitted { continuation.resume() }
        }
    }

    /// Returns a slot; the oldest waiter (if any) takes it over.
    public func release(_ mailbox: String) {
        let next = slots.withLock { slots -> CheckedContinuation<Void, Never>? in
            guard var slot = slots[mailbox] else { return nil }
            if slot.waiters.isEmpty {
                slot.active -= 1
                slots[mailbox] = slot.active == 0 ? nil : slot
                return nil
            }
            // The slot passes straight to the waiter: `active` stays the same.
            let waiter = slot.waiters.removeFirst()
            slots[mailbox] = slot
            return waiter
        }
        next?.resume()
    }
}
