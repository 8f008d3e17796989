import Pipeline
import Synchronization
import Testing
import TestSupport

@Suite struct ReordererTests {
    @Test func resultsCompletedOutOfOrder_areEmittedInTicketOrder() {
        let r = Reorderer<Int>(capacity: 8)
        var out: [Int] = []
        for t in [2, 0, 3, 1, 5, 4] as [UInt64] { r.complete(t, Int(t) * 10) { out.append($0) } }
        #expect(out == [0, 10, 20, 30, 40, 50])
    }

    @Test func nilResults_holdTheirPlaceButEmitNothing() {
        let r = Reorderer<Int>(capacity: 4)
        var out: [Int] = []
        r.complete(1, 1) { out.append($0) }
        r.complete(0, nil) { out.append($0) }
        r.complete(2, nil) { out.append($0) }
        r.complete(3, 3) { out.append($0) }
        #expect(out == [1, 3])
    }

    @Test func concurrentWorkers_emitEveryTicketOnceInOrder() {
        let r = Reorderer<Int>(capacity: 4)
        let out = Mutex<[Int]>([])
        let next = Atomic<UInt64>(0)
        let threads = (0..<4).map { w in
            OSThread.spawn(name: "w\(w)") {
                while true {
                    let t = next.add(1, ordering: .relaxed).oldValue
                    guard t < 2000 else { return }
                    r.complete(t, Int(t)) { v in out.withLock { $0.append(v) } }
                }
            }
        }
        for t in threads { t.join() }
        #expect(out.withLock { $0 } == Array(0..<2000))
    }
}
