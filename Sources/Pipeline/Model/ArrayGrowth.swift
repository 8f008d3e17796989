extension Array {
    /// Makes room for `n` more elements, growing a large array (4 096 elements and more)
    /// by a quarter instead of letting `append` double it: the store's per-series arrays
    /// are most of a series' bytes, and doubling leaves a third of them unused on average.
    @inlinable
    public mutating func reserveGrowingByAQuarter(adding n: Int) {
        if count >= 4096 { reserveWithHeadroom(count + n) }
    }

    /// Room for `n` elements in all; when it must grow, a quarter more. A reused batch
    /// buffer asked for a little more each time (batch sizes wander) would otherwise be
    /// reallocated each time, exactly: megabytes mapped and faulted in anew per batch.
    @inlinable
    public mutating func reserveWithHeadroom(_ n: Int) {
        if n > capacity { reserveCapacity(n + n / 4) }
    }
}
