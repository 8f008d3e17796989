import Synchronization

/// What a full buffer does with a new batch.
public enum WhenFull: String, Sendable, CaseIterable {
    /// Wait for room: back-pressure reaches the source and the backlog stays upstream.
    case block
    /// Discard the new batch; its samples are counted as dropped
    /// (`reason="buffer_full"`) and logged.
    case dropNewest = "drop_newest"
}

/// A bounded FIFO ring of batches between stages: many producers, many consumers.
///
/// Each `pop` hands out a ticket — the dequeue position — which lets a multi-worker
/// stage re-establish input order at its output (see `Reorderer`). The buffer is
/// closed once every producer has called `producerFinished()`; consumers then drain
/// what is left and get `nil`. Nothing queued is ever discarded by closing.
package final class BoundedBuffer<Element: Sendable>: @unchecked Sendable {
    public let capacity: Int
    public let whenFull: WhenFull

    // All below protected by `lock`.
    private let lock = ConditionLock()
    private var slots: [Element?]
    private var head = 0        // next slot to pop
    private var count = 0
    private var nextTicket: UInt64 = 0
    private var openProducers: Int
    private var waitingConsumers = 0
    private var waitingProducers = 0
    /// A reload changes the consumers: producers wait, consumers drain and see nil.
    private var held = false

    private let dropped = Atomic<UInt64>(0)

    public init(capacity: Int, whenFull: WhenFull = .block, producers: Int = 1) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.whenFull = whenFull
        self.openProducers = producers
        self.slots = Array(repeating: nil, count: capacity)
    }

    /// Batches discarded because the buffer was full (only with `drop_newest`).
    public var droppedCount: UInt64 { dropped.load(ordering: .relaxed) }

    /// Items currently queued.
    public var fill: Int { lock.withLock { count } }

    /// Producers blocked in `push`, waiting for room.
    public var blockedProducers: Int { lock.withLock { waitingProducers } }

    /// Appends `element`, waiting for room under `block`. Returns nil when it was
    /// queued, or the element itself when it was discarded (`drop_newest` and
    /// full), so the caller can count what it held.
    @discardableResult
    public func push(_ element: consuming Element) -> Element? {
        lock.lock()
        while count == capacity || held {
            if whenFull == .dropNewest && !held {
                lock.unlock()
                dropped.add(1, ordering: .relaxed)
                return element
            }
            waitingProducers += 1
            lock.wait()
            waitingProducers -= 1
        }
        slots[(head + count) % capacity] = consume element   // moved: the consumer becomes the only owner
        count += 1
        if waitingConsumers > 0 { lock.broadcast() }
        lock.unlock()
        return nil
    }

    /// Takes the oldest element and its ticket (0, 1, 2, … in dequeue order), waiting
    /// while empty. Returns nil once the buffer is closed and drained.
    public func pop() -> (element: Element, ticket: UInt64)? {
        lock.lock()
        defer { lock.unlock() }
        while count == 0 {
            if openProducers == 0 || held { return nil }
            waitingConsumers += 1
            lock.wait()
            waitingConsumers -= 1
        }
        let element = slots[head].take()!
        head = (head + 1) % capacity
        count -= 1
        let ticket = nextTicket
        nextTicket += 1
        if waitingProducers > 0 { lock.broadcast() }
        return (element, ticket)
    }

    /// A reload replaces this buffer's consumers: from now on producers wait, and
    /// consumers take what is queued and then see nil, as if it were closed.
    public func hold() {
        lock.withLock {
            held = true
            lock.broadcast()
        }
    }

    /// The new consumers may come: producers go on. Returns the ticket the next
    /// `pop` hands out (no consumer runs while held and empty).
    public func release() -> UInt64 {
        lock.withLock {
            held = false
            lock.broadcast()
            return nextTicket
        }
    }

    /// More producers join (a reload wires new stages to a running one); call it
    /// while at least one producer is still open.
    public func addProducers(_ n: Int) {
        lock.withLock {
            precondition(openProducers > 0, "producers added to a closed buffer")
            openProducers += n
        }
    }

    /// One producer is done. After the last one, consumers drain and then see nil.
    public func producerFinished() {
        lock.withLock {
            openProducers -= 1
            lock.broadcast()
        }
    }
}
