extension Array {
    /// Makes room for `n` more elements, growing a large array (4 096 elements and more)
    /// by a quarter instead of letting `append` double it: the store's per-series arrays
    /// are most of a series' bytes, and doubling leaves a third of them unused on average.
    @inlinable
    public mutating func reserveGrowingByAQuarter(adding n: Int) {
        let needed = count + n
        if needed > capacity && count >= 4096 { reserveCapacity(needed + needed / 4) }
    }
}
