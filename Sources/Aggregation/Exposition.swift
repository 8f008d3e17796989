import Pipeline
import Synchronization

/// Renders the store and the meta-metrics in one of the `ExpositionFormat`s
/// (text 0.0.4 here; `OpenMetricsFormat`, `ProtobufFormat`): families sorted by
/// name, series by label text, help and type for each.
///
/// Keeps the sorted series order of every family between scrapes (series are only
/// ever appended, so new ones are sorted and merged in), and one output buffer.
/// Concurrent scrapes render one at a time.
public final class Exposition: Sendable {
    /// HELP for a family whose samples never carried one (promtool wants one).
    public static let defaultHelp = "Pushed through prom-stream-gateway without a help text."

    private struct State {
        var order: [[UInt8]: (generation: Int, order: [Int32])] = [:]
        var buffer: [UInt8] = []
    }
    private let state = Mutex(State())   // serialises renders
    let store: MetricStore
    let meta: @Sendable () -> [MetaFamily]

    public init(store: MetricStore, meta: @escaping @Sendable () -> [MetaFamily]) {
        self.store = store
        self.meta = meta
    }

    public func render(_ format: ExpositionFormat = .text) -> [UInt8] {
        let families = store.snapshot()
        let metaFamilies = meta()
        return state.withLock { st in
            st.buffer.removeAll(keepingCapacity: true)
            // Merge user and meta families by name.
            var entries: [(name: [UInt8], user: Int?, meta: Int?)] = []
            entries.reserveCapacity(families.count + metaFamilies.count)
            for (i, f) in families.enumerated() where f.series.count > 0 { entries.append((f.name, i, nil)) }
            for (i, m) in metaFamilies.enumerated() { entries.append((Array(m.name.utf8), nil, i)) }
            entries.sort { $0.name.lexicographicallyPrecedes($1.name) }
            var scratch = ProtobufFormat.Scratch()
            for e in entries {
                if let u = e.user {
                    let order = sortedOrder(families[u], cache: &st.order)
                    switch format {
                    case .text: Self.render(families[u], order: order, to: &st.buffer)
                    case .openMetrics: OpenMetricsFormat.render(families[u], order: order, to: &st.buffer)
                    case .protobuf: ProtobufFormat.render(families[u], order: order, to: &st.buffer, scratch: &scratch)
                    }
                } else if let m = e.meta {
                    switch format {
                    case .text: Self.render(metaFamilies[m], to: &st.buffer)
                    case .openMetrics: OpenMetricsFormat.render(metaFamilies[m], to: &st.buffer)
                    case .protobuf: ProtobufFormat.render(metaFamilies[m], to: &st.buffer, scratch: &scratch)
                    }
                }
            }
            if format == .openMetrics { TextFormat.append("# EOF\n", to: &st.buffer) }
            return st.buffer
        }
    }

    private func sortedOrder(_ f: Family, cache: inout [[UInt8]: (generation: Int, order: [Int32])]) -> [Int32] {
        let n = f.series.count
        var order = cache[f.name].flatMap { $0.generation == f.generation ? $0.order : nil } ?? []
        if order.count > n { order = [] }
        if order.count == n { return order }
        let keys = f.series, schemas = f.schemas
        var scratch: ([UInt8], [UInt8]) = ([], [])
        func less(_ a: Int32, _ b: Int32) -> Bool {
            keys.withKey(Int(a)) { x in keys.withKey(Int(b)) { y in SeriesKey.textPrecedes(x, y, schemas: schemas, scratch: &scratch) } }
        }
        var fresh = (Int32(order.count)..<Int32(n)).map { $0 }
        fresh.sort(by: less)
        var merged: [Int32] = []
        merged.reserveCapacity(n)
        var i = 0, j = 0
        while i < order.count || j < fresh.count {
            if j == fresh.count || (i < order.count && !less(fresh[j], order[i])) {
                merged.append(order[i]); i += 1
            } else {
                merged.append(fresh[j]); j += 1
            }
        }
        cache[f.name] = (f.generation, merged)
        return merged
    }

    /// `# HELP` (escaped as text 0.0.4 does, or as OpenMetrics does: `"` too) and `# TYPE`.
    static func header(name: UnsafeRawBufferPointer, help: UnsafeRawBufferPointer, type: MetricType, openMetrics: Bool = false,
                       to out: inout [UInt8]) {
        TextFormat.append("# HELP ", to: &out)
        out.append(contentsOf: name)
        out.append(0x20)
        if help.isEmpty {
            TextFormat.append(defaultHelp, to: &out)
        } else if openMetrics {
            TextFormat.appendLabelValue(help, to: &out)
        } else {
            TextFormat.appendHelp(help, to: &out)
        }
        TextFormat.append("\n# TYPE ", to: &out)
        out.append(contentsOf: name)
        out.append(0x20)
        TextFormat.append(type.name, to: &out)
        out.append(0x0A)
    }

    /// `name[suffix]{labels[,extraName="extraValue"]} value[ # {exemplar} value[ timestamp]]\n`
    /// (exemplars only in OpenMetrics).
    @inline(__always)
    static func line(_ name: UnsafeRawBufferPointer, _ suffix: StaticString?, labels: UnsafeRawBufferPointer,
                     extra: StaticString? = nil, extraText: [UInt8] = [], value: Double, exemplar: Exemplar? = nil,
                     to out: inout [UInt8]) {
        out.append(contentsOf: name)
        if let suffix { TextFormat.append(suffix, to: &out) }
        if !labels.isEmpty || extra != nil {
            out.append(0x7B)
            out.append(contentsOf: labels)
            if let extra {
                if !labels.isEmpty { out.append(0x2C) }
                TextFormat.append(extra, to: &out)
                TextFormat.append("=\"", to: &out)
                out.append(contentsOf: extraText)
                out.append(0x22)
            }
            out.append(0x7D)
        }
        out.append(0x20)
        TextFormat.appendFloat(value, to: &out)
        if let exemplar {
            TextFormat.append(" # {", to: &out)
            out.append(contentsOf: exemplar.labels)
            TextFormat.append("} ", to: &out)
            TextFormat.appendFloat(exemplar.value, to: &out)
            if !exemplar.timestamp.isNaN {
                out.append(0x20)
                TextFormat.appendTimestamp(exemplar.timestamp, to: &out)
            }
        }
        out.append(0x0A)
    }

    static func render(_ f: Family, order: [Int32], to out: inout [UInt8]) {
        f.name.withUnsafeBytes { name in
            f.help.withUnsafeBytes { help in header(name: name, help: help, type: f.type, to: &out) }
            let nb = f.bounds.count
            let k = f.objectives.count
            // `le` and `quantile` values are the family's, not the series': format them
            // once per family instead of once per line.
            func formatted(_ v: Double) -> [UInt8] { var t: [UInt8] = []; TextFormat.appendFloat(v, to: &t); return t }
            let leTexts = f.bounds.map(formatted) + [formatted(.infinity)]
            let quantileTexts = f.objectives.map { formatted($0.0) }
            f.withLabelTexts { texts in
                for s32 in order {
                    let s = Int(s32)
                    let labels = texts.text(s)
                    switch f.type {
                    case .counter, .gauge:
                        line(name, nil, labels: labels, value: f.values[s], to: &out)
                    case .histogram:
                        var cumulative: Double = 0
                        for b in 0..<nb {
                            cumulative += f.bucketCounts[s * (nb + 1) + b]
                            line(name, "_bucket", labels: labels, extra: "le", extraText: leTexts[b], value: cumulative, to: &out)
                        }
                        line(name, "_bucket", labels: labels, extra: "le", extraText: leTexts[nb], value: f.counts[s], to: &out)
                        line(name, "_sum", labels: labels, value: f.values[s], to: &out)
                        line(name, "_count", labels: labels, value: f.counts[s], to: &out)
                    case .summary:
                        if !f.quantiles.isEmpty {
                            for j in 0..<k {
                                line(name, nil, labels: labels, extra: "quantile", extraText: quantileTexts[j], value: f.quantiles[s * k + j],
                                        to: &out)
                            }
                        }
                        line(name, "_sum", labels: labels, value: f.values[s], to: &out)
                        line(name, "_count", labels: labels, value: f.counts[s], to: &out)
                    }
                }
            }
        }
    }

    static func render(_ m: MetaFamily, to out: inout [UInt8]) {
        let name = Array(m.name.utf8)
        let help = Array(m.help.utf8)
        name.withUnsafeBytes { n in help.withUnsafeBytes { h in header(name: n, help: h, type: m.type, to: &out) } }
        var labelText: [UInt8] = []
        for s in m.samples {
            metaLabels(s, into: &labelText)
            name.withUnsafeBytes { n in labelText.withUnsafeBytes { l in line(n, nil, labels: l, value: s.value, to: &out) } }
        }
    }

    /// A meta sample's labels as exposition text (`a="x",b="y"`).
    static func metaLabels(_ s: MetaSample, into text: inout [UInt8]) {
        text.removeAll(keepingCapacity: true)
        for (k, v) in s.labels {
            if !text.isEmpty { text.append(0x2C) }
            text.append(contentsOf: k.utf8)
            TextFormat.append("=\"", to: &text)
            var v = v
            v.withUTF8 { TextFormat.appendLabelValue(UnsafeRawBufferPointer($0), to: &text) }
            text.append(0x22)
        }
    }
}
