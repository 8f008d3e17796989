/// Where a stage's batches go: the input buffers of every stage that lists it in
/// `inputs` (fan-out hands each the same copy-on-write batch). A batch a full
/// `drop_newest` buffer discards is counted here, sample by sample, as
/// `reason="buffer_full"` and logged (rate-limited).
public final class StageOutput: Sendable {
    let targets: [(id: String, buffer: BoundedBuffer<Batch>)]
    let stats: StageStats
    let telemetry: Telemetry
    let dropLog: RateLimitedLog
    let discarded: @Sendable (Acknowledgement, String) -> Void
    /// A source's output: what it handed on (a sink a reload adds starts after it).
    let emitted: Checkpoints?
    /// The pipeline's bytes in flight; a source's output waits for room in it.
    let budget: MemoryBudget
    let charges: Bool

    init(targets: [(id: String, buffer: BoundedBuffer<Batch>)], stats: StageStats, telemetry: Telemetry, dropLog: RateLimitedLog,
         discarded: @escaping @Sendable (Acknowledgement, String) -> Void = { _, _ in }, emitted: Checkpoints? = nil,
         budget: MemoryBudget = MemoryBudget(limit: .max), charges: Bool = false) {
        self.budget = budget
        self.charges = charges
        self.targets = targets
        self.emitted = emitted
        self.stats = stats
        self.telemetry = telemetry
        self.dropLog = dropLog
        self.discarded = discarded
    }

    /// Hands `batch` on, waiting for room unless a target drops when full.
    /// A source's batch first takes its bytes of the memory budget (waiting for room);
    /// each further copy of a fan-out is charged too.
    public func emit(_ batch: consuming Batch) {
        var batch = batch
        stats.itemsOut.add(UInt64(batch.kind == .samples ? batch.liveSampleCount : batch.itemCount))
        guard let last = targets.last else { return }
        if charges {
            batch.charged = batch.memoryBytes
            budget.acquire(batch.charged)
        }
        let ack = emitted != nil ? batch.acknowledgement : nil
        for t in targets.dropLast() {
            budget.adjust(from: 0, to: batch.charged)
            if let rejected = t.buffer.push(copy batch) { countRejected(rejected, by: t.id) }
        }
        // A linear pipeline hands its buffers on without a copy.
        if let rejected = last.buffer.push(consume batch) { countRejected(rejected, by: last.id) }
        if let ack { emitted?.handedOn(ack) }   // after the push: a batch waiting on a held buffer goes to the new wiring
    }

    private func countRejected(_ batch: Batch, by target: String) {
        budget.release(batch.charged)
        if let ack = batch.acknowledgement { discarded(ack, target) }
        var tally = DropTally()
        for (origin, n) in batch.liveItemsByOrigin {
            tally.add(origin: origin, reason: .bufferFull, count: n, note: "the input buffer of `\(target)` is full (when_full: drop_newest)")
        }
        guard !tally.isEmpty else { return }
        telemetry.record(drops: tally)
        dropLog.warning(tally.summary)
    }

    func finish() { for t in targets { t.buffer.producerFinished() } }
}

/// Counters the runtime keeps per stage (exported as `prom_stream_gateway_stage_*`).
final class StageStats: Sendable {
    let itemsIn = MetaCounter()
    let itemsOut = MetaCounter()
}
