import Pipeline

/// `io.prometheus.client.MetricFamily` messages (`metrics.proto`), each preceded by
/// its length as a varint — what Prometheus asks for to get native histograms.
///
/// Encoded by hand, straight from the store's columns into the page buffer: the
/// format is six small messages, and swift-protobuf would cost every clean build
/// ~28 s (debug, measured) plus an object per series at every scrape. Repeated
/// scalars are written unpacked (proto2's default, which every parser reads).
/// Classic buckets carry finite upper bounds (the `+Inf` one is `sample_count`, as
/// client_golang writes it; it is written only when it holds an exemplar); a
/// native histogram adds schema, zero bucket, spans and deltas, and in
/// `exemplars` those of its exemplars that have a timestamp (Prometheus requires
/// one there).
public enum ProtobufFormat {
    /// Reused buffers for nested messages.
    struct Scratch {
        var family: [UInt8] = []
        var metric: [UInt8] = []
        var body: [UInt8] = []
        var item: [UInt8] = []
        var inner: [UInt8] = []
    }

    enum FamilyType: UInt64 { case counter = 0, gauge = 1, summary = 2, histogram = 4 }

    static func familyType(_ t: MetricType) -> FamilyType {
        switch t {
        case .counter: .counter
        case .gauge: .gauge
        case .summary: .summary
        case .histogram: .histogram
        }
    }

    static func render(_ f: Family, order: [Int32], to out: inout [UInt8], scratch: inout Scratch) {
        scratch.family.removeAll(keepingCapacity: true)
        f.name.withUnsafeBytes { bytesField(1, $0, to: &scratch.family) }
        if f.help.isEmpty {
            stringField(2, Exposition.defaultHelp, to: &scratch.family)
        } else {
            f.help.withUnsafeBytes { bytesField(2, $0, to: &scratch.family) }
        }
        varintField(3, familyType(f.type).rawValue, to: &scratch.family)
        let nb = f.bounds.count, k = f.objectives.count
        let plainValues = (f.type == .counter || f.type == .gauge) && f.exemplars.isEmpty
        f.withLabelTexts { texts in
            for s32 in order {
                let s = Int(s32)
                if plainValues {
                    // The common case, written in place: Metric{labels, counter|gauge{value}}.
                    let key = texts.text(s)
                    let labels = labelPairsLength(ofKey: key)
                    tag(4, 2, to: &scratch.family)
                    varint(UInt64(labels + 11), to: &scratch.family)
                    labelPairs(ofKey: key, field: 1, to: &scratch.family)
                    tag(f.type == .counter ? 3 : 2, 2, to: &scratch.family)
                    varint(9, to: &scratch.family)
                    doubleField(1, f.values[s], to: &scratch.family)
                    continue
                }
                scratch.metric.removeAll(keepingCapacity: true)
                labelPairs(ofKey: texts.text(s), field: 1, to: &scratch.metric)
                scratch.body.removeAll(keepingCapacity: true)
                let exemplars = f.exemplars.isEmpty ? [] : f.exemplars[s]
                switch f.type {
                case .counter:
                    doubleField(1, f.values[s], to: &scratch.body)
                    if let e = exemplars.first ?? nil { exemplar(e, field: 2, to: &scratch.body, inner: &scratch.inner) }
                    message(3, scratch.body, to: &scratch.metric)
                case .gauge:
                    doubleField(1, f.values[s], to: &scratch.body)
                    message(2, scratch.body, to: &scratch.metric)
                case .summary:
                    varintField(1, UInt64(f.counts[s]), to: &scratch.body)
                    doubleField(2, f.values[s], to: &scratch.body)
                    if !f.quantiles.isEmpty {
                        for j in 0..<k {
                            scratch.item.removeAll(keepingCapacity: true)
                            doubleField(1, f.objectives[j].0, to: &scratch.item)
                            doubleField(2, f.quantiles[s * k + j], to: &scratch.item)
                            message(3, scratch.item, to: &scratch.body)
                        }
                    }
                    message(4, scratch.body, to: &scratch.metric)
                case .histogram:
                    varintField(1, UInt64(f.counts[s]), to: &scratch.body)
                    doubleField(2, f.values[s], to: &scratch.body)
                    var cumulative: Double = 0
                    for b in 0..<nb {
                        cumulative += f.bucketCounts[s * (nb + 1) + b]
                        scratch.item.removeAll(keepingCapacity: true)
                        varintField(1, UInt64(cumulative), to: &scratch.item)
                        doubleField(2, f.bounds[b], to: &scratch.item)
                        if b < exemplars.count, let e = exemplars[b] { exemplar(e, field: 3, to: &scratch.item, inner: &scratch.inner) }
                        message(3, scratch.item, to: &scratch.body)
                    }
                    // The `+Inf` bucket is implied by sample_count; written only to carry its exemplar.
                    if nb > 0, nb < exemplars.count, let e = exemplars[nb] {
                        scratch.item.removeAll(keepingCapacity: true)
                        varintField(1, UInt64(f.counts[s]), to: &scratch.item)
                        doubleField(2, .infinity, to: &scratch.item)
                        exemplar(e, field: 3, to: &scratch.item, inner: &scratch.inner)
                        message(3, scratch.item, to: &scratch.body)
                    }
                    if let options = f.native {
                        let n = f.natives[s]
                        sintField(5, Int64(n.schema), to: &scratch.body)
                        doubleField(6, options.zeroThreshold, to: &scratch.body)
                        varintField(7, n.zeroCount, to: &scratch.body)
                        spans(n.negative, spanField: 9, deltaField: 10, to: &scratch.body, item: &scratch.item)
                        if n.positive.count == 0 && n.negative.count == 0 {
                            message(12, [], to: &scratch.body)   // an empty span marks it native, as client_golang does
                        } else {
                            spans(n.positive, spanField: 12, deltaField: 13, to: &scratch.body, item: &scratch.item)
                        }
                        for case let e? in exemplars where !e.timestamp.isNaN { exemplar(e, field: 16, to: &scratch.body, inner: &scratch.inner) }
                    }
                    message(7, scratch.body, to: &scratch.metric)
                }
                message(4, scratch.metric, to: &scratch.family)
            }
        }
        varint(UInt64(scratch.family.count), to: &out)
        out.append(contentsOf: scratch.family)
    }

    static func render(_ m: MetaFamily, to out: inout [UInt8], scratch: inout Scratch) {
        scratch.family.removeAll(keepingCapacity: true)
        stringField(1, m.name, to: &scratch.family)
        stringField(2, m.help, to: &scratch.family)
        varintField(3, familyType(m.type).rawValue, to: &scratch.family)
        for s in m.samples {
            scratch.metric.removeAll(keepingCapacity: true)
            for (name, value) in s.labels {
                scratch.item.removeAll(keepingCapacity: true)
                stringField(1, name, to: &scratch.item)
                stringField(2, value, to: &scratch.item)
                message(1, scratch.item, to: &scratch.metric)
            }
            scratch.body.removeAll(keepingCapacity: true)
            doubleField(1, s.value, to: &scratch.body)
            message(m.type == .counter ? 3 : 2, scratch.body, to: &scratch.metric)
            message(4, scratch.metric, to: &scratch.family)
        }
        varint(UInt64(scratch.family.count), to: &out)
        out.append(contentsOf: scratch.family)
    }

    private static func spans(_ b: SparseBuckets, spanField: Int, deltaField: Int, to out: inout [UInt8], item: inout [UInt8]) {
        let (spans, deltas) = b.spansAndDeltas()
        for span in spans {
            item.removeAll(keepingCapacity: true)
            sintField(1, Int64(span.offset), to: &item)
            varintField(2, UInt64(span.length), to: &item)
            message(spanField, item, to: &out)
        }
        for d in deltas { sintField(deltaField, d, to: &out) }
    }

    private static func exemplar(_ e: Exemplar, field: Int, to out: inout [UInt8], inner: inout [UInt8]) {
        inner.removeAll(keepingCapacity: true)
        e.labels.withUnsafeBytes { labelPairs(ofKey: $0, field: 1, to: &inner) }
        doubleField(2, e.value, to: &inner)
        if !e.timestamp.isNaN {
            // The decoder allows [0, 1e11); whatever a custom stage set must not trap the conversion.
            let seconds = max(-1e15, min(1e15, e.timestamp.rounded(.down)))
            var ts: [UInt8] = []
            varintField(1, UInt64(bitPattern: Int64(seconds)), to: &ts)
            // Microseconds: all a double holds of the fraction of a present-day Unix time.
            let micros = min(999_999, max(0, ((e.timestamp - seconds) * 1e6).rounded()))
            varintField(2, UInt64(micros) * 1000, to: &ts)
            message(3, ts, to: &inner)
        }
        message(field, inner, to: &out)
    }

    /// The bytes `labelPairs(ofKey:field:to:)` writes for `key` (field numbers < 16).
    static func labelPairsLength(ofKey key: UnsafeRawBufferPointer) -> Int {
        var total = 0, i = 0
        while i < key.count {
            let nameStart = i
            while i < key.count, key[i] != 0x3D { i += 1 }
            let nameLength = i - nameStart
            i += 2
            var valueLength = 0
            while i < key.count, key[i] != 0x22 { i += key[i] == 0x5C ? 2 : 1; valueLength += 1 }
            i += 2
            let pair = 1 + varintSize(UInt64(nameLength)) + nameLength + 1 + varintSize(UInt64(valueLength)) + valueLength
            total += 1 + varintSize(UInt64(pair)) + pair
        }
        return total
    }

    /// `LabelPair` messages from exposition label text (`a="x",b="y\"z"`), unescaping
    /// values on the way.
    static func labelPairs(ofKey key: UnsafeRawBufferPointer, field: Int, to out: inout [UInt8]) {
        var i = 0
        while i < key.count {
            let nameStart = i
            while i < key.count, key[i] != 0x3D { i += 1 }
            let nameEnd = i
            i += 2   // `="`
            let valueStart = i
            var valueLength = 0
            while i < key.count, key[i] != 0x22 {
                i += key[i] == 0x5C ? 2 : 1
                valueLength += 1
            }
            let valueEnd = i
            i += 2   // `",`
            let nameLength = nameEnd - nameStart
            let pairLength = 1 + varintSize(UInt64(nameLength)) + nameLength + 1 + varintSize(UInt64(valueLength)) + valueLength
            tag(field, 2, to: &out)
            varint(UInt64(pairLength), to: &out)
            bytesField(1, UnsafeRawBufferPointer(rebasing: key[nameStart..<nameEnd]), to: &out)
            tag(2, 2, to: &out)
            varint(UInt64(valueLength), to: &out)
            if valueLength == valueEnd - valueStart {   // nothing escaped: one copy
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: key[valueStart..<valueEnd]))
                continue
            }
            var j = valueStart
            while j < valueEnd {
                if key[j] == 0x5C, j + 1 < valueEnd {
                    out.append(key[j + 1] == 0x6E ? 0x0A : key[j + 1])
                    j += 2
                } else {
                    out.append(key[j]); j += 1
                }
            }
        }
    }

    // MARK: Wire primitives (public: a remote-write encoder writes with them too)

    @inline(__always)
    public static func varint(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    @inline(__always)
    public static func varintSize(_ v: UInt64) -> Int { v == 0 ? 1 : (64 - v.leadingZeroBitCount + 6) / 7 }

    @inline(__always)
    public static func tag(_ field: Int, _ wireType: Int, to out: inout [UInt8]) { varint(UInt64(field << 3 | wireType), to: &out) }

    public static func varintField(_ field: Int, _ v: UInt64, to out: inout [UInt8]) { tag(field, 0, to: &out); varint(v, to: &out) }

    /// `sint32`/`sint64`: zigzag, then varint.
    public static func sintField(_ field: Int, _ v: Int64, to out: inout [UInt8]) {
        tag(field, 0, to: &out)
        varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)), to: &out)
    }

    public static func doubleField(_ field: Int, _ v: Double, to out: inout [UInt8]) {
        tag(field, 1, to: &out)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) }
    }

    public static func bytesField(_ field: Int, _ b: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        tag(field, 2, to: &out)
        varint(UInt64(b.count), to: &out)
        out.append(contentsOf: b)
    }

    public static func stringField(_ field: Int, _ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytesField(field, UnsafeRawBufferPointer($0), to: &out) }
    }

    public static func message(_ field: Int, _ body: [UInt8], to out: inout [UInt8]) {
        body.withUnsafeBytes { bytesField(field, $0, to: &out) }
    }
}
