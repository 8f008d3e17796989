import Pipeline

/// Memory safety valves of the store.
public struct SeriesLimits: Sendable {
    /// Most series overall (0: no limit). A sample that would create one more is dropped (`series_limit`).
    public var maxSeries = 0
    /// Most series per metric name (0: no limit).
    public var maxSeriesPerMetric = 0
    /// Series not updated for this long disappear (nil: never). An expired counter
    /// starts again from zero when it comes back, which Prometheus reads as a reset.
    public var expireAfter: Duration?
    /// Per metric-name glob (`*`, `?`), first match wins; overrides `expireAfter`.
    public var expireByName: [(pattern: String, after: Duration)] = []
    public init() {}

    func ttl(for name: [UInt8]) -> UInt64 {
        let text = String(decoding: name, as: UTF8.self)
        let d = expireByName.first { globMatch($0.pattern, text) }?.after ?? expireAfter
        guard let d, d > .zero else { return 0 }
        return UInt64(d.inSeconds * 1e9)
    }
}
