import Logging
import Aggregation
import Pipeline
import Redis
import Synchronization

/// `state: redis`: the `prometheus` sink's aggregate kept per shard of a
/// group-mode `redis_list` source, in Redis next to each shard's queue
/// (`K:{s}:state`). The runtime's `ShardHandover` drives it: it loads a shard the
/// source gained, captures one for the handover to write through the lease, and
/// drops one the source lost.
///
/// A shard's state is a state file (`StateFile`) holding the families whose
/// name routes to the shard and the shard stream's position they reach, captured
/// under the sink's apply lock, so families and position are never a batch apart.
/// Once written, the position is reported durable, which lets the source trim.
///
/// While the shard is not served its batches are skipped (they were emitted before
/// the lease went; the next owner applies them from the processing list), and a
/// sample whose name routes to another shard is dropped as `wrong_shard` — a family
/// is on one shard only, or two owners would both aggregate it.
///
/// **Lock order**, where locks nest: the handover's `writing` → the apply lock →
/// `book` (innermost).
final class ShardedState: ShardStateHolder {
    /// Under the sink's apply lock: stream → shard, and what was consumed.
    struct Book: Sendable {
        var shardOf: [UInt16: Int] = [:]
        var held: Set<Int> = []
        var shards = 0
        var consumed: [UInt16: UInt64] = [:]
        /// Held shards whose series were removed (admin API, expiry) since their last write:
        /// written at the next round though no batch arrived, or the removal is undone by a restart.
        var edited: Set<Int> = []
    }
    private let book = Mutex(Book())
    /// Broadcast after each batch `admit` books, for `waitConsumed`.
    private let consumption = ConditionLock()
    private let store: MetricStore
    private let applying: ApplyLock
    private let context: StageContext
    let snapshotInterval: Duration
    let writes = MetaCounter(), failures = MetaCounter(), skippedBatches = MetaCounter()
    let lastBytes = MetaGauge(), loadSeconds = MetaGauge()

    init(store: MetricStore, applying: ApplyLock, context: StageContext, interval: Duration) {
        self.store = store
        self.applying = applying
        self.context = context
        self.snapshotInterval = interval
        lastBytes.set(.nan)
        loadSeconds.set(.nan)
        let (writes, failures, skippedBatches, lastBytes, loadSeconds) = (writes, failures, skippedBatches, lastBytes, loadSeconds)
        context.addCollector {
            let p = Telemetry.prefix
            return [
                MetaFamily(name: p + "shard_state_writes_total", help: "Shard states written to Redis (state: redis), by outcome.", type: .counter,
                           samples: [MetaSample(labels: [("outcome", "ok")], value: Double(writes.value)),
                                     MetaSample(labels: [("outcome", "failed")], value: Double(failures.value))]),
                MetaFamily(name: p + "shard_state_bytes", help: "Size of the last shard state written.", type: .gauge,
                        samples: [MetaSample(labels: [], value: lastBytes.value)]),
                MetaFamily(name: p + "shard_state_load_seconds", help: "How long loading the last gained shard's state took.", type: .gauge,
                        samples: [MetaSample(labels: [], value: loadSeconds.value)]),
                MetaFamily(name: p + "shard_skipped_batches_total",
                        help: "Batches of a shard this gateway no longer holds, skipped: the shard's next owner applies them.", type: .counter,
                           samples: [MetaSample(labels: [], value: Double(skippedBatches.value))]),
            ]
        }
    }

    /// A reload replaced the sink: continue serving what the previous one served,
    /// with the aggregate the sink adopts (the handover keeps the positions written).
    func adopt(_ previous: ShardedState) {
        let b = previous.book.withLock { $0 }
        book.withLock { $0 = b }
    }

    // MARK: The apply path (called under the sink's apply lock)

    /// Whether to apply `batch`: its shard is held. Drops samples of other shards.
    func admit(_ batch: inout Batch) -> Bool {
        guard let ack = batch.acknowledgement else { return true }
        let (shard, held, shards) = book.withLock { b -> (Int?, Bool, Int) in
            b.consumed[ack.stream] = max(b.consumed[ack.stream] ?? 0, ack.through)
            let s = b.shardOf[ack.stream]
            return (s, s.map { b.held.contains($0) } ?? false, b.shards)
        }
        consumption.withLock { consumption.broadcast() }   // a release waiting for this batch (`waitConsumed`)
        guard let shard else { return true }
        guard held else { skippedBatches.add(); return false }
        guard batch.kind == .samples else { return true }
        batch.samples.bytes.withUnsafeBytes { arena in
            let s = batch.samples
            for i in s.records.indices where !s.records[i].isDropped {
                let name = slice(arena, s.records[i].name)
                if ShardRouting.shard(ofName: name, shards: shards) != shard { batch.drop(sample: i, reason: .wrongShard) }
            }
        }
        return true
    }

    // MARK: ShardStateHolder (the handover's calls)

    func load(_ shard: Int, of shards: Int, stream: UInt16, state: [UInt8]?) -> UInt64 {
        let t0 = monotonicNanos()
        var position: UInt64 = 0
        var decoded: StoreState?
        if let state {
            do { decoded = try StateFile.decode(state) } catch {
                context.logger.error("the shard's state in Redis is not usable; the shard starts empty", metadata: ["shard": "\(shard)",
                        "reason": "\(error)"])
            }
        }
        let name = context.checkpoints.streamName(stream) ?? ""
        if var d = decoded {
            position = d.positions.first { $0.stream == name }?.through ?? 0
            d.families = d.families.filter { ShardRouting.shard(ofName: $0.name, shards: shards) == shard }
            decoded = d
        }
        applying.withLock { _ in
            if let d = decoded {
                store.removeFamilies { ShardRouting.shard(ofName: $0, shards: shards) == shard }
                store.restore(d)
            }
            book.withLock { b in
                b.shards = shards
                b.shardOf[stream] = shard
                b.held.insert(shard)
                b.consumed[stream] = max(b.consumed[stream] ?? 0, position)
            }
        }
        loadSeconds.set(Double(monotonicNanos() - t0) / 1e9)
        return position
    }

    /// The highest element of `stream` whose batch was consumed (applied or skipped).
    func consumed(stream: UInt16) -> UInt64 { book.withLock { $0.consumed[stream] ?? 0 } }

    func waitConsumed(stream: UInt16, through: UInt64, seconds: Double) -> Bool {
        let deadline = monotonicNanos() + UInt64(max(0, seconds) * 1e9)
        consumption.lock()
        defer { consumption.unlock() }
        // `admit` updates the book, then broadcasts under this lock: checked under it, no wake-up is missed.
        while consumed(stream: stream) < through {
            let now = monotonicNanos()
            guard now < deadline else { return false }
            _ = consumption.wait(seconds: Double(deadline - now) / 1e9)
        }
        return true
    }

    func drop(_ shard: Int) {
        applying.withLock { _ in
            let shards = book.withLock { b in b.held.remove(shard); return b.shards }
            store.removeFamilies { ShardRouting.shard(ofName: $0, shards: shards) == shard }
        }
    }

    /// Series were removed outside a batch: every held shard is written at the next round.
    func removedSeries() {
        book.withLock { $0.edited.formUnion($0.held) }
    }

    func capture(_ shard: Int, stream: UInt16, written: UInt64, force: Bool) -> ShardCapture {
        guard let name = context.checkpoints.streamName(stream) else { return .notServed }
        let outcome = applying.withLock { a -> Taken in
            let (held, shards, edited) = book.withLock { b in
                (b.held.contains(shard) && b.shardOf[stream] == shard, b.shards, b.edited.contains(shard))
            }
            guard held else { return .notServed }
            let through = max(a.applied.positions[stream] ?? 0, written)
            if !force, !edited, through <= written { return .unchanged }
            if edited { book.withLock { _ = $0.edited.remove(shard) } }
            let c = store.captureFamilies { ShardRouting.shard(ofName: $0, shards: shards) == shard }
            return .families(c.families, c.windows, now: c.now, through: through)
        }
        switch outcome {
        case .notServed: return .notServed
        case .unchanged: return .unchanged
        case .families(let families, let windows, let now, let through):
            var state = MetricStore.state(of: (families, windows, now))
            state.positions = [(name, through)]
            return .state(bytes: StateFile.encode(state), through: through)
        }
    }

    /// What `capture` took under the apply lock.
    private enum Taken {
        case notServed, unchanged
        case families([Family], [[SummaryWindow.State]], now: UInt64, through: UInt64)
    }

    func recordWrite(stream: UInt16, bytes: Int, through: UInt64?) {
        guard let through else {
            failures.add()
            book.withLock { b in if let shard = b.shardOf[stream], b.held.contains(shard) { b.edited.insert(shard) } }   // try it again
            return
        }
        writes.add()
        lastBytes.set(Double(bytes))
        context.checkpoints.markDurable([Acknowledgement(stream: stream, first: 1, through: through)], by: context.id)
    }
}
