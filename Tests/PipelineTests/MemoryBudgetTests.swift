import Pipeline
import Synchronization
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite struct MemoryBudgetUnitTests {
    /// avg bytes, share, pop count, max pop count, max in flight → count, in flight
    static let sizings: [(Double, Int, Int, Int, Int, Int, Int)] = [
        (0.0, 4 << 20, 25, 400, 32, 1, 1),                  // nothing seen: one element finds out
        (150.0, 4 << 20, 25, 400, 32, 256, 32),             // small elements: 64 KiB replies, a power of two
        (140.0, 4 << 20, 25, 400, 32, 256, 32),             // …which the average's swings do not change
        (170.0, 4 << 20, 25, 400, 32, 256, 32),
        (150.0, 4 << 20, 25, 100, 32, 100, 32),             // at most max_pop_count
        (150.0, 4 << 20, 25, 25, 32, 25, 32),               // max_pop_count = pop_count: the .NET gateway's pops
        (150.0, 4 << 20, 25, 10, 32, 25, 32),               // below pop_count: pop_count
        (150.0, 4 << 20, 500, 400, 32, 500, 32),            // a larger pop_count is kept
        (150.0, 1 << 20, 25, 400, 32, 256, 27),             // a small share: fewer pops in flight
        (1_500.0, 4 << 20, 25, 400, 32, 32, 32),            // 10-sample arrays: 43 fit, 32 per pop
        (15_000.0, 4 << 20, 25, 400, 32, 25, 11),           // 100-sample arrays: pop_count, fewer in flight
        (750_000.0, 4 << 20, 25, 400, 32, 5, 1),            // 5 000-sample arrays: fewer elements per pop
        (8_000_000.0, 4 << 20, 100, 400, 32, 1, 1),         // one element larger than the share: one at a time
        (70_000.0, 4 << 20, 25, 400, 32, 25, 2),            // larger than the reply target: pop_count
    ]

    @Test(arguments: sizings)
    func readSizing_fitsTheShare(_ avg: Double, _ share: Int, _ pop: Int, _ maxPop: Int, _ maxInFlight: Int, _ count: Int, _ inFlight: Int) {
        let plan = ReadSizing.plan(averageElementBytes: avg, share: share, popCount: pop, maxPopCount: maxPop, maxInFlight: maxInFlight)
        #expect(plan == ReadSizing(count: count, inFlight: inFlight))
    }

    @Test func acquire_waitsUntilReleased_butABatchLargerThanTheBudgetPassesAlone() {
        let budget = MemoryBudget(limit: 100)
        budget.acquire(250)   // alone: passes
        #expect(budget.inFlight == 250)
        let done = Atomic(false)
        let waiter = OSThreadRunner { budget.acquire(10); done.store(true, ordering: .releasing) }
        usleep(50_000)
        let waited = !done.load(ordering: .acquiring)
        #expect(waited, "waits while the budget is spent")
        budget.adjust(from: 250, to: 120)
        usleep(50_000)
        let stillWaiting = !done.load(ordering: .acquiring)
        #expect(stillWaiting)
        budget.release(120)
        waiter.join()
        let finished = done.load(ordering: .acquiring)
        #expect(finished && budget.inFlight == 10)
    }
}
