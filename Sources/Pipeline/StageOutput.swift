/// Where a stage's batches go: the input buffers of every stage that lists it in
/// `inputs` (fan-out hands each the same copy-on-write batch).
public final class StageOutput: Sendable {
    let targets: [BoundedBuffer<Batch>]
    let stats: StageStats

    init(targets: [BoundedBuffer<Batch>], stats: StageStats) {
        self.targets = targets
        self.stats = stats
    }

    /// Hands `batch` on, waiting for room unless a target drops when full.
    public func emit(_ batch: consuming Batch) {
        stats.itemsOut.add(UInt64(batch.kind == .samples ? batch.liveSampleCount : batch.itemCount))
        guard let last = targets.last else { return }
        for t in targets.dropLast() { t.push(copy batch) }
        last.push(consume batch)   // a linear pipeline hands its buffers on without a copy
    }

    func finish() { for t in targets { t.producerFinished() } }
}

/// Counters the runtime keeps per stage (exported as `prom_stream_gateway_stage_*`).
final class StageStats: Sendable {
    let itemsIn = MetaCounter()
    let itemsOut = MetaCounter()
}
