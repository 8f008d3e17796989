import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// Enforces the wire format's rules on decoded samples: metric and label name syntax, no `__`
/// label prefix, no repeated label names, the reserved `le` (histograms) and
/// `quantile` (summaries), finite values (`>= 0` for counters), histogram buckets
/// non-NaN (and, for bucket counts, strictly increasing with one whole count per bucket
/// and `+Inf`), summary objectives well-formed. Gauges may be any number. A histogram
/// without buckets passes: the `prometheus` sink drops it (`bad_buckets`) unless
/// it keeps that name as a native histogram.
/// Failing samples are dropped and counted; nothing is rewritten.
public struct ValidateConfig: StageConfig {
    public static let type = "validate"
    public static let role = StageRole.transform
    public static let summary = "Drops samples that break the wire format's naming and value rules."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = .samples
    public static let example = ""

    public init(options: OptionReader) {}

    public func makeStage(context: StageContext) throws -> Stage { .transform(ValidateTransform()) }
}

public final class ValidateTransform: Transform {
    public init() {}

    public func process(_ batch: inout Batch, worker: Int) {
        var rejected: [(Int, DropReason)] = []
        let s = batch.samples   // one reference for the loop, not four retains and releases per sample; gone before the drops
        s.bytes.withUnsafeBytes { arena in
            // Borrowed once: a slice of `numbers` per histogram or summary retained and released the array (4% of a drain).
            s.numbers.withUnsafeBufferPointer { numbers in
                for i in s.records.indices where !s.records[i].isDropped {
                    if let reason = Self.check(i, in: s, arena: arena, numbers: numbers) { rejected.append((i, reason)) }
                }
            }
        }
        for (i, reason) in rejected { batch.drop(sample: i, reason: reason) }
    }

    /// The reason sample `i` is invalid, or nil.
    public static func check(_ i: Int, in s: SampleBatch) -> DropReason? {
        s.bytes.withUnsafeBytes { arena in s.numbers.withUnsafeBufferPointer { check(i, in: s, arena: arena, numbers: $0) } }
    }

    static func check(_ i: Int, in s: SampleBatch, arena: UnsafeRawBufferPointer, numbers: UnsafeBufferPointer<Double>) -> DropReason? {
        @inline(__always) func bytes(_ span: ByteSpan) -> UnsafeRawBufferPointer { arena[span: span] }
        // A pointer and a count, not a `Slice` of the buffer: that was a generic metadata lookup per call.
        @inline(__always) func list(_ span: NumberSpan) -> UnsafeBufferPointer<Double> {
            guard span.count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
            return UnsafeBufferPointer(start: numbers.baseAddress! + Int(span.start), count: Int(span.count))
        }
        let r = s.records[i]
        guard NameSyntax.isValidMetricName(bytes(r.name)) else { return .invalidName }
        for l in r.labelRange {
            let n = bytes(s.labels[l].name)
            guard NameSyntax.isUsableLabelName(n) else { return .invalidLabelName }
            if r.type == .histogram && n.count == 2 && n[0] == 0x6C && n[1] == 0x65 { return .reservedLabel }                 // le
            if r.type == .summary && n.count == 8 && memcmp(n.baseAddress!, "quantile", 8) == 0 { return .reservedLabel }
            for m in r.labelRange.lowerBound..<l {
                let other = bytes(s.labels[m].name)
                if other.count == n.count && bytesEqual(other.baseAddress!, n.baseAddress!, n.count) { return .invalidLabelName }
            }
        }
        switch r.type {
        case .counter:
            guard r.value.isFinite, r.value >= 0 else { return .badValue }
        case .gauge:
            break
        case .histogram:
            guard r.value.isFinite else { return .badValue }
            // No buckets at all is the sink's call: a native histogram needs none.
            guard !list(r.buckets).contains(where: \.isNaN) else { return .badBuckets }
            if r.shape == .binned, !BinnedHistogram.isWellFormed(bounds: list(r.buckets), numbers: list(r.bins)) { return .badBuckets }
        case .summary:
            guard r.value.isFinite else { return .badValue }
            guard r.quantiles.count == r.epsilons.count else { return .badQuantiles }
            for q in list(r.quantiles) where !(q > 0 && q < 1) { return .badQuantiles }
            for e in list(r.epsilons) where !(e >= 0 && e < 1) { return .badQuantiles }
        }
        return nil
    }
}

/// The reasons `validate` drops a sample for.
extension DropReason {
    /// Metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    public static let invalidName = DropReason("invalid_name")
    /// Label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__`, or repeats.
    public static let invalidLabelName = DropReason("invalid_label_name")
    /// `le` on a histogram or `quantile` on a summary.
    public static let reservedLabel = DropReason("reserved_label")
    /// Non-finite value where a finite one is required, or a negative counter increment.
    public static let badValue = DropReason("bad_value")
}
