import Pipeline

/// The reasons `json_decode` drops an element or a sample for.
extension DropReason {
    /// Not parseable JSON, invalid UTF-8, NUL in a string, duplicate keys, or nested too deep.
    public static let invalidJSON = DropReason("invalid_json")
    /// A JSON value that is neither an object nor an array of objects.
    public static let notAnObject = DropReason("not_an_object")
    /// `type`, `name` or `value` missing.
    public static let missingField = DropReason("missing_field")
    /// `type` is not one of counter, gauge, histogram, summary (any case) or 0–3.
    public static let unknownType = DropReason("unknown_type")
    /// A field has the wrong JSON type (e.g. `value` a string, `labels` a non-empty array).
    public static let wrongFieldType = DropReason("wrong_field_type")
    /// The element exceeds `max_payload_bytes`.
    public static let payloadTooLarge = DropReason("payload_too_large")
    /// An array batch with more than `max_samples_per_payload` samples.
    public static let tooManySamples = DropReason("too_many_samples")
    /// More than `max_labels` labels.
    public static let tooManyLabels = DropReason("too_many_labels")
    /// Name, label name, label value or help longer than its limit, or too many buckets/quantiles.
    public static let tooLong = DropReason("too_long")
    /// `buckets` not a list of numbers.
    public static let badBuckets = DropReason("bad_buckets")
    /// `quantiles` or `epsilons` not a list of numbers.
    public static let badQuantiles = DropReason("bad_quantiles")
}
