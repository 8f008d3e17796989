import Pipeline
import Testing

/// Large arrays grow by a quarter; small ones keep the array's own doubling.
@Suite struct ArrayGrowthTests {
    @Test func largeArraysGrowByAQuarter_smallOnesDouble() {
        var a = [UInt32](repeating: 0, count: 8192)
        a.reserveCapacity(8192)
        let before = a.capacity
        a.reserveGrowingByAQuarter(adding: before - a.count + 1)
        #expect(a.capacity >= before + 1 && a.capacity <= (before + 1) * 5 / 4 + 64)
        var small: [UInt32] = [1, 2, 3]
        let smallCapacity = small.capacity
        small.reserveGrowingByAQuarter(adding: 1000)
        #expect(small.capacity == smallCapacity)   // below 4096 entries: the array's own doubling
    }
}
