import CSimdJSON
import Pipeline

/// The C fast paths' parser — the scanner, then simdjson On-Demand — its buffers reused batch after batch,
/// for one worker at a time; lends what it decoded only inside a closure.
final class SimdJSONParser {
    private let parser: OpaquePointer
    /// The batch call's per-document record ends, reused.
    private var recordEnds: [UInt32] = []

    /// `scanner: false` sends every element to On-Demand (for tests of that path on its own).
    init(scanner: Bool = true) {
        guard let p = psg_simd_parser_new() else { fatalError("simdjson: cannot allocate a parser") }
        parser = p
        psg_simd_parser_use_scanner(p, scanner ? 1 : 0)
    }

    deinit { psg_simd_parser_free(parser) }

    /// Elements the scanner decoded (the rest went to On-Demand or jansson).
    var scanned: Int { psg_simd_parser_scanned(parser) }

    /// Bytes its buffers hold between batches.
    var heldBytes: Int { psg_simd_parser_held_bytes(parser) }

    /// Decodes every element of `payloads` in one call into `out`, in order; an element
    /// the fast path does not take (larger than `maxPayload`, invalid, dropping something, or using what the fast
    /// path does not take — see simd_decode.h) goes to
    /// `fallback` at its place in the order, which appends what it decodes to `out`.
    /// One C call per batch, one bulk copy of the bytes, numbers and labels: the
    /// per-element call and copies were a third of the decoding thread.
    func decode(_ payloads: PayloadBatch, maxPayload: Int, limits: psg_simd_limits, into out: inout SampleBatch,
                fallback: (_ element: Int, _ raw: UnsafeRawBufferPointer, _ out: inout SampleBatch) -> Void) {
        let count = payloads.count
        guard count > 0 else { return }
        if recordEnds.count < count { recordEnds = [UInt32](repeating: 0, count: max(count, 2 * recordEnds.count)) }
        var o = psg_simd_output()
        var l = limits
        let parser = parser
        payloads.bytes.withUnsafeBytes { arena in
            recordEnds.withUnsafeMutableBufferPointer { ends in
                payloads.ends.withUnsafeBufferPointer { payloadEnds in
                    _ = psg_simd_decode_batch(parser, arena.baseAddress?.assumingMemoryBound(to: UInt8.self), arena.count, payloadEnds.baseAddress,
                                              count, maxPayload, &l, ends.baseAddress, &o)
                }
                let b = UInt32(out.bytes.count), n = UInt32(out.numbers.count), lb = UInt32(out.labels.count)
                // Room for all of it at once: a batch sized by its elements grew its records by doubling for arrays
                // (each step a copy into freshly mapped pages: 110 MB of mmap in a 2M-sample drain of arrays of 50).
                out.records.reserveWithHeadroom(out.records.count + o.records_count)
                out.labels.reserveWithHeadroom(out.labels.count + o.labels_count)
                out.bytes.reserveWithHeadroom(out.bytes.count + o.bytes_count)
                out.numbers.reserveWithHeadroom(out.numbers.count + o.numbers_count)
                if o.bytes_count > 0 { out.bytes.append(contentsOf: UnsafeBufferPointer(start: o.bytes, count: o.bytes_count)) }
                if o.numbers_count > 0 { out.numbers.append(contentsOf: UnsafeBufferPointer(start: o.numbers, count: o.numbers_count)) }
                for label in UnsafeBufferPointer(start: o.labels, count: o.labels_count) {
                    out.labels.append(LabelRef(name: ByteSpan(start: b + label.name_start, count: label.name_count),
                                               value: ByteSpan(start: b + label.value_start, count: label.value_count)))
                }
                func numbers(_ start: UInt32, _ count: UInt32) -> NumberSpan { count == 0 ? .empty : NumberSpan(start: n + start, count: count) }
                let records = UnsafeBufferPointer(start: o.records, count: o.records_count)
                var next = 0
                for i in 0..<count {
                    let end = ends[i]
                    guard end != UInt32.max else {
                        let start = i == 0 ? 0 : payloads.ends[i - 1]
                        fallback(i, UnsafeRawBufferPointer(rebasing: arena[start..<payloads.ends[i]]), &out)
                        continue
                    }
                    let origin = payloads.origins[i]
                    while next < Int(end) {
                        let r = records[next]
                        next += 1
                        var record = SampleRecord(type: MetricType(rawValue: UInt8(r.type_code))!, origin: origin, value: r.value,
                                                  name: ByteSpan(start: b + r.name_start, count: r.name_count))
                        record.help = r.help_count == 0 ? .empty : ByteSpan(start: b + r.help_start, count: r.help_count)
                        record.labelStart = lb + r.label_start
                        record.labelCount = r.label_count
                        record.buckets = numbers(r.buckets_start, r.buckets_count)
                        record.quantiles = numbers(r.quantiles_start, r.quantiles_count)
                        record.epsilons = numbers(r.epsilons_start, r.epsilons_count)
                        if r.counts_count > 0 {
                            record.shape = .binned
                            record.bins = numbers(r.counts_start, r.counts_count)
                        }
                        out.records.append(record)
                    }
                }
            }
        }
    }
}
