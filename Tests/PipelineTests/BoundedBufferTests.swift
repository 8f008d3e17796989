import Foundation
import Pipeline
import Synchronization
import Testing
import TestSupport

@Suite struct BoundedBufferTests {
    @Test func held_consumersDrainWhatIsQueuedThenStop_producersWait_andTicketsGoOnAfterRelease() {
        let buffer = BoundedBuffer<Int>(capacity: 8, whenFull: .dropNewest)
        for i in 0..<3 { buffer.push(i) }
        buffer.hold()
        let pushed = Atomic(false)
        let producer = OSThread.spawn(name: "p") {
            #expect(buffer.push(3) == nil, "a held buffer makes even drop_newest wait, not drop")
            pushed.store(true, ordering: .releasing)
        }
        #expect((0..<3).map { _ in buffer.pop()?.ticket } == [0, 1, 2])
        #expect(buffer.pop() == nil, "held and empty: the old consumers stop")
        usleep(50_000)
        let early = pushed.load(ordering: .acquiring)
        #expect(!early)
        #expect(buffer.release() == 3)
        producer.join()
        let next = buffer.pop()
        #expect(next?.element == 3 && next?.ticket == 3)
    }

    @Test func manyProducersAndConsumers_loseNothingAndDuplicateNothing() {
        let buffer = BoundedBuffer<Int>(capacity: 8, producers: 4)
        let seen = Mutex<[Int]>([])
        var threads: [OSThread] = []
        for p in 0..<4 {
            threads.append(OSThread.spawn(name: "p\(p)") {
                for i in 0..<5000 { buffer.push(p * 100_000 + i) }
                buffer.producerFinished()
            })
        }
        for c in 0..<3 {
            threads.append(OSThread.spawn(name: "c\(c)") {
                var local: [Int] = []
                while let (v, _) = buffer.pop() { local.append(v) }
                seen.withLock { $0 += local }
            })
        }
        for t in threads { t.join() }
        let all = seen.withLock { $0 }
        #expect(all.count == 20_000)
        #expect(Set(all).count == 20_000)
    }

    @Test func singleProducer_popsInPushOrderWithIncreasingTickets() {
        let buffer = BoundedBuffer<Int>(capacity: 4)
        let producer = OSThread.spawn(name: "p") {
            for i in 0..<1000 { buffer.push(i) }
            buffer.producerFinished()
        }
        var expected = 0
        while let (v, ticket) = buffer.pop() {
            #expect(v == expected)
            #expect(ticket == UInt64(expected))
            expected += 1
        }
        producer.join()
        #expect(expected == 1000)
    }

    @Test func block_waitsForRoomInsteadOfDropping() {
        let buffer = BoundedBuffer<Int>(capacity: 2, whenFull: .block)
        buffer.push(1); buffer.push(2)
        let pushed = Atomic<Bool>(false)
        let t = OSThread.spawn(name: "p") {
            buffer.push(3)
            pushed.store(true, ordering: .releasing)
        }
        // The producer is known to be blocked, not merely not yet run.
        #expect(eventually { buffer.blockedProducers == 1 })
        let before = pushed.load(ordering: .acquiring)
        #expect(before == false)
        #expect(buffer.pop()?.element == 1)
        t.join()
        let after = pushed.load(ordering: .acquiring)
        #expect(after)
        #expect(buffer.droppedCount == 0)
        #expect(buffer.fill == 2)
    }

    @Test func dropNewest_discardsAndCountsWhenFull() {
        let buffer = BoundedBuffer<Int>(capacity: 2, whenFull: .dropNewest)
        #expect(buffer.push(1) == nil)
        #expect(buffer.push(2) == nil)
        #expect(buffer.push(3) == 3, "the discarded element comes back to be counted")
        #expect(buffer.droppedCount == 1)
        buffer.producerFinished()
        #expect(buffer.pop()?.element == 1)
        #expect(buffer.pop()?.element == 2)
        #expect(buffer.pop() == nil)
    }

    @Test func close_letsConsumersDrainBeforeNil() {
        let buffer = BoundedBuffer<Int>(capacity: 10, producers: 2)
        buffer.push(1)
        buffer.producerFinished()
        buffer.push(2)
        buffer.producerFinished()
        #expect(buffer.pop()?.element == 1)
        #expect(buffer.pop()?.element == 2)
        #expect(buffer.pop() == nil)
    }
}
