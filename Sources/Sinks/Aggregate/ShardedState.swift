import Logging
import Aggregation
import Pipeline
import Redis
import Synchronization

/// `state: redis`: the `prometheus` sink's aggregate kept per shard of a
/// group-mode `redis_list` source, in Redis next to each shard's queue
/// (`K:{s}:state`, written through the source with the shard's lease token).
///
/// A shard's state is a state file (`StateFile`) holding the families whose
/// name routes to the shard and the shard stream's position they reach. Every
/// `snapshot_interval` each held shard that took new batches is written (captured
/// under the sink's apply lock, so families and position are never a batch
/// apart) and its position reported durable, which lets the source trim.
///
/// While the source does not hold a shard its batches are skipped (they were
/// emitted before the lease went; the next owner applies them from the
/// processing list), and a sample whose name routes to another shard is dropped
/// as `wrong_shard` — a family is on one shard only, or two owners would both
/// aggregate it.
///
/// **Lock order**, where locks nest: `writing` → the sink's `applying` (through
/// `locker`) → `book` or `written` (each innermost, never both). Nothing takes an outer
/// lock while holding an inner one, so the nesting cannot deadlock.
final class ShardedState: ShardStateHolder {
    /// Under the sink's apply lock (`Applying`): stream → shard, and what was consumed.
    struct Book: Sendable {
        var shardOf: [UInt16: Int] = [:]
        var held: Set<Int> = []
        var shards = 0
        var consumed: [UInt16: UInt64] = [:]
        var skipped: UInt64 = 0
    }
    private let book = Mutex(Book())
    /// Broadcast after each batch `admit` books, for `waitConsumed`.
    private let consumption = ConditionLock()
    /// Per shard: the position last written (snapshot thread and source thread, one at a time).
    private let written = Mutex<[Int: UInt64]>([:])
    private let writing = Mutex(())
    private let store: MetricStore
    private let context: StageContext
    let interval: Duration
    typealias Locker = @Sendable (_ body: ([UInt16: UInt64]) -> Void) -> Void
    /// Runs `body` under the sink's apply lock with the applied positions (`bind`).
    private let locker = Mutex<Locker?>(nil)
    func bind(_ l: @escaping Locker) { locker.withLock { $0 = l } }
    private func underApplyLock(_ body: ([UInt16: UInt64]) -> Void) {
        guard let l = locker.withLock({ $0 }) else { return }   // not bound yet: nothing applied to capture
        withoutActuallyEscaping(body) { b in l(b) }
    }
    private let loop = Mutex<(thread: OSThread, control: SourceControl)?>(nil)
    private let warnings: RateLimitedLog
    let writes = MetaCounter(), failures = MetaCounter(), skippedBatches = MetaCounter()
    let lastBytes = MetaGauge(), loadSeconds = MetaGauge()

    init(store: MetricStore, context: StageContext, interval: Duration) {
        self.store = store
        self.context = context
        self.interval = interval
        warnings = RateLimitedLog(logger: context.logger, interval: .seconds(10))
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

    /// A reload replaced the sink: continue what the previous one held (shards,
    /// positions written), with the aggregate the sink adopts.
    func adopt(_ previous: ShardedState) {
        let b = previous.book.withLock { $0 }
        book.withLock { $0 = b }
        let w = previous.written.withLock { $0 }
        written.withLock { $0 = w }
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

    // MARK: ShardStateHolder (the source's thread)

    func gainShard(_ shard: Int, of shards: Int, stream: UInt16, state: [UInt8]?) -> UInt64 {
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
        underApplyLock { _ in
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
        written.withLock { $0[shard] = position }
        loadSeconds.set(Double(monotonicNanos() - t0) / 1e9)
        return position
    }

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

    func loseShard(_ shard: Int) {
        underApplyLock { _ in
            let shards = book.withLock { b in b.held.remove(shard); return b.shards }
            store.removeFamilies { ShardRouting.shard(ofName: $0, shards: shards) == shard }
        }
    }

    func persistShard(_ shard: Int) -> UInt64? { write(shard, force: true) }

    // MARK: Writing

    /// Captures and writes one shard's state; nil when not held or the write failed.
    @discardableResult
    private func write(_ shard: Int, force: Bool) -> UInt64? {
        writing.withLock { _ -> UInt64? in
            var captured: (families: [Family], windows: [[SummaryWindow.State]], now: UInt64)?
            var position: UInt64 = 0
            var streamID: UInt16?
            underApplyLock { applied in
                let (held, shards, stream) = book.withLock { b in (b.held.contains(shard), b.shards, b.shardOf.first { $0.value == shard }?.key) }
                guard held, let stream else { return }
                streamID = stream
                position = applied[stream] ?? 0
                position = max(position, written.withLock { $0[shard] ?? 0 })
                captured = store.captureFamilies { ShardRouting.shard(ofName: $0, shards: shards) == shard }
            }
            guard let captured, let stream = streamID, let name = context.checkpoints.streamName(stream) else { return nil }
            if !force, let last = written.withLock({ $0[shard] }), position <= last { return last }
            var state = MetricStore.state(of: captured)
            state.positions = [(name, position)]
            let bytes = StateFile.encode(state)
            guard let target = context.checkpoints.shards.store, target.writeState(shard: shard, bytes: bytes) else {
                failures.add()
                return nil
            }
            writes.add()
            lastBytes.set(Double(bytes.count))
            written.withLock { $0[shard] = position }
            context.checkpoints.markDurable([Acknowledgement(stream: stream, first: 1, through: position)], by: context.id)
            return position
        }
    }

    /// Writes every held shard that took batches since its last write.
    func writeAll() {
        for shard in book.withLock({ $0.held.sorted() }) { write(shard, force: false) }
    }

    func startLoop() {
        let control = SourceControl()
        let thread = OSThread.spawn(name: "shard-state") { [self] in
            while !control.isStopping {
                control.sleep(seconds: interval.inSeconds)
                if control.isStopping { break }
                writeAll()
            }
        }
        loop.withLock { $0 = (thread, control) }
    }

    func stop() {
        if let l = loop.withLock({ l in defer { l = nil }; return l }) {
            l.control.requestStop()
            l.thread.join()
        }
    }
}
