@testable import Sources
import Testing

/// How a processing list is read back: oldest page first (the highest indices), every
/// element once, pages sized by the read share.
@Suite struct ReplayPagesTests {
    @Test(arguments: [(5, 2, [3...4, 1...2, 0...0]), (3, 16, [0...2]), (1, 1, [0...0]), (4, 0, [3...3, 2...2, 1...1, 0...0])])
    func pages_coverTheListOldestFirst(_ missing: Int, _ page: Int, _ expected: [ClosedRange<Int>]) {
        var pages: [ClosedRange<Int>] = [], remaining = missing
        while remaining > 0 {
            let p = ReplayPages.next(remaining: remaining, page: page)
            pages.append(p)
            remaining = p.lowerBound
        }
        #expect(pages == expected)
    }

    @Test(arguments: [
        (0.0, 4 << 20, 1000, 1),             // nothing seen yet: one element finds out
        (150.0, 4 << 20, 1000, 1000),        // small elements: a batch per page
        (560_000.0, 4 << 20, 1000, 7),       // large ones: what fits the share
        (8_000_000.0, 4 << 20, 1000, 1),     // larger than the share: one at a time
    ])
    func pageSize_fitsTheReadShare(_ average: Double, _ share: Int, _ batchSize: Int, _ expected: Int) {
        #expect(ReplayPages.size(averageElementBytes: average, share: share, batchSize: batchSize) == expected)
    }
}
