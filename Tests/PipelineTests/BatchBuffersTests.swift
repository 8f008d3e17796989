import Testing
@testable import Pipeline

/// Batch buffers handed back are reused, within bounds tied to the memory budget.
/// One test: the pools are process-wide, so their cases run in order.
@Suite struct BatchBuffersTests {
    @Test func recycledBuffers_areReused_boundedInCountAndSize() {
        let share = 1 << 20
        // Drain whatever other tests left.
        for _ in 0..<BatchBuffers.kept {
            _ = BatchBuffers.take(payloads: 0, bytes: 0)
            _ = BatchBuffers.takeSamples(0, bytes: 0)
        }
        var p = BatchBuffers.take(payloads: 10, bytes: 64 << 10)
        p.append(Array(repeating: 7, count: 1000), origin: 1)
        let capacity = p.bytes.capacity
        BatchBuffers.recycle(p, share: share)
        let again = BatchBuffers.take(payloads: 1, bytes: 1)
        #expect(again.isEmpty && again.bytes.capacity == capacity, "the same storage, emptied")

        // A source reserves up to one share for a batch of large elements; the allocator rounds it up.
        var full = PayloadBatch()
        full.reserve(payloads: 100, bytes: share + 4096)
        BatchBuffers.recycle(full, share: share)
        #expect(BatchBuffers.take(payloads: 0, bytes: 0).bytes.capacity >= share, "a batch of a share and a bit is kept")

        var big = PayloadBatch()
        big.reserve(payloads: 1, bytes: 2 * share + 1)
        BatchBuffers.recycle(big, share: share)
        #expect(BatchBuffers.take(payloads: 0, bytes: 0).bytes.capacity < share, "a buffer larger than two shares is not kept")

        for _ in 0..<(BatchBuffers.kept + 3) {
            var b = PayloadBatch()
            b.reserve(payloads: 1, bytes: 4096)
            BatchBuffers.recycle(b, share: share)
        }
        let reused = (0..<(BatchBuffers.kept + 3)).filter { _ in BatchBuffers.take(payloads: 0, bytes: 0).bytes.capacity >= 4096 }.count
        #expect(reused == BatchBuffers.kept, "at most `kept` wait")

        // Each 1.5 shares: four shares in all take two of them.
        for _ in 0..<3 {
            var b = PayloadBatch()
            b.reserve(payloads: 1, bytes: share * 3 / 2)
            BatchBuffers.recycle(b, share: share)
        }
        let large = (0..<3).filter { _ in BatchBuffers.take(payloads: 0, bytes: 0).bytes.capacity >= share }.count
        #expect(large == 2, "at most four shares wait in all")

        var s = BatchBuffers.takeSamples(100, bytes: 8192)
        s.bytes.append(contentsOf: [1, 2, 3])
        s.records.append(SampleRecord(type: .counter, origin: 0, value: 1, name: ByteSpan(start: 0, count: 3)))
        let recordCapacity = s.records.capacity
        BatchBuffers.recycle(&s, share: share)
        #expect(s.records.isEmpty && s.bytes.isEmpty, "moved out")
        let t = BatchBuffers.takeSamples(1, bytes: 1)
        #expect(t.records.isEmpty && t.bytes.isEmpty && t.records.capacity == recordCapacity)
    }
}
