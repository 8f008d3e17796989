import Synchronization

/// Emptied batch buffers, handed back for reuse: payloads by the stage that decoded
/// them for a source's next batch, samples by the runtime after the sink for the
/// decoder's next batch. A batch of large elements is megabytes: a fresh buffer each
/// time is mapped, page-faulted and zeroed by the kernel (measured: 148 000 minor
/// faults per million samples in arrays of 50), a reused one is already resident.
/// Bounded by the memory budget: each kind's buffers waiting here hold at most four of
/// the source's read shares in all (`MemoryBudget.readShare`, an eighth of the budget),
/// so both kinds together the budget, idle memory no drain of elements larger than
/// that ever keeps; each buffer at most two shares (a source reserves up to one share
/// for a batch, which the allocator rounds up: a bound of one share turned away every
/// buffer of large elements, each then mapped and faulted in anew). At most `kept` of
/// each kind: a pipeline has about that many batches in flight (two were too few:
/// small batches were mapped anew too — 2026-12-07 in docs/performance.md).
package enum BatchBuffers {
    static let kept = 8
    /// What each kind's waiting buffers may hold in all, in read shares.
    static let sharesKept = 4
    private static let pool = Mutex(Pool<PayloadBatch>())

    /// Waiting buffers of one kind, with the bytes each holds (at most `kept`: summed when one is offered).
    struct Pool<Buffer> {
        private var buffers: [(buffer: Buffer, held: Int)] = []

        mutating func take() -> Buffer? { buffers.popLast()?.buffer }

        /// Keeps `buffer` (holding `n` bytes) unless that passes a bound.
        mutating func keep(_ buffer: Buffer, held n: Int, share: Int) {
            guard n <= 2 * share, buffers.count < kept, buffers.reduce(n, { $0 + $1.held }) <= sharesKept * share else { return }
            buffers.append((buffer, n))
        }
    }

    /// An empty batch with room for `payloads` elements of `bytes` in all (a recycled one when there is one).
    package static func take(payloads: Int, bytes: Int) -> PayloadBatch {
        var b = pool.withLock { $0.take() } ?? PayloadBatch()
        b.reserve(payloads: payloads, bytes: bytes)
        return b
    }

    /// Keeps `batch`'s storage for a later `take`, within the bounds above (a shared one
    /// is not reused: emptying it allocates anew).
    package static func recycle(_ batch: consuming PayloadBatch, share: Int) {
        var b = batch
        b.removeAll(keepingCapacity: true)
        pool.withLock { $0.keep(b, held: b.bytes.capacity + b.ends.capacity * 10, share: share) }
    }

    /// The reservation for a batch of `elements` elements of `average` bytes so far,
    /// capped by the source's share of the memory budget.
    package static func bytes(elements: Int, average: Double, share: Int) -> Int {
        min(share, Int(Double(elements) * max(160, average * 1.25)))
    }
}

extension BatchBuffers {
    private static let samplePool = Mutex(Pool<SampleBatch>())

    /// An empty sample batch with room for `samples` samples and `bytes` of arena.
    package static func takeSamples(_ samples: Int, bytes: Int) -> SampleBatch {
        var b = samplePool.withLock { $0.take() } ?? SampleBatch()
        b.records.reserveWithHeadroom(samples)
        b.bytes.reserveWithHeadroom(bytes)
        return b
    }

    /// Moves `batch`'s buffers out (leaving it empty) and keeps them for `takeSamples`,
    /// within the bounds above.
    package static func recycle(_ batch: inout SampleBatch, share: Int) {
        var b = SampleBatch()
        swap(&b, &batch)
        let held = b.bytes.capacity + b.records.capacity * MemoryLayout<SampleRecord>.stride
            + b.labels.capacity * MemoryLayout<LabelRef>.stride + b.numbers.capacity * 8 + b.exemplars.capacity * MemoryLayout<ExemplarRef>.stride
        b.removeAll()
        samplePool.withLock { $0.keep(b, held: held, share: share) }
    }
}
