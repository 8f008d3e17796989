import Synchronization

/// The running stage instances that offer something to the rest of the process, by
/// owner: how the `prometheus` sink's admin API reaches every sink holding series
/// (a `remote_write` sink's aggregate too). A stage adds itself when it starts and
/// removes itself when it shuts down, so a reload's replaced instance is gone.
public final class Peers: Sendable {
    private let entries = Mutex<[UInt64: (id: String, peer: any AnyObject & Sendable)]>([:])

    public init() {}

    public func add(owner: UInt64, id: String, _ peer: any AnyObject & Sendable) {
        entries.withLock { $0[owner] = (id, peer) }
    }

    public func remove(owner: UInt64) {
        entries.withLock { $0[owner] = nil }
    }

    /// Every peer, ordered by stage id.
    public var all: [(id: String, peer: any AnyObject & Sendable)] {
        entries.withLock { Array($0.values) }.sorted { $0.id < $1.id }
    }
}
