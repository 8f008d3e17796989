/// A byte range inside `SampleBatch.bytes`.
public struct ByteSpan: Sendable, Hashable {
    public var start: UInt32
    public var count: UInt32
    public init(start: UInt32, count: UInt32) { self.start = start; self.count = count }
    public static let empty = ByteSpan(start: 0, count: 0)
    public var isEmpty: Bool { count == 0 }
}

extension UnsafeRawBufferPointer {
    /// The bytes of `span` inside this arena (a batch's `bytes`, borrowed).
    @inlinable @inline(__always)
    public subscript(span span: ByteSpan) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[Int(span.start)..<Int(span.start + span.count)])
    }
}

/// One label: name and value as spans of the batch's byte arena.
public struct LabelRef: Sendable {
    public var name: ByteSpan
    public var value: ByteSpan
    public init(name: ByteSpan, value: ByteSpan) { self.name = name; self.value = value }
}

/// A range of the batch's `numbers` (buckets, quantiles, epsilons).
public struct NumberSpan: Sendable {
    public var start: UInt32
    public var count: UInt32
    public init(start: UInt32, count: UInt32) { self.start = start; self.count = count }
    public static let empty = NumberSpan(start: 0, count: 0)
}

/// An exemplar: a trace's labels (in the batch's `labels`), the observed value,
/// and when (Unix seconds; NaN: not given). Checked by the decoder: label names
/// valid, names and values 128 UTF-8 characters at most in all.
public struct ExemplarRef: Sendable {
    public var labelStart: UInt32
    public var labelCount: UInt32
    public var value: Double
    public var timestamp: Double
    public init(labelStart: UInt32, labelCount: UInt32, value: Double, timestamp: Double) {
        self.labelStart = labelStart; self.labelCount = labelCount; self.value = value; self.timestamp = timestamp
    }
    public var labelRange: Range<Int> { Int(labelStart)..<Int(labelStart + labelCount) }
}

/// One decoded measurement. Strings and lists live in the owning `SampleBatch`.
public struct SampleRecord: Sendable {
    public var type: MetricType
    /// Set by `Batch.drop`; later stages and sinks skip dropped samples.
    public var isDropped: Bool = false
    /// Where the payload came from (see `Telemetry.registerOrigin`).
    public var origin: UInt16
    /// A histogram's data: one observation (`value`), or a delta the sender already
    /// counted into buckets (`bins`). Sits in padding: records stay 72 bytes.
    public var shape: HistogramShape = .observation
    public var value: Double
    public var name: ByteSpan
    public var help: ByteSpan = .empty
    /// Range in `SampleBatch.labels`.
    public var labelStart: UInt32 = 0
    public var labelCount: UInt32 = 0
    public var buckets: NumberSpan = .empty
    public var quantiles: NumberSpan = .empty
    public var epsilons: NumberSpan = .empty
    /// 1 + index in `SampleBatch.exemplars`; 0: none.
    public var exemplar: UInt32 = 0

    public init(type: MetricType, origin: UInt16, value: Double, name: ByteSpan) {
        self.type = type
        self.origin = origin
        self.value = value
        self.name = name
    }

    @inlinable
    public var labelRange: Range<Int> { Int(labelStart)..<Int(labelStart + labelCount) }

    /// A pre-aggregated histogram's bins (`BinnedHistogram`, `ExponentialHistogram`):
    /// kept in the `quantiles` span, which a histogram has no other use for.
    public var bins: NumberSpan {
        get { shape == .observation ? .empty : quantiles }
        set { quantiles = newValue }
    }
}

/// Decoded samples in a columnar arena: every string of the batch is a span of one
/// byte buffer, every label a pair of spans, every bucket list a span of one `[Double]`.
/// Decoding a thousand samples therefore allocates a handful of buffers, not
/// thousands of `String`s and dictionaries.
///
/// Stages that rewrite strings append the new bytes and repoint the span; the old
/// bytes stay until the batch is released. The `String` conveniences at the bottom
/// are for custom stages where clarity beats speed.
public struct SampleBatch: Sendable {
    public var bytes: [UInt8] = []
    public var records: [SampleRecord] = []
    public var labels: [LabelRef] = []
    public var numbers: [Double] = []
    public var exemplars: [ExemplarRef] = []

    public init() {}

    /// The exemplar of sample `i`, if it has one.
    @inlinable
    public func exemplar(of record: SampleRecord) -> ExemplarRef? {
        record.exemplar == 0 ? nil : exemplars[Int(record.exemplar) - 1]
    }

    public var count: Int { records.count }

    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        records.removeAll(keepingCapacity: true)
        labels.removeAll(keepingCapacity: true)
        numbers.removeAll(keepingCapacity: true)
        exemplars.removeAll(keepingCapacity: true)
    }

    /// Copies `raw` into the arena.
    @inlinable
    public mutating func appendBytes(_ raw: UnsafeRawBufferPointer) -> ByteSpan {
        let start = UInt32(bytes.count)
        bytes.append(contentsOf: raw)
        return ByteSpan(start: start, count: UInt32(raw.count))
    }

    public mutating func appendBytes<S: Sequence>(_ raw: S) -> ByteSpan where S.Element == UInt8 {
        let start = bytes.count
        bytes.append(contentsOf: raw)
        return ByteSpan(start: UInt32(start), count: UInt32(bytes.count - start))
    }

    public mutating func appendString(_ s: String) -> ByteSpan {
        var s = s
        return s.withUTF8 { appendBytes(UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    public func withBytes<R>(_ span: ByteSpan, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { all in
            try body(all[span: span])
        }
    }

    public func string(_ span: ByteSpan) -> String {
        withBytes(span) { String(decoding: $0, as: UTF8.self) }
    }

    public func equal(_ span: ByteSpan, _ literal: String) -> Bool {
        withBytes(span) { $0.elementsEqual(literal.utf8) }
    }

    /// Appends every sample of `other`, its strings, labels, lists and exemplars
    /// re-pointed into this batch (a source merging small batches into one).
    public mutating func append(contentsOf other: SampleBatch) {
        let byteBase = UInt32(bytes.count), labelBase = UInt32(labels.count)
        let numberBase = UInt32(numbers.count), exemplarBase = UInt32(exemplars.count)
        func text(_ s: ByteSpan) -> ByteSpan { s.count == 0 ? s : ByteSpan(start: s.start + byteBase, count: s.count) }
        func list(_ s: NumberSpan) -> NumberSpan { s.count == 0 ? s : NumberSpan(start: s.start + numberBase, count: s.count) }
        bytes.append(contentsOf: other.bytes)
        numbers.append(contentsOf: other.numbers)
        labels.reserveCapacity(labels.count + other.labels.count)
        for l in other.labels { labels.append(LabelRef(name: text(l.name), value: text(l.value))) }
        for e in other.exemplars {
            exemplars.append(ExemplarRef(labelStart: e.labelStart + labelBase, labelCount: e.labelCount, value: e.value, timestamp: e.timestamp))
        }
        records.reserveCapacity(records.count + other.records.count)
        for var r in other.records {
            r.name = text(r.name); r.help = text(r.help)
            r.labelStart += labelBase
            r.buckets = list(r.buckets); r.quantiles = list(r.quantiles); r.epsilons = list(r.epsilons)
            if r.exemplar != 0 { r.exemplar += exemplarBase }
            records.append(r)
        }
    }

    public mutating func appendNumbers(_ values: [Double]) -> NumberSpan {
        let start = UInt32(numbers.count)
        numbers.append(contentsOf: values)
        return NumberSpan(start: start, count: UInt32(values.count))
    }

    public func numbers(_ span: NumberSpan) -> ArraySlice<Double> {
        numbers[Int(span.start)..<Int(span.start + span.count)]
    }

    /// Sample `i` as one short line for logs: `name{a="x"} value`, at most 160
    /// bytes, control bytes escaped.
    public func excerpt(_ i: Int) -> String {
        let r = records[i]
        var raw: [UInt8] = []
        bytes.withUnsafeBytes { arena in
            raw.append(contentsOf: arena[span: r.name])
            if r.labelCount > 0 {
                raw.append(0x7B)
                for l in r.labelRange {
                    if l > r.labelRange.lowerBound { raw.append(0x2C) }
                    raw.append(contentsOf: arena[span: labels[l].name])
                    raw.append(contentsOf: "=\"".utf8)
                    raw.append(contentsOf: arena[span: labels[l].value])
                    raw.append(0x22)
                }
                raw.append(0x7D)
            }
        }
        raw.append(contentsOf: " \(r.type.name) \(r.value)".utf8)
        return raw.withUnsafeBytes { RateLimitedLog.excerpt($0) }
    }

    // MARK: Conveniences for custom stages

    /// The metric name of sample `i`.
    public func name(at i: Int) -> String { string(records[i].name) }

    /// The labels of sample `i`, in their current order.
    public func labels(at i: Int) -> [(name: String, value: String)] {
        records[i].labelRange.map { (string(labels[$0].name), string(labels[$0].value)) }
    }

    /// The value of label `name` on sample `i`, if present.
    public func label(_ name: String, at i: Int) -> String? {
        for l in records[i].labelRange where equal(labels[l].name, name) {
            return string(labels[l].value)
        }
        return nil
    }

    /// Sets (adds or replaces) label `name` on sample `i`. An empty value removes it,
    /// as in Prometheus.
    public mutating func setLabel(_ name: String, _ value: String, at i: Int) {
        var current = labels(at: i).filter { $0.name != name }
        if !value.isEmpty { current.append((name, value)) }
        replaceLabels(current, at: i)
    }

    /// Replaces all labels of sample `i` (the old entries stay unused in the arena).
    public mutating func replaceLabels(_ pairs: [(name: String, value: String)], at i: Int) {
        let start = UInt32(labels.count)
        for (n, v) in pairs {
            labels.append(LabelRef(name: appendString(n), value: appendString(v)))
        }
        records[i].labelStart = start
        records[i].labelCount = UInt32(pairs.count)
    }
}
