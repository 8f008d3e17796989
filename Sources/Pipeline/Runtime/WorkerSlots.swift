import Synchronization

/// Per-worker state of a transform or sink, without a lock on the hot path.
///
/// The runtime calls `Transform.process(_:worker:)` and `Sink.consume(_:worker:)`
/// with `worker` in `0..<workers` and never runs two calls with the same `worker`
/// at once. A stage that keeps per-worker state relies on that contract; this type
/// checks it (a second concurrent `with` on one slot, or a slot out of range, is a
/// `preconditionFailure`) at the cost of one uncontended lock per batch.
public final class WorkerSlots<State>: @unchecked Sendable {
    private let states: UnsafeMutablePointer<State>
    public let count: Int
    private let busy: Mutex<[Bool]>   // protects nothing but the flags themselves

    public init(count: Int, _ make: (Int) -> State) {
        precondition(count > 0)
        self.count = count
        states = .allocate(capacity: count)
        for i in 0..<count { (states + i).initialize(to: make(i)) }
        busy = Mutex(Array(repeating: false, count: count))
    }

    deinit {
        states.deinitialize(count: count)
        states.deallocate()
    }

    /// Lends worker `worker`'s state to `body`, which must not let it escape.
    @inline(__always)
    public func with<R>(_ worker: Int, _ body: (inout State) -> R) -> R {
        precondition(worker >= 0 && worker < count, "worker \(worker) out of 0..<\(count)")
        busy.withLock { b in
            precondition(!b[worker], "worker slot \(worker) used by two threads at once")
            b[worker] = true
        }
        defer { busy.withLock { $0[worker] = false } }
        return body(&states[worker])
    }
}
