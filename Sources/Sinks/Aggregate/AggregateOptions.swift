import Aggregation
import Pipeline

/// What a sink holding an aggregate reads the same way (`prometheus`, `remote_write`):
/// the summary window, series limits and expiry, native histograms, and where the
/// aggregate survives a restart.
public struct AggregateOptions: Sendable {
    public static let defaultSummaryMaxAge = Duration.seconds(600)
    public static let defaultSummaryAgeBuckets = 5
    public static let defaultSnapshotInterval = Duration.seconds(5)

    /// Summary quantile window and its age buckets.
    public var summaryMaxAge: Duration
    public var summaryAgeBuckets: Int
    /// Series caps and expiry.
    public var limits = SeriesLimits()
    /// Where the aggregate survives restarts (nil: it does not).
    public var stateFile: String?
    /// `state: redis`: per-shard state next to a group-mode source's shards.
    public var stateInRedis = false
    public var snapshotInterval: Duration
    /// Histogram names (globs, first match wins) also kept as native histograms.
    public var nativeHistograms: [(pattern: String, options: NativeHistogramOptions)] = []

    public var needsRedelivery: Bool { stateFile != nil || stateInRedis }
    /// Two sinks writing one state file would overwrite each other's aggregate.
    public var exclusiveResources: [(key: String, resource: String)] { stateFile.map { [("state_file", "the state file \($0)")] } ?? [] }

    public init(options o: OptionReader) {
        summaryMaxAge = o.duration("summary_max_age", default: Self.defaultSummaryMaxAge, positive: true, doc:
            "Sliding window over which summary quantiles are computed.")
        summaryAgeBuckets = o.int("summary_age_buckets", default: Self.defaultSummaryAgeBuckets, range: 1...1000, doc:
            "Buckets the summary window is divided into; one expires at a time.")
        limits.maxSeries = o.int("max_series", default: 0, range: 0...Int.max, doc:
            "Most series overall (0: no limit); samples that would create more are dropped as `series_limit`.")
        limits.maxSeriesPerMetric = o.int("max_series_per_metric", default: 0, range: 0...Int.max, doc:
            "Most series per metric name (0: no limit), also `series_limit`.")
        let state = o.optionalString("state_file", doc:
            "File the aggregate is kept in across restarts and crashes (written every snapshot_interval and at shutdown: what changed "
            + "into segment files <file>.seg.<n> beside it, then this manifest, atomically); with a "
            + "reliable redis_list in front, exactly-once (Metrics__StateFile). Unset: nothing survives a restart.")
        stateFile = state?.isEmpty == true ? nil : state
        let where_ = o.string("state", default: "", doc:
            "redis: keep the aggregate per shard in Redis (key:{s}:state) for a group-mode redis_list source (shards, group) — what lets another "
            + "gateway of the group continue a shard exactly. Empty: state_file, or nothing.")
        switch where_ {
        case "": stateInRedis = false
        case "redis": stateInRedis = true
        default: stateInRedis = false; o.fail("state", "expected redis or nothing, got `\(where_)`")
        }
        if stateInRedis && stateFile != nil { o.fail("state", "give state: redis or state_file, not both") }
        snapshotInterval = o.duration("snapshot_interval", default: Self.defaultSnapshotInterval, positive: true, doc:
            "How often the state file is written (Metrics__SnapshotInterval); elements are removed from the processing list only once a snapshot "
            + "holds them.")
        for (pattern, r) in o.namedSections("native_histograms", doc:
            "Histogram-name glob (`*`, `?`; first match wins) to native-histogram options {schema: -4…8 (default 3) or bucket_factor (> 1, "
            + "client_golang's), zero_threshold (default 2^-128), max_buckets (default 160; 0: no limit)}: such histograms are also kept as native "
            + "histograms (served in protobuf), and their samples may come without `buckets`. E.g. {\"*_seconds\": {schema: 3}}.") {
            var n = NativeHistogramOptions()
            n.schema = r.int("schema", default: NativeHistogramOptions.defaultSchema, range: -4...8, doc:
                "Resolution: bucket boundaries are powers of 2^(2^-schema).")
            let factor = r.double("bucket_factor", default: 0, doc:
                "Instead of schema, client_golang's NativeHistogramBucketFactor: the largest growth from one bucket to the next (> 1, e.g. 1.1 → "
                + "schema 3).")
            if factor != 0 {
                if r.node("schema") != nil { r.fail("bucket_factor", "give schema or bucket_factor, not both") }
                if let schema = NativeHistogramOptions.schema(bucketFactor: factor) { n.schema = schema } else {
                    r.fail("bucket_factor", "must be a number > 1, got \(factor)")
                }
            }
            n.zeroThreshold = r.double("zero_threshold", default: NativeHistogramOptions.defaultZeroThreshold, doc:
                "Observations within ±this count in the zero bucket.")
            if !(n.zeroThreshold >= 0 && n.zeroThreshold.isFinite) { r.fail("zero_threshold", "must be a finite number >= 0") }
            n.maxBuckets = r.int("max_buckets", default: NativeHistogramOptions.defaultMaxBuckets, range: 0...1_000_000, doc:
                "Populated buckets per series before the resolution halves (0: no limit — then a sender spreading values over the whole double "
                + "range can grow one series to ~2 100 × 2^schema buckets per sign).")
            r.finishReading()
            o.merge(r)
            nativeHistograms.append((pattern, n))
        }
        let expire = o.duration("expire_after", default: .zero, doc:
            "Remove series not updated for this long (0: never, as the .NET gateway). An expired counter restarts from zero.")
        limits.expireAfter = expire > .zero ? expire : nil
        for (pattern, text) in o.stringMap("expire_after_by_name", doc:
            "Metric-name glob (`*`, `?`) to expiry, first match wins, e.g. {\"lambda_*\": 10m}; overrides expire_after.") {
            if let d = OptionReader.parseDuration(text) { limits.expireByName.append((pattern, d)) } else {
                o.fail("expire_after_by_name", "expected a duration for `\(pattern)`, got `\(text)`")
            }
        }
    }
}
