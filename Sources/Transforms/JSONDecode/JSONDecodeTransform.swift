import CJansson
import CSimdJSON
import Glibc
import Logging
import Pipeline

/// Decodes queue elements (the wire format) into samples with jansson.
///
/// An element is one JSON object or an array of objects. Fields: `type`, `name`,
/// `value` (required), `labels`, `help`, `buckets`, `counts`, `quantiles`, `epsilons`,
/// `exemplar`; other fields are ignored. A histogram with `counts` is a delta the sender
/// already counted into its `buckets` (one count per bucket, the last for `+Inf`; `value`
/// is the observations' sum); its record is `binned`, laid out as `BinnedHistogram`. `type` is matched case-insensitively and may be the .NET
/// enum's number (0 counter, 1 gauge, 2 summary, 3 histogram). Every number is a
/// double, however many digits it has. `labels: []` (PHP's empty map) means no
/// labels. Label values that are numbers or booleans become text (shortest
/// round-trip form, `3` not `3.0`; `true`/`false`). A missing `type`, `name` or
/// `value` drops the sample (`missing_field`) — unlike the .NET reader, which
/// silently makes it a counter 0.
///
/// Checks only what decoding needs (JSON types, sizes); name syntax, reserved labels
/// and value ranges are `validate`'s job. Every failure drops the payload or sample
/// with a reason and a note; the runtime counts and logs it (rate-limited).
/// Duplicate keys, invalid UTF-8, `NaN`/`Infinity` literals and nesting deeper than
/// 2048 are invalid JSON.
///
/// `exemplar` (`{"labels": {…}, "value": n, "timestamp": seconds}`, counters and
/// histograms) is checked whole here — label names, string values, 128 UTF-8
/// characters of names and values at most (OpenMetrics), finite numbers — because
/// a bad exemplar drops only itself, never the sample: it is counted in
/// `prom_stream_gateway_dropped_exemplars_total{reason}` and logged (rate-limited).
public struct JSONDecodeConfig: StageConfig {
    public static let type = "json_decode"
    public static let role = StageRole.transform
    public static let summary = "Decodes JSON queue elements (an object or an array of objects) into samples."
    public static let inputKind: ItemKind? = .payloads
    public static let outputKind: ItemKind? = .samples
    public static let example = "max_payload_bytes: 64KiB\nmax_labels: 32\n"

    public static let defaultMaxPayloadBytes = 1 << 20
    public static let defaultMaxSamplesPerPayload = 10_000
    public static let defaultMaxLabels = 64
    public static let defaultMaxNameBytes = 1024
    public static let defaultMaxLabelNameBytes = 1024
    public static let defaultMaxLabelValueBytes = 4096
    public static let defaultMaxHelpBytes = 4096
    public static let defaultMaxBuckets = 256
    public static let defaultMaxQuantiles = 32

    /// Larger elements are dropped (`payload_too_large`) before parsing.
    public var maxPayloadBytes: Int
    public var payloadLimit: (key: String, bytes: Int)? { ("max_payload_bytes", maxPayloadBytes) }
    /// Larger array batches are dropped whole (`too_many_samples`).
    public var maxSamplesPerPayload: Int
    /// More labels drop the sample (`too_many_labels`).
    public var maxLabels: Int
    /// Longer names drop the sample (`too_long`); so do the limits below.
    public var maxNameBytes: Int
    public var maxLabelNameBytes: Int
    public var maxLabelValueBytes: Int
    public var maxHelpBytes: Int
    public var maxBuckets: Int
    public var maxQuantiles: Int
    /// Which JSON parser decodes the elements.
    public var parser: Parser
    /// With `simdjson`, whether the scanner goes before On-Demand; off only in the tests
    /// that hold On-Demand to jansson on its own. Not an option.
    package var scanner = true

    /// `simdjson` decodes what it can decode exactly as `jansson` would — well-formed
    /// samples with the known fields only — and hands every other element to the
    /// jansson path, so the two give the same samples, drops and notes for every input.
    public enum Parser: String, Sendable, CaseIterable { case jansson, simdjson }

    public init(options o: OptionReader) {
        maxPayloadBytes = o.byteSize("max_payload_bytes", default: Self.defaultMaxPayloadBytes, doc:
            "Largest queue element; larger ones are dropped as `payload_too_large`.")
        maxSamplesPerPayload = o.int("max_samples_per_payload", default: Self.defaultMaxSamplesPerPayload, range: 1...10_000_000, doc:
            "Most samples in one array element; more drops the element as `too_many_samples`.")
        maxLabels = o.int("max_labels", default: Self.defaultMaxLabels, range: 0...10_000, doc:
            "Most labels on one sample; more drops it as `too_many_labels`.")
        maxNameBytes = o.int("max_name_bytes", default: Self.defaultMaxNameBytes, range: 1...1 << 20, doc:
            "Longest metric name; longer drops the sample as `too_long`.")
        maxLabelNameBytes = o.int("max_label_name_bytes", default: Self.defaultMaxLabelNameBytes, range: 1...1 << 20, doc:
            "Longest label name (`too_long`).")
        maxLabelValueBytes = o.int("max_label_value_bytes", default: Self.defaultMaxLabelValueBytes, range: 0...1 << 24, doc:
            "Longest label value (`too_long`).")
        maxHelpBytes = o.int("max_help_bytes", default: Self.defaultMaxHelpBytes, range: 0...1 << 24, doc: "Longest help text (`too_long`).")
        maxBuckets = o.int("max_buckets", default: Self.defaultMaxBuckets, range: 1...100_000, doc: "Most histogram buckets (`too_long`).")
        maxQuantiles = o.int("max_quantiles", default: Self.defaultMaxQuantiles, range: 1...10_000, doc: "Most summary quantiles (`too_long`).")
        parser = o.choice("parser", default: Parser.jansson, doc:
            "jansson, or simdjson: a one-pass scanner, then simdjson's On-Demand API, for well-formed samples of the known fields, jansson for "
            + "every other element (invalid, dropping something, an exemplar, an unknown field), so both decode every input alike "
            + "(Metrics__JsonParser).")
    }

    public func makeStage(context: StageContext) throws -> Stage {
        .transform(JSONDecodeTransform(config: self, context: context))
    }
}

public final class JSONDecodeTransform: Transform {
    let config: JSONDecodeConfig
    let exemplarDrops: ExemplarDrops
    /// One simdjson parser per worker (nil with `parser: jansson`).
    let simd: WorkerSlots<SimdJSONParser>?
    let simdLimits: psg_simd_limits
    /// Elements the simdjson path handed to jansson.
    public let fallbacks = MetaCounter()
    /// Elements the simdjson path's scanner decoded, over all workers (for tests).
    package var scanned: Int { simd.map { slots in (0..<slots.count).reduce(0) { sum, w in sum + slots.with(w) { $0.scanned } } } ?? 0 }
    /// The largest payload buffer worth handing back for reuse (`BatchBuffers`).
    private let memoryShare: Int

    public init(config: JSONDecodeConfig, context: StageContext) {
        self.config = config
        memoryShare = context.memoryBudget.readShare
        exemplarDrops = ExemplarDrops(context: context)
        simd = config.parser == .simdjson ? WorkerSlots(count: max(1, context.workers)) { _ in SimdJSONParser(scanner: config.scanner) } : nil
        simdLimits = psg_simd_limits(max_samples: config.maxSamplesPerPayload, max_labels: config.maxLabels, max_name: config.maxNameBytes,
                                     max_label_name: config.maxLabelNameBytes, max_label_value: config.maxLabelValueBytes,
                                     max_help: config.maxHelpBytes, max_buckets: config.maxBuckets, max_quantiles: config.maxQuantiles)
        if simd != nil {
            let fallbacks = fallbacks
            context.addCollector {
                [MetaFamily(name: Telemetry.prefix + "json_decode_fallbacks_total",
                            help:
                                "Elements parser: simdjson handed to jansson (invalid, dropping something, an exemplar, an unknown field, a "
                                + "null, a non-string label value, a long number).",
                            type: .counter, samples: [MetaSample(labels: [], value: Double(fallbacks.value))])]
            }
        }
    }

    public func process(_ batch: inout Batch, worker: Int) {
        guard batch.kind == .payloads else { return }
        var out = BatchBuffers.takeSamples(batch.payloads.count, bytes: batch.payloads.bytes.count)
        let payloads = batch.payloads
        if let simd {
            simd.with(worker) { parser in
                parser.decode(payloads, maxPayload: config.maxPayloadBytes, limits: simdLimits, into: &out) { i, raw, out in
                    fallbacks.add()
                    decode(raw, origin: payloads.origins[i], into: &out, drops: &batch.drops)
                }
            }
        } else {
            for i in 0..<payloads.count {
                let origin = payloads.origins[i]
                payloads.withPayload(i) { raw in decode(raw, origin: origin, into: &out, drops: &batch.drops) }
            }
        }
        let drops = batch.drops
        batch = Batch(samples: out)
        batch.drops = drops
        BatchBuffers.recycle(payloads, share: memoryShare)   // the last reference: the source's next batch reuses its memory
    }

    /// Decodes one element into `out`; whatever is dropped (the element, or
    /// samples of an array) is counted into `drops` with a note for the log.
    func decode(_ raw: UnsafeRawBufferPointer, origin: UInt16, into out: inout SampleBatch, drops: inout DropTally) {
        if let cut = OversizedElement.parse(raw) {   // the source read only its first bytes
            drops.add(origin: origin, reason: .payloadTooLarge,
                      note: "\(cut.size) bytes (over the source's max_element_bytes: not read): \(RateLimitedLog.excerpt(cut.prefix))",
                      payload: Array(cut.prefix))
            return
        }
        guard raw.count <= config.maxPayloadBytes else {
            drops.add(origin: origin, reason: .payloadTooLarge,
                      note: "\(raw.count) bytes (max_payload_bytes is \(config.maxPayloadBytes)): \(RateLimitedLog.excerpt(raw))",
                      payload: Array(raw.prefix(DeadLetterConfig.maxPayloadBytes)))
            return
        }
        let parsed: Void? = JSONDocument.parse(raw) { root in
            switch JSONType(root) {
            case .object:
                if let reason = decodeSample(root, origin: origin, into: &out) {
                    drops.add(origin: origin, reason: reason, note: RateLimitedLog.excerpt(raw),
                            payload: Array(raw.prefix(DeadLetterConfig.maxPayloadBytes)))
                }
            case .array:
                let n = json_array_size(root)
                guard n <= config.maxSamplesPerPayload else {
                    drops.add(origin: origin, reason: .tooManySamples,
                              note: "an array of \(n) samples (max_samples_per_payload is \(config.maxSamplesPerPayload))",
                              payload: Array(raw.prefix(DeadLetterConfig.maxPayloadBytes)))
                    return
                }
                for j in 0..<n {
                    let item = json_array_get(root, j)!
                    if let reason = JSONType(item) == .object ? decodeSample(item, origin: origin, into: &out) : .notAnObject {
                        drops.add(origin: origin, reason: reason, note: "sample \(j) of an array: \(RateLimitedLog.excerpt(raw))",
                                  payload: Array(raw.prefix(DeadLetterConfig.maxPayloadBytes)))
                    }
                }
            default:
                drops.add(origin: origin, reason: .notAnObject, note: RateLimitedLog.excerpt(raw),
                        payload: Array(raw.prefix(DeadLetterConfig.maxPayloadBytes)))
            }
        }
        if parsed == nil {
            drops.add(origin: origin, reason: .invalidJSON, note: "\(JSONDocument.errorMessage(for: raw)): \(RateLimitedLog.excerpt(raw))",
                      payload: Array(raw.prefix(DeadLetterConfig.maxPayloadBytes)))
        }
    }

    /// Appends one sample; on failure rolls the arena back and returns the reason.
    func decodeSample(_ object: UnsafeMutablePointer<json_t>, origin: UInt16, into out: inout SampleBatch) -> DropReason? {
        let mark = (bytes: out.bytes.count, labels: out.labels.count, numbers: out.numbers.count)
        var type: MetricType?
        var name: ByteSpan?
        var value: Double?
        var help = ByteSpan.empty
        var labelStart = UInt32(out.labels.count), labelCount: UInt32 = 0
        var buckets = NumberSpan.empty, quantiles = NumberSpan.empty, epsilons = NumberSpan.empty, counts = NumberSpan.empty
        var failure: DropReason?
        var exemplar: (ref: ExemplarRef, valueGiven: Bool)?
        var exemplarProblem: ExemplarDrops.Reason?

        var iter = json_object_iter(object)
        fieldLoop: while let it = iter {
            let key = UnsafeRawBufferPointer(start: json_object_iter_key(it), count: json_object_iter_key_len(it))
            let v = json_object_iter_value(it)!
            iter = json_object_iter_next(object, it)
            switch key.count {
            case 4 where key.equals("type"):
                switch JSONType(v) {
                case .string:
                    guard let t = MetricType(bytes: stringBytes(v)) else { failure = .unknownType; break fieldLoop }
                    type = t
                case .real, .integer:   // the .NET enum's numbers
                    guard let t = MetricType(dotNetNumber: json_number_value(v)) else { failure = .unknownType; break fieldLoop }
                    type = t
                default: failure = .wrongFieldType; break fieldLoop
                }
            case 4 where key.equals("name"):
                guard JSONType(v) == .string else { failure = .wrongFieldType; break fieldLoop }
                let s = stringBytes(v)
                guard s.count <= config.maxNameBytes else { failure = .tooLong; break fieldLoop }
                name = out.appendBytes(s)
            case 5 where key.equals("value"):
                switch JSONType(v) {
                case .integer, .real: value = json_number_value(v)
                default: failure = .wrongFieldType; break fieldLoop
                }
            case 4 where key.equals("help"):
                switch JSONType(v) {
                case .string:
                    let s = stringBytes(v)
                    guard s.count <= config.maxHelpBytes else { failure = .tooLong; break fieldLoop }
                    help = out.appendBytes(s)
                case .null: break
                default: failure = .wrongFieldType; break fieldLoop
                }
            case 6 where key.equals("labels"):
                switch JSONType(v) {
                case .object:
                    labelStart = UInt32(out.labels.count)
                    if let r = decodeLabels(v, into: &out) { failure = r; break fieldLoop }
                    labelCount = UInt32(out.labels.count) - labelStart
                case .null: break
                // PHP's json_encode writes an empty map as `[]`: no labels.
                case .array where json_array_size(v) == 0: break
                default: failure = .wrongFieldType; break fieldLoop
                }
            case 7 where key.equals("buckets"):
                switch decodeNumbers(v, max: config.maxBuckets, into: &out) {
                case .success(let span): buckets = span
                case .failure(let wrap): failure = wrap.reason == .wrongFieldType ? .badBuckets : wrap.reason; break fieldLoop
                }
            case 6 where key.equals("counts"):
                if JSONType(v) == .null { break }
                let slot = out.numbers.count
                out.numbers.append(0)   // the total in front of the buckets' counts: `BinnedHistogram`'s layout
                switch decodeNumbers(v, max: config.maxBuckets + 1, into: &out) {
                case .success(let span):
                    counts = NumberSpan(start: UInt32(slot), count: span.count + 1)
                    out.numbers[slot] = out.numbers[(slot + 1)...].reduce(0, +)
                case .failure(let wrap): failure = wrap.reason == .wrongFieldType ? .badBuckets : wrap.reason; break fieldLoop
                }
            case 8 where key.equals("exemplar"):
                if JSONType(v) == .null { break }
                switch decodeExemplar(v, into: &out) {
                case .success(let e): exemplar = e
                case .failure(let problem): exemplarProblem = problem.reason
                }
            case 9 where key.equals("quantiles"), 8 where key.elementsEqual("epsilons".utf8):
                switch decodeNumbers(v, max: config.maxQuantiles, into: &out) {
                case .success(let span): if key.count == 9 { quantiles = span } else { epsilons = span }
                case .failure(let wrap): failure = wrap.reason == .wrongFieldType ? .badQuantiles : wrap.reason; break fieldLoop
                }
            default:
                continue
            }
        }
        if failure == nil, type == nil || name == nil || value == nil { failure = .missingField }
        if let failure {
            out.bytes.removeSubrange(mark.bytes...)
            out.labels.removeSubrange(mark.labels...)
            out.numbers.removeSubrange(mark.numbers...)
            return failure
        }
        var record = SampleRecord(type: type!, origin: origin, value: value!, name: name!)
        record.help = help
        record.labelStart = labelStart
        record.labelCount = labelCount
        record.buckets = buckets
        record.quantiles = quantiles
        record.epsilons = epsilons
        if record.type == .histogram && counts.count > 0 {
            record.shape = .binned
            record.bins = counts
        }
        if var e = exemplar {
            if record.shape == .binned && !e.valueGiven {
                exemplarProblem = .invalid   // the sample's value is a sum, not an observation to stand for
            } else if record.type == .counter || record.type == .histogram {
                if !e.valueGiven { e.ref.value = record.value }
                out.exemplars.append(e.ref)
                record.exemplar = UInt32(out.exemplars.count)
            } else {
                exemplarProblem = .unsupportedType
            }
        }
        if let exemplarProblem { exemplarDrops.count(exemplarProblem, sample: out, record: record) }
        out.records.append(record)
        return nil
    }

    private struct ExemplarFailure: Error { var reason: ExemplarDrops.Reason }

    /// An exemplar object; its labels go into `out.labels` (removed again on failure).
    private func decodeExemplar(_ v: UnsafeMutablePointer<json_t>, into out: inout SampleBatch) -> Result<(ref: ExemplarRef, valueGiven: Bool),
            ExemplarFailure> {
        guard JSONType(v) == .object else { return .failure(ExemplarFailure(reason: .invalid)) }
        let mark = (bytes: out.bytes.count, labels: out.labels.count)
        func fail(_ r: ExemplarDrops.Reason) -> Result<(ref: ExemplarRef, valueGiven: Bool), ExemplarFailure> {
            out.bytes.removeSubrange(mark.bytes...)
            out.labels.removeSubrange(mark.labels...)
            return .failure(ExemplarFailure(reason: r))
        }
        var ref = ExemplarRef(labelStart: UInt32(out.labels.count), labelCount: 0, value: .nan, timestamp: .nan)
        var valueGiven = false
        var characters = 0
        var iter = json_object_iter(v)
        while let it = iter {
            let key = UnsafeRawBufferPointer(start: json_object_iter_key(it), count: json_object_iter_key_len(it))
            let field = json_object_iter_value(it)!
            iter = json_object_iter_next(v, it)
            if key.equals("labels") {
                guard JSONType(field) == .object else { return fail(.invalid) }
                ref.labelStart = UInt32(out.labels.count)
                var li = json_object_iter(field)
                while let l = li {
                    let name = UnsafeRawBufferPointer(start: json_object_iter_key(l), count: json_object_iter_key_len(l))
                    let value = json_object_iter_value(l)!
                    li = json_object_iter_next(field, l)
                    guard NameSyntax.isValidLabelName(name), JSONType(value) == .string else { return fail(.invalid) }
                    let text = stringBytes(value)
                    characters += name.count + Self.utf8Characters(text)
                    guard characters <= ExemplarDrops.maxCharacters else { return fail(.tooLong) }
                    out.labels.append(LabelRef(name: out.appendBytes(name), value: out.appendBytes(text)))
                }
                ref.labelCount = UInt32(out.labels.count) - ref.labelStart
            } else if key.equals("value") {
                guard JSONType(field) == .integer || JSONType(field) == .real, json_number_value(field).isFinite else { return fail(.invalid) }
                ref.value = json_number_value(field)
                valueGiven = true
            } else if key.equals("timestamp") {
                guard JSONType(field) == .integer || JSONType(field) == .real else { return fail(.invalid) }
                let t = json_number_value(field)
                guard t >= 0, t < ExemplarDrops.maxTimestamp else { return fail(.invalid) }
                ref.timestamp = t
            }
        }
        return .success((ref, valueGiven))
    }

    /// UTF-8 characters (code points) in valid UTF-8: the bytes that do not continue one.
    static func utf8Characters(_ b: UnsafeRawBufferPointer) -> Int {
        var n = 0
        for c in b where c & 0xC0 != 0x80 { n += 1 }
        return n
    }

    private func decodeLabels(_ object: UnsafeMutablePointer<json_t>, into out: inout SampleBatch) -> DropReason? {
        guard json_object_size(object) <= config.maxLabels else { return .tooManyLabels }
        var iter = json_object_iter(object)
        while let it = iter {
            let key = UnsafeRawBufferPointer(start: json_object_iter_key(it), count: json_object_iter_key_len(it))
            let v = json_object_iter_value(it)!
            iter = json_object_iter_next(object, it)
            guard key.count <= config.maxLabelNameBytes else { return .tooLong }
            let nameSpan = out.appendBytes(key)
            let valueSpan: ByteSpan
            switch JSONType(v) {
            case .string:
                let s = stringBytes(v)
                guard s.count <= config.maxLabelValueBytes else { return .tooLong }
                valueSpan = out.appendBytes(s)
            case .integer, .real: valueSpan = out.appendString(formatShortest(json_number_value(v)))
            case .true: valueSpan = out.appendBytes("true".utf8)
            case .false: valueSpan = out.appendBytes("false".utf8)
            default: return .wrongFieldType
            }
            out.labels.append(LabelRef(name: nameSpan, value: valueSpan))
        }
        return nil
    }

    private struct Failure: Error { var reason: DropReason }

    private func decodeNumbers(_ v: UnsafeMutablePointer<json_t>, max: Int, into out: inout SampleBatch) -> Result<NumberSpan, Failure> {
        if JSONType(v) == .null { return .success(.empty) }
        guard JSONType(v) == .array else { return .failure(Failure(reason: .wrongFieldType)) }
        let n = json_array_size(v)
        guard n <= max else { return .failure(Failure(reason: .tooLong)) }
        let start = UInt32(out.numbers.count)
        for i in 0..<n {
            let item = json_array_get(v, i)!
            switch JSONType(item) {
            case .integer, .real: out.numbers.append(json_number_value(item))
            default: return .failure(Failure(reason: .wrongFieldType))
            }
        }
        return .success(NumberSpan(start: start, count: UInt32(n)))
    }

    @inline(__always)
    private func stringBytes(_ v: UnsafeMutablePointer<json_t>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: json_string_value(v), count: json_string_length(v))
    }
}

/// Shortest round-trip text of a finite Double, without a trailing `.0`
/// (`1.5`, `3`, `1e+21`): how a JSON number used as a label value reads.
func formatShortest(_ v: Double) -> String {
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return v.description
}

extension UnsafeRawBufferPointer {
    /// Byte equality with a literal, without the generic `elementsEqual` path.
    @inline(__always)
    func equals(_ literal: StaticString) -> Bool {
        count == literal.utf8CodeUnitCount && (count == 0 || memcmp(baseAddress!, literal.utf8Start, count) == 0)
    }
}
