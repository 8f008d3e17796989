/// The bytes of batches in flight between a pipeline's sources and its sinks,
/// bounded pipeline-wide (`memory_budget`, default 32 MiB).
///
/// A source's output takes a batch's bytes before handing it on (`acquire`,
/// waiting while the budget is spent); a transform trues the charge up or down to
/// what the batch holds after it (`adjust`, never waiting: only sources wait, so
/// what is in flight always drains); a sink gives it back once consumed
/// (`release`), and so does a buffer that discards a batch. A batch larger than the
/// whole budget still passes when nothing else is in flight, so the bound is the
/// budget plus one batch, whatever the elements' size. Sources also size their
/// reads from it (`readShare`), so bytes waiting in a socket or a reply count too.
package final class MemoryBudget: @unchecked Sendable {
    private let lock = ConditionLock()
    private var used = 0
    private var waiting = 0
    private var _limit: Int

    public init(limit: Int) { _limit = max(1, limit) }

    /// The budget in bytes (a reload may change it).
    public var limit: Int {
        get { lock.withLock { _limit } }
        set { lock.withLock { _limit = max(1, newValue); lock.broadcast() } }
    }

    /// Bytes charged now.
    public var inFlight: Int { lock.withLock { used } }

    /// What one read of a source (replies of pops in flight, the batch it fills)
    /// may hold: an eighth of the budget, so several stages' batches fit beside it.
    public var readShare: Int { max(64 << 10, limit / 8) }

    /// Charges `bytes`, waiting while they do not fit (and something else is in flight).
    public func acquire(_ bytes: Int) {
        guard bytes > 0 else { return }
        lock.lock()
        while used > 0 && used + bytes > _limit {
            waiting += 1
            lock.wait()
            waiting -= 1
        }
        used += bytes
        lock.unlock()
    }

    /// A batch changed size from `old` to `new` bytes: charged without waiting.
    public func adjust(from old: Int, to new: Int) {
        guard old != new else { return }
        lock.withLock {
            used = max(0, used + new - old)
            if new < old && waiting > 0 { lock.broadcast() }
        }
    }

    public func release(_ bytes: Int) { adjust(from: bytes, to: 0) }
}

extension Batch {
    /// The heap bytes the batch holds (capacities, not counts: what it costs).
    public var memoryBytes: Int {
        payloads.bytes.capacity + payloads.ends.capacity * MemoryLayout<Int>.stride + payloads.origins.capacity * 2
            + samples.bytes.capacity + samples.records.capacity * MemoryLayout<SampleRecord>.stride
            + samples.labels.capacity * MemoryLayout<LabelRef>.stride + samples.numbers.capacity * 8
            + samples.exemplars.capacity * MemoryLayout<ExemplarRef>.stride
    }
}
