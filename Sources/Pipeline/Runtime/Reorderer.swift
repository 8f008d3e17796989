/// Puts the results of a stage's parallel workers back into input order.
///
/// A worker that dequeued ticket `t` hands its result to `complete(t, …)` and goes
/// back to work at once; whichever worker completes the next ticket in line emits
/// it and every consecutive result already waiting, one at a time, in ticket
/// order. So a slow batch delays the *emission* of later ones, never the workers
/// (unlike waiting for one's turn, which left a core idle). At most `capacity`
/// results wait; a worker ahead of that blocks until the line moves on.
/// Every ticket must be completed, with nil when the batch produced nothing.
package final class Reorderer<Item>: @unchecked Sendable {
    private let lock = ConditionLock()
    // Protected by `lock`:
    private var next: UInt64 = 0
    private var waiting: [UInt64: Item?] = [:]
    private var emitting = false
    private let capacity: Int

    /// `first`: the ticket the line starts at (a buffer that already handed out some).
    public init(capacity: Int, first: UInt64 = 0) { self.capacity = max(1, capacity); next = first }

    /// Records the result of ticket `ticket`; if it is next in line, emits it and
    /// the results queued behind it by calling `emit` (outside the lock).
    public func complete(_ ticket: UInt64, _ item: consuming Item?, emit: (consuming Item) -> Void) {
        lock.lock()
        while waiting.count >= capacity && ticket != next { lock.wait() }
        waiting[ticket] = consume item
        guard !emitting else { lock.unlock(); return }   // the emitter will pick it up
        emitting = true
        while var ready = waiting.removeValue(forKey: next) {
            next += 1
            lock.broadcast()   // room for workers waiting on `capacity`
            lock.unlock()
            // Handed on, not copied: a copy kept here until `emit` returns would make the
            // next stage's first write copy the whole batch (copy-on-write) whenever it
            // raced ahead of this release — and it did, for most large batches.
            if let item = ready.take() { emit(consume item) }   // may block on back-pressure; others keep working
            lock.lock()
        }
        emitting = false
        lock.unlock()
    }
}
