import Pipeline

/// The reasons the `prometheus` sink drops a sample for.
extension DropReason {
    /// The metric name is already held with another type.
    public static let typeConflict = DropReason("type_conflict")
    /// The name is in the gateway's own `prom_stream_gateway_` namespace.
    public static let reservedName = DropReason("reserved_name")
    /// The sample would create a series beyond `max_series` or `max_series_per_metric`.
    public static let seriesLimit = DropReason("series_limit")
    /// The name, or a name its family renders (`_bucket`, `_sum`, `_count`,
    /// `_total`, `_created`), is already taken by another family.
    public static let nameCollision = DropReason("name_collision")
    /// Adding the value would make a counter or a histogram/summary `_sum` infinite.
    public static let valueOverflow = DropReason("value_overflow")
    /// A label value that is not valid UTF-8 (only a custom stage can produce one).
    public static let invalidLabelValue = DropReason("invalid_label_value")

    // The sink's last line of defence repeats `validate`'s checks for pipelines
    // without it, under the same labels (a reason is its name). Internal, so that
    // a module importing both sees one declaration.
    static let invalidName = DropReason("invalid_name")
    static let invalidLabelName = DropReason("invalid_label_name")
    static let reservedLabel = DropReason("reserved_label")
    static let badValue = DropReason("bad_value")
    /// A histogram sample without buckets whose name matches no `native_histograms` pattern.
    static let badBuckets = DropReason("bad_buckets")
}

extension DropReason {
    /// Group mode: the sample came on a shard its name does not route to
    /// (`crc32(name) mod shards`); only the shard its name routes to may hold its family.
    public static let wrongShard = DropReason("wrong_shard")
}
