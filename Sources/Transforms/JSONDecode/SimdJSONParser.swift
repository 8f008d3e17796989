import CSimdJSON
import Pipeline

/// One simdjson On-Demand parser (its buffers reused document after document),
/// for one worker at a time; lends what it decoded only inside a closure.
final class SimdJSONParser {
    private let parser: OpaquePointer

    init() {
        guard let p = psg_simd_parser_new() else { fatalError("simdjson: cannot allocate a parser") }
        parser = p
    }

    deinit { psg_simd_parser_free(parser) }

    /// Appends the samples of `raw` to `out` and returns true, or leaves `out` as it
    /// was and returns false: then the document needs the jansson path (invalid,
    /// drops something, or uses what the fast path does not take — see simd_decode.h).
    /// `readable`: bytes readable from `raw`'s start (the rest of the batch's arena), so
    /// that all but the last element are parsed in place, without a padded copy.
    func decode(_ raw: UnsafeRawBufferPointer, readable: Int? = nil, origin: UInt16, limits: psg_simd_limits,
                into out: inout SampleBatch) -> Bool {
        guard let base = raw.baseAddress else { return false }
        var o = psg_simd_output()
        var l = limits
        let status = psg_simd_decode(parser, base.assumingMemoryBound(to: UInt8.self), raw.count, max(raw.count, readable ?? 0), &l, &o)
        guard status == Int32(PSG_OK) else { return false }
        let bytes = UnsafeRawBufferPointer(start: o.bytes, count: o.bytes_count)
        let records = UnsafeBufferPointer(start: o.records, count: o.records_count)
        func type(_ r: psg_simd_record) -> MetricType? {
            MetricType(bytes: UnsafeRawBufferPointer(rebasing: bytes[Int(r.type_start)..<Int(r.type_start + r.type_count)]))
        }
        for r in records where type(r) == nil { return false }   // unknown_type is jansson's to report
        let b = UInt32(out.bytes.count), n = UInt32(out.numbers.count), lb = UInt32(out.labels.count)
        out.bytes.append(contentsOf: bytes)
        if o.numbers_count > 0 { out.numbers.append(contentsOf: UnsafeBufferPointer(start: o.numbers, count: o.numbers_count)) }
        for label in UnsafeBufferPointer(start: o.labels, count: o.labels_count) {
            out.labels.append(LabelRef(name: ByteSpan(start: b + label.name_start, count: label.name_count),
                                       value: ByteSpan(start: b + label.value_start, count: label.value_count)))
        }
        func numbers(_ start: UInt32, _ count: UInt32) -> NumberSpan { count == 0 ? .empty : NumberSpan(start: n + start, count: count) }
        for r in records {
            var record = SampleRecord(type: type(r)!, origin: origin, value: r.value, name: ByteSpan(start: b + r.name_start, count: r.name_count))
            record.help = r.help_count == 0 ? .empty : ByteSpan(start: b + r.help_start, count: r.help_count)
            record.labelStart = lb + r.label_start
            record.labelCount = r.label_count
            record.buckets = numbers(r.buckets_start, r.buckets_count)
            record.quantiles = numbers(r.quantiles_start, r.quantiles_count)
            record.epsilons = numbers(r.epsilons_start, r.epsilons_count)
            out.records.append(record)
        }
        return true
    }
}
