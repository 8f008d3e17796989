import Synchronization

/// Whether samples can currently flow from each source (it reaches what it reads
/// from, and reading succeeds), with a detail for humans; `/ready` renders it.
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

    /// A stage left the pipeline (a reload): its entry and its sub-entries (`"<id> …"`) go.
    public func remove(_ id: String) {
        entries.withLock { e in for k in e.keys where k == id || k.hasPrefix(id + " ") { e[k] = nil } }
    }

    public var snapshot: [Entry] { entries.withLock { $0.values.sorted { $0.id < $1.id } } }

    public var allReady: Bool { entries.withLock { $0.values.allSatisfy(\.ready) } }
}
