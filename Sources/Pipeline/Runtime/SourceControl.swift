import Synchronization

/// Lets a source know it should stop and sleep without missing the stop request.
public final class SourceControl: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let lock = ConditionLock()

    public init() {}

    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    public func requestStop() {
        lock.withLock {
            stopping.store(true, ordering: .releasing)
            lock.broadcast()
        }
    }

    /// Sleeps up to `seconds`, waking early when a stop is requested.
    public func sleep(seconds: Double) {
        let deadline = monotonicNanos() + UInt64(max(0, seconds) * 1e9)
        lock.lock()
        while !isStopping {
            let now = monotonicNanos()
            if now >= deadline { break }
            lock.wait(seconds: Double(deadline - now) / 1e9)
        }
        lock.unlock()
    }
}
