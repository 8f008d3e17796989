/// Why a sample was dropped: the `reason` label of
/// `prom_stream_gateway_dropped_metrics_total`. Custom stages may declare their own
/// (`DropReason("my_reason")`); keep the set small and fixed — it is a label.
public struct DropReason: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public init(_ name: String) { self.name = name }
    public var description: String { name }

    // Decoding (json_decode)
    /// Not parseable JSON, invalid UTF-8, NUL in a string, or nested too deep.
    public static let invalidJSON = DropReason("invalid_json")
    /// A JSON value that is neither an object nor an array of objects.
    public static let notAnObject = DropReason("not_an_object")
    /// `type`, `name` or `value` missing (or `buckets` on a histogram).
    public static let missingField = DropReason("missing_field")
    /// `type` is not one of counter, gauge, histogram, summary.
    public static let unknownType = DropReason("unknown_type")
    /// A field has the wrong JSON type (e.g. `value` a string, `labels` an array).
    public static let wrongFieldType = DropReason("wrong_field_type")
    /// The element exceeds `max_payload_bytes`.
    public static let payloadTooLarge = DropReason("payload_too_large")
    /// An array batch with more than `max_samples_per_payload` samples.
    public static let tooManySamples = DropReason("too_many_samples")
    /// More than `max_labels` labels.
    public static let tooManyLabels = DropReason("too_many_labels")
    /// Name, label name, label value or help longer than its limit, or too many buckets/quantiles.
    public static let tooLong = DropReason("too_long")

    // Validation (validate)
    /// Metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    public static let invalidName = DropReason("invalid_name")
    /// Label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__`, or repeats.
    public static let invalidLabelName = DropReason("invalid_label_name")
    /// `le` on a histogram or `quantile` on a summary.
    public static let reservedLabel = DropReason("reserved_label")
    /// Non-finite value where a finite one is required, or a negative counter increment.
    public static let badValue = DropReason("bad_value")
    /// Histogram without buckets, or with a non-finite bucket bound.
    public static let badBuckets = DropReason("bad_buckets")
    /// Quantiles and epsilons of different lengths or out of range.
    public static let badQuantiles = DropReason("bad_quantiles")

    // Aggregation (prometheus)
    /// The metric name is already held with another type.
    public static let typeConflict = DropReason("type_conflict")
    /// The name is in the gateway's own `prom_stream_gateway_` namespace.
    public static let reservedName = DropReason("reserved_name")
    /// The sample would create a series beyond `max_series` or `max_series_per_metric`.
    public static let seriesLimit = DropReason("series_limit")

    // Relabeling
    /// Dropped on purpose by a `relabel` rule (not an error).
    public static let relabelDrop = DropReason("relabel_drop")
}

/// Drops counted while a stage processes one batch; the runtime adds them to the
/// shared counters once per batch, so a stage never touches a lock per sample.
public struct DropTally: Sendable {
    public struct Entry: Sendable {
        public var origin: UInt16
        public var reason: DropReason
        public var count: Int
    }
    public private(set) var entries: [Entry] = []

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }
    public var total: Int { entries.reduce(0) { $0 + $1.count } }

    public mutating func add(origin: UInt16, reason: DropReason, count: Int = 1) {
        for i in entries.indices where entries[i].origin == origin && entries[i].reason == reason {
            entries[i].count += count
            return
        }
        entries.append(Entry(origin: origin, reason: reason, count: count))
    }

    public mutating func removeAll() { entries.removeAll(keepingCapacity: true) }
}
