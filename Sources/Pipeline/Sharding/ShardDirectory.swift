import Synchronization

/// The sink that keeps the state of the shards a group-mode `redis_list` source
/// owns (the `prometheus` sink with `state: redis`). The source calls it on its own
/// thread; the holder serializes against its apply path.
package protocol ShardStateHolder: AnyObject, Sendable {
    /// Shard `shard` of `shards`, whose batches come on `stream`, is this gateway's
    /// from now on: load `state` (the shard's snapshot as this holder wrote it; nil:
    /// none yet) and serve its families. Returns the stream position the state
    /// holds (0: none), where the source's redelivery starts.
    func gainShard(_ shard: Int, of shards: Int, stream: UInt16, state: [UInt8]?) -> UInt64
    /// The highest element of `stream` whose batch the holder has consumed (applied
    /// or, for a shard it does not hold, skipped).
    func consumed(stream: UInt16) -> UInt64
    /// Waits until the holder has consumed `stream` through `through` (woken by each
    /// batch it consumes, not polled); false when `seconds` passed first.
    func waitConsumed(stream: UInt16, through: UInt64, seconds: Double) -> Bool
    /// Writes the shard's state now; returns the position it holds, or nil when
    /// the write failed (the lease is gone, Redis is unreachable).
    func persistShard(_ shard: Int) -> UInt64?
    /// Stop serving the shard's families and skip its batches until gained again.
    func loseShard(_ shard: Int)
}

/// Writes a shard's state next to its queue, fenced by the lease (the source).
package protocol ShardStateStore: AnyObject, Sendable {
    /// False when this gateway no longer holds the shard's lease or Redis failed.
    func writeState(shard: Int, bytes: [UInt8]) -> Bool
}

/// Where the two meet: the sink registers as the holder when it starts (sinks
/// start before sources), the source as the store.
package final class ShardDirectory: Sendable {
    private let parts = Mutex<(holder: (any ShardStateHolder)?, store: (any ShardStateStore)?)>((nil, nil))

    public init() {}

    public var holder: (any ShardStateHolder)? { parts.withLock { $0.holder } }
    public var store: (any ShardStateStore)? { parts.withLock { $0.store } }

    public func setHolder(_ h: (any ShardStateHolder)?) { parts.withLock { $0.holder = h } }
    public func setStore(_ s: (any ShardStateStore)?) { parts.withLock { $0.store = s } }

    /// Clears the holder if it is `h` (a stopping sink; a reload's new one may have registered).
    public func removeHolder(_ h: any ShardStateHolder) {
        parts.withLock { if $0.holder === h { $0.holder = nil } }
    }
    public func removeStore(_ s: any ShardStateStore) {
        parts.withLock { if $0.store === s { $0.store = nil } }
    }
}
