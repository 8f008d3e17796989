import Aggregation
import Pipeline

/// The aggregate as remote-write 1.0 `prometheus.WriteRequest` messages (uncompressed
/// protobuf), cut every `maxSamplesPerSend` samples and histograms: exactly the
/// series a Prometheus scraping the text page would store, at one timestamp.
///
/// Counters and gauges are one series each; a histogram `_bucket{le}` (cumulative,
/// `+Inf` included), `_sum` and `_count`; a summary `{quantile}`, `_sum`, `_count`; a
/// family kept native also sends one native histogram under its bare name (field
/// `histograms`), as Prometheus with `scrape_classic_histograms` stores both.
/// Labels are sorted by name, `__name__` among them; an external label is added
/// where the series has no label of that name. Each family's type and help go in
/// `metadata` of the request carrying its first series.
///
/// With `tracking`, the encoded label set of every series sent is recorded, so that
/// series that are gone (expired) get one staleness marker (`stale(_:)`).
struct WriteRequestEncoder {
    struct Request {
        var body: [UInt8] = []
        var samples = 0
        var histograms = 0
    }

    /// Prometheus's staleness marker: a NaN no arithmetic produces.
    static let staleNaN = Double(bitPattern: 0x7ff0_0000_0000_0002)

    let externalLabels: [(name: [UInt8], value: [UInt8])]
    let maxSamplesPerSend: Int
    let sendNative: Bool
    let sendMetadata: Bool
    private(set) var request = Request()
    /// The encoded labels of each series this round (when tracking).
    private(set) var sent: Set<[UInt8]>?
    private var labels: [UInt8] = []
    private var bytes: [UInt8] = []
    private var base: [(name: Range<Int>, value: Range<Int>)] = []
    private var pairs: [(name: Range<Int>, value: Range<Int>)] = []
    private var series: [UInt8] = []
    private var item: [UInt8] = []
    private var inner: [UInt8] = []

    init(externalLabels: [(String, String)], maxSamplesPerSend: Int, tracking: Bool, sendNative: Bool = true, sendMetadata: Bool = true) {
        self.sendNative = sendNative
        self.sendMetadata = sendMetadata
        self.externalLabels = externalLabels.map { (Array($0.0.utf8), Array($0.1.utf8)) }.sorted { $0.name.lexicographicallyPrecedes($1.name) }
        self.maxSamplesPerSend = max(1, maxSamplesPerSend)
        sent = tracking ? [] : nil
    }

    /// Every series of `families` at `timestamp` (ms), handing each full request to `emit`.
    mutating func encode(_ families: [Family], timestamp: Int64, emit: (Request) -> Void) {
        for f in families where f.seriesCount > 0 {
            if sendMetadata { metadata(f) }
            let le = f.bounds.map(Self.formatted) + [Self.formatted(.infinity)]
            let quantiles = f.objectives.map { Self.formatted($0.0) }
            let nb = f.bounds.count, k = f.objectives.count
            f.withLabelTexts { texts in
                for s in 0..<f.seriesCount {
                    parseBase(texts.text(s))
                    switch f.type {
                    case .counter, .gauge:
                        sample(f.name, nil, nil, f.values[s], timestamp)
                    case .histogram:
                        var cumulative: Double = 0
                        for b in 0..<nb {
                            cumulative += f.bucketCounts[s * (nb + 1) + b]
                            sample(f.name, "_bucket", ("le", le[b]), cumulative, timestamp)
                        }
                        sample(f.name, "_bucket", ("le", le[nb]), f.counts[s], timestamp)
                        sample(f.name, "_sum", nil, f.values[s], timestamp)
                        sample(f.name, "_count", nil, f.counts[s], timestamp)
                        if sendNative, let options = f.native {
                            native(f.name, f.natives[s], options, sum: f.values[s], count: f.counts[s], timestamp)
                        }
                    case .summary:
                        if !f.quantiles.isEmpty {
                            for j in 0..<k { sample(f.name, nil, ("quantile", quantiles[j]), f.quantiles[s * k + j], timestamp) }
                        }
                        sample(f.name, "_sum", nil, f.values[s], timestamp)
                        sample(f.name, "_count", nil, f.counts[s], timestamp)
                    }
                    if request.samples + request.histograms >= maxSamplesPerSend { flush(emit) }
                }
            }
        }
    }

    /// One staleness marker for each series in `gone` (encoded labels), then the rest of the request.
    mutating func stale(_ gone: some Sequence<[UInt8]>, timestamp: Int64, emit: (Request) -> Void) {
        for labels in gone {
            series.removeAll(keepingCapacity: true)
            series.append(contentsOf: labels)
            item.removeAll(keepingCapacity: true)
            ProtobufFormat.doubleField(1, Self.staleNaN, to: &item)
            ProtobufFormat.varintField(2, UInt64(bitPattern: timestamp), to: &item)
            ProtobufFormat.message(2, item, to: &series)
            ProtobufFormat.message(1, series, to: &request.body)
            request.samples += 1
            if request.samples >= maxSamplesPerSend { flush(emit) }
        }
    }

    mutating func flush(_ emit: (Request) -> Void) {
        if !request.body.isEmpty { emit(request) }
        request.body.removeAll(keepingCapacity: true)
        request.samples = 0
        request.histograms = 0
    }

    /// `MetricMetadata{type, metric_family_name, help}` (remote-write's type numbers).
    private mutating func metadata(_ f: Family) {
        item.removeAll(keepingCapacity: true)
        let type: UInt64 = switch f.type {
        case .counter: 1
        case .gauge: 2
        case .histogram: 3
        case .summary: 5
        }
        ProtobufFormat.varintField(1, type, to: &item)
        f.name.withUnsafeBytes { ProtobufFormat.bytesField(2, $0, to: &item) }
        if f.help.isEmpty {
            ProtobufFormat.stringField(4, Exposition.defaultHelp, to: &item)
        } else {
            f.help.withUnsafeBytes { ProtobufFormat.bytesField(4, $0, to: &item) }
        }
        ProtobufFormat.message(3, item, to: &request.body)
    }

    /// The series' own labels, unescaped, kept for each series it sends: straight from the
    /// label text (`a="x",b="y\"z"`) into `bytes`, no array per label.
    private mutating func parseBase(_ text: UnsafeRawBufferPointer) {
        bytes.removeAll(keepingCapacity: true)
        base.removeAll(keepingCapacity: true)
        var i = 0
        while i < text.count {
            let n0 = bytes.count, nameStart = i
            while i < text.count, text[i] != 0x3D { i += 1 }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: text[nameStart..<i]))
            i += 2   // `="`
            let v0 = bytes.count
            var runStart = i
            while i < text.count, text[i] != 0x22 {
                if text[i] == 0x5C, i + 1 < text.count {
                    bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: text[runStart..<i]))
                    bytes.append(text[i + 1] == 0x6E ? 0x0A : text[i + 1])
                    i += 2
                    runStart = i
                } else {
                    i += 1
                }
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: text[runStart..<min(i, text.count)]))
            i += 2   // `",`
            base.append((n0..<v0, v0..<bytes.count))
        }
    }

    /// `labels` ← the encoded, sorted label set of one series.
    private mutating func encodeLabels(_ name: [UInt8], _ suffix: StaticString?, _ extra: (StaticString, [UInt8])?) {
        let mark = bytes.count
        pairs.removeAll(keepingCapacity: true)
        pairs.append(contentsOf: base)
        func add(_ n: some Collection<UInt8>, _ v: some Collection<UInt8>) {
            let n0 = bytes.count
            bytes.append(contentsOf: n)
            let v0 = bytes.count
            bytes.append(contentsOf: v)
            pairs.append((n0..<v0, v0..<bytes.count))
        }
        let nameStart = bytes.count
        bytes.append(contentsOf: "__name__".utf8)
        let valueStart = bytes.count
        bytes.append(contentsOf: name)
        if let suffix { suffix.withUTF8Buffer { bytes.append(contentsOf: $0) } }
        pairs.append((nameStart..<valueStart, valueStart..<bytes.count))
        if let (n, v) = extra { n.withUTF8Buffer { add($0, v) } }
        for (n, v) in externalLabels where !base.contains(where: { bytes[$0.name].elementsEqual(n) }) { add(n, v) }
        labels.removeAll(keepingCapacity: true)
        bytes.withUnsafeBufferPointer { b in
            pairs.sort { b[$0.name].lexicographicallyPrecedes(b[$1.name]) }
            let raw = UnsafeRawBufferPointer(b)
            for p in pairs {
                let n = p.name.count, v = p.value.count
                ProtobufFormat.tag(1, 2, to: &labels)
                ProtobufFormat.varint(UInt64(2 + ProtobufFormat.varintSize(UInt64(n)) + n + ProtobufFormat.varintSize(UInt64(v)) + v), to: &labels)
                ProtobufFormat.bytesField(1, UnsafeRawBufferPointer(rebasing: raw[p.name]), to: &labels)
                ProtobufFormat.bytesField(2, UnsafeRawBufferPointer(rebasing: raw[p.value]), to: &labels)
            }
        }
        bytes.removeSubrange(mark...)
        if sent != nil { sent!.insert(labels) }
    }

    private mutating func sample(_ name: [UInt8], _ suffix: StaticString?, _ extra: (StaticString, [UInt8])?, _ value: Double, _ timestamp: Int64) {
        encodeLabels(name, suffix, extra)
        // TimeSeries{labels, samples: [Sample{value, timestamp}]}, written in place.
        let sampleLength = 9 + 1 + ProtobufFormat.varintSize(UInt64(bitPattern: timestamp))
        ProtobufFormat.tag(1, 2, to: &request.body)
        ProtobufFormat.varint(UInt64(labels.count + 2 + sampleLength), to: &request.body)
        request.body.append(contentsOf: labels)
        ProtobufFormat.tag(2, 2, to: &request.body)
        ProtobufFormat.varint(UInt64(sampleLength), to: &request.body)
        ProtobufFormat.doubleField(1, value, to: &request.body)
        ProtobufFormat.varintField(2, UInt64(bitPattern: timestamp), to: &request.body)
        request.samples += 1
    }

    /// `Histogram{count_int, sum, schema, zero_threshold, zero_count_int, spans, deltas, timestamp}`.
    private mutating func native(_ name: [UInt8], _ h: NativeHistogram, _ options: NativeHistogramOptions, sum: Double, count: Double,
                                 _ timestamp: Int64) {
        encodeLabels(name, nil, nil)
        series.removeAll(keepingCapacity: true)
        series.append(contentsOf: labels)
        item.removeAll(keepingCapacity: true)
        ProtobufFormat.varintField(1, UInt64(max(0, count)), to: &item)
        ProtobufFormat.doubleField(3, sum, to: &item)
        ProtobufFormat.sintField(4, Int64(h.schema), to: &item)
        ProtobufFormat.doubleField(5, options.zeroThreshold, to: &item)
        ProtobufFormat.varintField(6, h.zeroCount, to: &item)
        buckets(h.negative, spanField: 8, deltaField: 9)
        buckets(h.positive, spanField: 11, deltaField: 12)
        ProtobufFormat.varintField(15, UInt64(bitPattern: timestamp), to: &item)
        ProtobufFormat.message(4, item, to: &series)
        ProtobufFormat.message(1, series, to: &request.body)
        request.histograms += 1
    }

    /// Spans, then the deltas packed (proto3's repeated sint64).
    private mutating func buckets(_ b: SparseBuckets, spanField: Int, deltaField: Int) {
        guard b.count > 0 else { return }
        let (spans, deltas) = b.spansAndDeltas()
        for span in spans {
            inner.removeAll(keepingCapacity: true)
            ProtobufFormat.sintField(1, Int64(span.offset), to: &inner)
            ProtobufFormat.varintField(2, UInt64(span.length), to: &inner)
            ProtobufFormat.message(spanField, inner, to: &item)
        }
        inner.removeAll(keepingCapacity: true)
        for d in deltas { ProtobufFormat.varint(UInt64(bitPattern: (d << 1) ^ (d >> 63)), to: &inner) }
        ProtobufFormat.message(deltaField, inner, to: &item)
    }

    static func formatted(_ v: Double) -> [UInt8] { var t: [UInt8] = []; TextFormat.appendFloat(v, to: &t); return t }
}
