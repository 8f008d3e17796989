import Pipeline

extension DropReason {
    /// An OTLP point this gateway cannot aggregate: a non-monotonic delta sum, an
    /// unspecified temporality, a histogram whose buckets do not add up.
    public static let unsupportedPoint = DropReason("unsupported_point")
    /// A cumulative point older than what its stream already counted (a retried export).
    public static let stalePoint = DropReason("stale_point")
    /// The cumulative stream table is full (`max_streams`).
    public static let streamLimit = DropReason("stream_limit")
}

/// Turns an OTLP export into samples, following Prometheus's OTLP translation:
///
/// | OTLP | sample |
/// |---|---|
/// | Gauge | gauge (last wins) |
/// | Sum, monotonic | counter, `_total` |
/// | Sum, not monotonic, cumulative | gauge (last wins) |
/// | Histogram | histogram, explicit buckets (`BinnedHistogram`) |
/// | ExponentialHistogram | native histogram (`ExponentialHistogram`) |
/// | Summary | its quantiles as gauges `{quantile=…}`; `_sum`, `_count` as counters |
///
/// Delta points add directly; cumulative ones go through the `StreamTable` first.
/// Labels: `job` from `service.namespace`/`service.name`, the `resource_attributes`
/// promoted, then the point's attributes (which win a clash). A point that cannot be
/// mapped becomes a dropped sample (counted, logged) and counts as rejected in the response.
struct OTLPMapping: Sendable {
    var promoted: [String]
    var table: StreamTable

    struct Result: Sendable {
        var samples = SampleBatch()
        var rejected = 0
        var firstRejection: String?
        var baselines = 0
        var drops: [(Int, DropReason)] = []
        var pointCount = 0
    }

    /// A point's sample before the stream table has seen it.
    private struct Pending {
        var record: Int
        var key: StreamKey
        var start: UInt64
        var time: UInt64
        var value: CumulativePoint
    }

    func map(_ export: OTLPExport, origin: UInt16) -> Result {
        var out = Result()
        var pending: [Pending] = []
        var keys = StreamKeyBuilder()
        for resource in export.resources {
            let base = resourceLabels(resource.attributes)
            for scope in resource.scopes {
                for metric in scope.metrics {
                    let counter = metric.kind == .sum && metric.monotonic
                    let name = OTLPNames.metric(metric.name, unit: metric.unit, counter: counter, gauge: metric.kind == .gauge)
                    for point in metric.points {
                        out.pointCount += 1
                        if point.noRecordedValue { continue }
                        let labels = merged(base, point.attributes)
                        let cumulative = metric.temporality == .cumulative || metric.kind == .summary
                        var key = StreamKey(a: 0, b: 0)
                        if cumulative && metric.kind != .gauge && !(metric.kind == .sum && !metric.monotonic) {
                            keys.reset()
                            keys.add(resource.attributes); keys.add(scope.name); keys.add(scope.version); keys.add(metric.name)
                            keys.add("\(metric.kind.map { "\($0)" } ?? "")"); keys.add(point.attributes)
                            key = keys.key
                        }
                        emit(metric, name: name, point: point, labels: labels, key: key, origin: origin, into: &out, pending: &pending)
                    }
                }
            }
        }
        resolve(pending, into: &out)
        return out
    }

    private func emit(_ m: OTLPMetric, name: String, point p: OTLPPoint, labels: [(String, String)], key: StreamKey, origin: UInt16,
                      into out: inout Result, pending: inout [Pending]) {
        func reject(_ type: MetricType, _ reason: DropReason, _ why: String) {
            let i = record(type, name: name, value: p.value, help: m.description, labels: labels, origin: origin, into: &out.samples)
            out.drops.append((i, reason))
            out.rejected += 1
            if out.firstRejection == nil { out.firstRejection = "metric `\(m.name)`: \(why)" }
        }
        /// A histogram's sample: added as it is (delta), or once the stream table made it a delta.
        func histogramPoint(_ value: CumulativePoint) {
            switch m.temporality {
            case .delta: histogram(value, name: name, m: m, p: p, labels: labels, origin: origin, into: &out.samples)
            case .cumulative:
                let i = histogram(value, name: name, m: m, p: p, labels: labels, origin: origin, into: &out.samples)
                pending.append(Pending(record: i, key: key, start: p.startTime, time: p.time, value: value))
            case .unspecified: reject(.histogram, .unsupportedPoint, "aggregation temporality unspecified")
            }
        }
        switch m.kind {
        case nil:
            break
        case .gauge?:
            _ = record(.gauge, name: name, value: p.value, help: m.description, labels: labels, origin: origin, into: &out.samples)
        case .sum? where !m.monotonic:
            guard m.temporality == .cumulative else { return reject(.gauge, .unsupportedPoint, "a non-monotonic sum must be cumulative") }
            _ = record(.gauge, name: name, value: p.value, help: m.description, labels: labels, origin: origin, into: &out.samples)
        case .sum?:
            switch m.temporality {
            case .delta:
                let i = record(.counter, name: name, value: p.value, help: m.description, labels: labels, origin: origin, into: &out.samples)
                exemplar(p, into: &out.samples, record: i)
            case .cumulative:
                let i = record(.counter, name: name, value: 0, help: m.description, labels: labels, origin: origin, into: &out.samples)
                exemplar(p, into: &out.samples, record: i)
                pending.append(Pending(record: i, key: key, start: p.startTime, time: p.time, value: .number(p.value)))
            case .unspecified: reject(.counter, .unsupportedPoint, "aggregation temporality unspecified")
            }
        case .histogram?:
            let buckets = p.bucketCounts.isEmpty ? [p.count] : p.bucketCounts
            guard buckets.count == p.bounds.count + 1, !p.bounds.contains(where: { $0.isNaN }) else {
                return reject(.histogram, .unsupportedPoint, "\(p.bucketCounts.count) bucket counts for \(p.bounds.count) bounds")
            }
            guard Self.adds(up: buckets, to: p.count) else { return reject(.histogram, .unsupportedPoint, "count is not the buckets' sum") }
            // OTLP's bounds are strictly increasing; out of order, the counts would land in the wrong buckets.
            guard zip(p.bounds, p.bounds.dropFirst()).allSatisfy({ $0 < $1 }) else {
                return reject(.histogram, .unsupportedPoint, "bounds not strictly increasing")
            }
            let value = CumulativePoint.histogram(count: p.count, sum: p.hasValue ? p.value : 0, bounds: p.bounds, buckets: buckets)
            histogramPoint(value)
        case .exponentialHistogram?:
            guard ExponentialHistogram.scales.contains(Int(p.scale)), abs(p.positiveOffset) <= ExponentialHistogram.maxOffset,
                  abs(p.negativeOffset) <= ExponentialHistogram.maxOffset else {
                return reject(.histogram, .unsupportedPoint, "scale \(p.scale) or a bucket offset out of range")
            }
            guard Self.adds(up: [p.zeroCount] + p.positive + p.negative, to: p.count) else {
                return reject(.histogram, .unsupportedPoint, "count is not the zero bucket's and the buckets' sum")
            }
            let value = CumulativePoint.exponential(ExponentialCounts(
                count: p.count, sum: p.hasValue ? p.value : 0, scale: Int(p.scale), zeroCount: p.zeroCount, zeroThreshold: p.zeroThreshold,
                positiveOffset: Int(p.positiveOffset), positive: p.positive, negativeOffset: Int(p.negativeOffset), negative: p.negative))
            histogramPoint(value)
        case .summary?:
            for (q, v) in p.quantiles {
                _ = record(.gauge, name: name, value: v, help: m.description, labels: labels + [("quantile", OTLPText.double(q))],
                           origin: origin, into: &out.samples)
            }
            let sum = record(.counter, name: name + "_sum", value: 0, help: m.description, labels: labels, origin: origin, into: &out.samples)
            _ = record(.counter, name: name + "_count", value: 0, help: m.description, labels: labels, origin: origin, into: &out.samples)
            pending.append(Pending(record: sum, key: key, start: p.startTime, time: p.time, value: .summary(count: p.count, sum: p.value)))
        }
    }

    /// Sets every cumulative point's delta (or drops it) in one pass over the table.
    private func resolve(_ pending: [Pending], into out: inout Result) {
        guard !pending.isEmpty else { return }
        table.step(pending.map { ($0.key, $0.start, $0.time, $0.value) }) { n, step in
            let p = pending[n]
            switch step {
            case nil:
                drop(p.record, .streamLimit, summary: p.value, into: &out)
                out.rejected += 1
                if out.firstRejection == nil { out.firstRejection = "the stream table is full (max_streams)" }
            case .stale?:
                drop(p.record, .stalePoint, summary: p.value, into: &out)
            case .baseline?:
                drop(p.record, nil, summary: p.value, into: &out)
                out.baselines += 1
            case .add(let delta, _)?:
                set(p.record, delta, into: &out.samples)
            }
        }
    }

    /// Drops a cumulative point's record(s) — with a reason, or silently (a baseline adds nothing).
    private func drop(_ i: Int, _ reason: DropReason?, summary value: CumulativePoint, into out: inout Result) {
        let n = if case .summary = value { 2 } else { 1 }
        for k in i..<(i + n) {
            if let reason { out.drops.append((k, reason)) } else { out.samples.records[k].isDropped = true }
        }
    }

    private func set(_ i: Int, _ delta: CumulativePoint, into s: inout SampleBatch) {
        switch delta {
        case .number(let v): s.records[i].value = v
        case .summary(let count, let sum): s.records[i].value = sum; s.records[i + 1].value = Double(count)
        case .histogram(let count, let sum, _, let buckets):
            s.records[i].value = sum
            s.records[i].bins = s.appendNumbers(BinnedHistogram(count: Double(count), counts: ArraySlice(buckets.map { Double($0) })).numbers)
        case .exponential(let e):
            s.records[i].value = e.sum
            s.records[i].bins = s.appendNumbers(Self.exponential(e).numbers)
        }
    }

    @discardableResult
    private func histogram(_ value: CumulativePoint, name: String, m: OTLPMetric, p: OTLPPoint, labels: [(String, String)], origin: UInt16,
                           into s: inout SampleBatch) -> Int {
        let i = record(.histogram, name: name, value: 0, help: m.description, labels: labels, origin: origin, into: &s)
        if case .histogram(_, _, let bounds, _) = value {
            s.records[i].shape = .binned
            s.records[i].buckets = s.appendNumbers(bounds)
        } else {
            s.records[i].shape = .exponential
        }
        set(i, value, into: &s)
        exemplar(p, into: &s, record: i)
        return i
    }

    /// OTLP requires a histogram's count to be its buckets' sum; a count the store could not add
    /// exactly as a double is refused, by the store's own bound.
    static func adds(up counts: [UInt64], to count: UInt64) -> Bool {
        var sum: UInt64 = 0
        for c in counts {
            let (s, overflow) = sum.addingReportingOverflow(c)
            guard !overflow else { return false }
            sum = s
        }
        return sum == count && BinnedHistogram.isExactTotal(Double(count))   // 2^53 and above round to at least 2^53
    }

    static func exponential(_ e: ExponentialCounts) -> ExponentialHistogram {
        ExponentialHistogram(count: Double(e.count), scale: e.scale, zeroThreshold: e.zeroThreshold, zeroCount: Double(e.zeroCount),
                             positiveOffset: e.positiveOffset, positive: e.positive.map { Double($0) },
                             negativeOffset: e.negativeOffset, negative: e.negative.map { Double($0) })
    }

    private func record(_ type: MetricType, name: String, value: Double, help: String, labels: [(String, String)], origin: UInt16,
                        into s: inout SampleBatch) -> Int {
        var r = SampleRecord(type: type, origin: origin, value: value, name: s.appendString(name))
        if !help.isEmpty { r.help = s.appendString(help) }
        r.labelStart = UInt32(s.labels.count)
        for (n, v) in labels where !v.isEmpty { s.labels.append(LabelRef(name: s.appendString(n), value: s.appendString(v))) }
        r.labelCount = UInt32(s.labels.count) - r.labelStart
        s.records.append(r)
        return s.records.count - 1
    }

    /// The point's last exemplar: `trace_id`, `span_id` (when they have OTLP's sizes) and its
    /// filtered attributes, while they fit OpenMetrics' 128 characters.
    private func exemplar(_ p: OTLPPoint, into s: inout SampleBatch, record i: Int) {
        guard let e = p.exemplars.last else { return }
        var pairs: [(String, String)] = []
        // OTLP's ids are 16 and 8 bytes; others are not ids (and a long one alone broke the 128).
        if e.traceID.count == 16 { pairs.append(("trace_id", OTLPText.hex(e.traceID))) }
        if e.spanID.count == 8 { pairs.append(("span_id", OTLPText.hex(e.spanID))) }
        // OpenMetrics counts code points, not Swift's characters.
        var length = pairs.reduce(0) { $0 + $1.0.unicodeScalars.count + $1.1.unicodeScalars.count }
        for (k, v) in e.attributes {
            let name = OTLPNames.label(k), n = name.unicodeScalars.count + v.unicodeScalars.count
            guard NameSyntax.isUsableLabelName(name), length + n <= 128, !pairs.contains(where: { $0.0 == name }) else { continue }
            pairs.append((name, v)); length += n
        }
        guard !pairs.isEmpty else { return }
        let start = UInt32(s.labels.count)
        for (n, v) in pairs { s.labels.append(LabelRef(name: s.appendString(n), value: s.appendString(v))) }
        s.exemplars.append(ExemplarRef(labelStart: start, labelCount: UInt32(pairs.count), value: e.value,
                                       timestamp: e.time == 0 ? .nan : Double(e.time) / 1e9))
        s.records[i].exemplar = UInt32(s.exemplars.count)
    }

    /// `job` and the promoted resource attributes.
    func resourceLabels(_ attributes: OTLPAttributes) -> [(String, String)] {
        var out: [(String, String)] = []
        let name = attributes.last { $0.key == "service.name" }?.value ?? ""
        let namespace = attributes.last { $0.key == "service.namespace" }?.value ?? ""
        if !name.isEmpty { out.append(("job", namespace.isEmpty ? name : "\(namespace)/\(name)")) }
        for key in promoted {
            if let v = attributes.last(where: { $0.key == key })?.value { out.append((OTLPNames.label(key), v)) }
        }
        return out
    }

    /// Resource labels, then the point's attributes as labels (a clash after sanitizing
    /// joins the values with `;` in key order, as Prometheus does; the point wins over the resource).
    func merged(_ base: [(String, String)], _ attributes: OTLPAttributes) -> [(String, String)] {
        var point: [(String, String)] = []
        for (k, v) in attributes.sorted(by: { $0.key < $1.key }) {
            let name = OTLPNames.label(k)
            if let j = point.firstIndex(where: { $0.0 == name }) { point[j].1 += ";" + v } else { point.append((name, v)) }
        }
        // Sorted by name, as the series key wants them (sort_labels and the store then find nothing to do).
        var all = base.filter { b in !point.contains { $0.0 == b.0 } } + point
        if !zip(all, all.dropFirst()).allSatisfy({ $0.0.0 < $0.1.0 }) { all.sort { $0.0 < $1.0 } }
        return all
    }
}
