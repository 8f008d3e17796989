import Synchronization

/// Whether each source can currently reach what it reads from; `/ready` renders it.
public final class HealthBoard: Sendable {
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var ready: Bool
        public var detail: String
    }
    private let entries = Mutex<[String: Entry]>([:])   // protected by itself

    public init() {}

    public func set(_ id: String, ready: Bool, detail: String) {
        entries.withLock { $0[id] = Entry(id: id, ready: ready, detail: detail) }
    }

    public var snapshot: [Entry] { entries.withLock { $0.values.sorted { $0.id < $1.id } } }

    public var allReady: Bool { entries.withLock { $0.values.allSatisfy(\.ready) } }
}

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
