import Pipeline
import Synchronization
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite struct MemoryBudgetUnitTests {
    @Test(arguments: [
        // avg bytes, share, pop count, max in flight → count, in flight
        (0.0, 4 << 20, 25, 32, 16, 1),                  // nothing seen: one modest pop
        (150.0, 4 << 20, 25, 32, 25, 32),               // small elements: as configured
        (15_000.0, 4 << 20, 25, 32, 25, 11),            // 100-sample arrays: fewer pops in flight
        (750_000.0, 4 << 20, 25, 32, 5, 1),             // 5 000-sample arrays: fewer elements per pop
        (8_000_000.0, 4 << 20, 100, 32, 1, 1),          // one element larger than the share: one at a time
    ])
    func readSizing_fitsTheShare(_ avg: Double, _ share: Int, _ pop: Int, _ maxInFlight: Int, _ count: Int, _ inFlight: Int) {
        let plan = ReadSizing.plan(averageElementBytes: avg, share: share, popCount: pop, maxInFlight: maxInFlight)
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
