import NIOCore

/// One scheduled task per connection for a deadline that keeps moving, kept lazily: arming a deadline later than
/// the armed one keeps the armed task (the owner's state machine re-arms when it fires early), so a keep-alive
/// request schedules no task of its own; only an earlier deadline replaces it. Used on the event loop only.
struct LazyDeadlineTimer {
    private var scheduled: Scheduled<Void>?
    private var firesAt: NIODeadline?

    /// Makes sure a task fires no later than `deadline`; `fire` runs on `eventLoop` and must call `fired()` first.
    mutating func arm(_ deadline: NIODeadline, on eventLoop: any EventLoop, _ fire: @escaping () -> Void) {
        if scheduled != nil, let firesAt, firesAt <= deadline { return }
        scheduled?.cancel()
        firesAt = deadline
        scheduled = eventLoop.assumeIsolated().scheduleTask(deadline: deadline, fire)
    }

    /// Forgets the task that just fired.
    mutating func fired() {
        scheduled = nil
        firesAt = nil
    }

    /// Cancels the armed task, if any.
    mutating func cancel() {
        scheduled?.cancel()
        fired()
    }
}
