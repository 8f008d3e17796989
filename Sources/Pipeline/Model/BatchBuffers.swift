import Synchronization

/// Emptied batch buffers, handed back for reuse: payloads by the stage that decoded
/// them for a source's next batch, samples by the runtime after the sink for the
/// decoder's next batch. A batch of large elements is megabytes: a fresh buffer each
/// time is mapped, page-faulted and zeroed by the kernel (measured: 148 000 minor
/// faults per million samples in arrays of 50), a reused one is already resident.
/// Bounded by the memory budget: at most `kept` buffers of each kind wait here, each
/// of at most two of the source's read shares (`MemoryBudget.readShare`, an eighth of
/// the budget): the budget in all, idle memory no drain of elements larger than that
/// ever keeps. (A source reserves up to one share for a batch, which the allocator
/// rounds up: a bound of one share turned away every buffer of large elements, each
/// then mapped and faulted in anew.)
package enum BatchBuffers {
    static let kept = 2
    private static let pool = Mutex<[PayloadBatch]>([])

    /// An empty batch with room for `payloads` elements of `bytes` in all (a recycled one when there is one).
    package static func take(payloads: Int, bytes: Int) -> PayloadBatch {
        var b = pool.withLock { $0.popLast() } ?? PayloadBatch()
        b.reserve(payloads: payloads, bytes: bytes)
        return b
    }

    /// Keeps `batch`'s storage for a later `take`, unless the pool is full or the buffer
    /// holds more than two `share`s (a shared one is not reused: emptying it allocates anew).
    package static func recycle(_ batch: consuming PayloadBatch, share: Int) {
        var b = batch
        guard b.bytes.capacity + b.ends.capacity * 10 <= 2 * share else { return }
        b.removeAll(keepingCapacity: true)
        pool.withLock { if $0.count < kept { $0.append(b) } }
    }

    /// The reservation for a batch of `elements` elements of `average` bytes so far,
    /// capped by the source's share of the memory budget.
    package static func bytes(elements: Int, average: Double, share: Int) -> Int {
        min(share, Int(Double(elements) * max(160, average * 1.25)))
    }
}

extension BatchBuffers {
    private static let samplePool = Mutex<[SampleBatch]>([])

    /// An empty sample batch with room for `samples` samples and `bytes` of arena.
    package static func takeSamples(_ samples: Int, bytes: Int) -> SampleBatch {
        var b = samplePool.withLock { $0.popLast() } ?? SampleBatch()
        b.records.reserveWithHeadroom(samples)
        b.bytes.reserveWithHeadroom(bytes)
        return b
    }

    /// Moves `batch`'s buffers out (leaving it empty) and keeps them for `takeSamples`,
    /// unless the pool is full or they hold more than two `share`s.
    package static func recycle(_ batch: inout SampleBatch, share: Int) {
        var b = SampleBatch()
        swap(&b, &batch)
        let held = b.bytes.capacity + b.records.capacity * MemoryLayout<SampleRecord>.stride
            + b.labels.capacity * MemoryLayout<LabelRef>.stride + b.numbers.capacity * 8 + b.exemplars.capacity * MemoryLayout<ExemplarRef>.stride
        guard held <= 2 * share else { return }
        b.removeAll()
        samplePool.withLock { if $0.count < kept { $0.append(b) } }
    }
}
