/// Reading a family from `MetricStore.snapshot()` outside the store — what a sink
/// that sends the aggregate somewhere (`remote_write`) needs.
extension Family {
    public var seriesCount: Int { series.count }

    /// Series `s`'s labels as exposition text in label-name order (`a="x",b="y\"z"`).
    public func withLabelText<R>(_ s: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R { series.withKey(s, body) }
}
