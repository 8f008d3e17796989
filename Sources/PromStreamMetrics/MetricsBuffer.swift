/// What was recorded since the last flush, per series: counters as their sum, gauges
/// as their last value, histograms as their observations counted into buckets and
/// summed (one sample with `counts` each). A pure value: `take` hands the content over as
/// JSON elements per shard, `restore` puts a failed flush back (counters and histograms
/// add up again, newer gauges win), so a Redis outage loses nothing: the buffer holds one
/// entry per series, however many observations it counts.
struct MetricsBuffer: Sendable {
    /// A histogram series' observations: a count per bucket (the last for `+Inf`) and their sum.
    struct Buckets: Sendable, Equatable {
        var counts: [UInt64]
        var sum: Double
    }

    private(set) var counters: [Int: Double] = [:]
    private(set) var gauges: [Int: Double] = [:]
    private(set) var histograms: [Int: Buckets] = [:]
    /// Every gauge series' current value, kept across flushes: a meter moves from it. Per
    /// series, not per handler: swift-metrics makes a handler for every `Meter(label:)`.
    private(set) var levels: [Int: Double] = [:]
    /// Values that were not finite, negative counter increments, and increments or observations whose sum would not be.
    private(set) var dropped = 0
    var isEmpty: Bool { counters.isEmpty && gauges.isEmpty && histograms.isEmpty }
    var count: Int { counters.count + gauges.count + histograms.count }

    mutating func add(_ series: Int, _ delta: Double) {
        guard delta.isFinite, delta >= 0 else { dropped += 1; return }   // a counter only goes up (the gateway: bad_value)
        let sum = counters[series, default: 0] + delta
        if sum.isFinite { counters[series] = sum } else { dropped += 1 }
    }

    mutating func forget(_ series: Int) { counters[series] = nil }

    mutating func set(_ series: Int, _ value: Double) {
        guard value.isFinite else { dropped += 1; return }
        gauges[series] = value
        levels[series] = value
    }

    /// A meter's increment (or, negative, decrement) of its series' current value.
    mutating func move(_ series: Int, by amount: Double) {
        set(series, levels[series, default: 0] + amount)
    }

    /// Counts `value` into the first bucket whose bound is at least it (Prometheus's `le`);
    /// `bounds` sorted, as `SampleJSON.bounds` makes them.
    mutating func observe(_ series: Int, _ value: Double, bounds: [Double]) {
        guard value.isFinite else { dropped += 1; return }
        let sum = (histograms[series]?.sum ?? 0) + value
        guard sum.isFinite else { dropped += 1; return }
        var i = 0
        while i < bounds.count && value > bounds[i] { i += 1 }
        // `default:` is an autoclosure: the empty buckets are made only for a new series.
        func empty() -> Buckets { Buckets(counts: Array(repeating: 0, count: bounds.count + 1), sum: 0) }
        histograms[series, default: empty()].counts[i] += 1
        histograms[series, default: empty()].sum = sum
    }

    /// Empties the buffer.
    mutating func take() -> MetricsBuffer {
        let taken = self
        counters = [:]; gauges = [:]; histograms = [:]
        return taken
    }

    /// The part of the buffer whose series `keep` selects (what a failed shard's push held).
    func only(_ keep: (Int) -> Bool) -> MetricsBuffer {
        var part = MetricsBuffer()
        part.counters = counters.filter { keep($0.key) }
        part.gauges = gauges.filter { keep($0.key) }
        part.histograms = histograms.filter { keep($0.key) }
        return part
    }

    /// Puts back what a failed flush took, under what was recorded since.
    mutating func restore(_ old: MetricsBuffer) {
        for (s, v) in old.counters { add(s, v) }
        for (s, v) in old.gauges where gauges[s] == nil { gauges[s] = v }
        for (s, h) in old.histograms {
            guard var now = histograms[s] else { histograms[s] = h; continue }
            let sum = now.sum + h.sum
            guard sum.isFinite, now.counts.count == h.counts.count else { dropped += Int(h.counts.reduce(0, +)); continue }
            for k in now.counts.indices { now.counts[k] += h.counts[k] }
            now.sum = sum
            histograms[s] = now
        }
    }

    /// The samples as JSON arrays of at most `maxElementBytes` (one sample may exceed
    /// it alone), grouped by the shard of each series (`shardOf`).
    func elements(series: [SampleJSON], shardOf: (Int) -> Int, maxElementBytes: Int) -> [Int: [[UInt8]]] {
        var open: [Int: [UInt8]] = [:]
        var out: [Int: [[UInt8]]] = [:]
        func emit(_ shard: Int, _ sample: String) {
            var e = open[shard] ?? [UInt8(ascii: "[")]
            if e.count > 1 && e.count + sample.utf8.count + 2 > maxElementBytes {
                e.append(UInt8(ascii: "]"))
                out[shard, default: []].append(e)
                e = [UInt8(ascii: "[")]
            }
            if e.count > 1 { e.append(UInt8(ascii: ",")) }
            e += sample.utf8
            open[shard] = e
        }
        for (s, v) in counters.sorted(by: { $0.key < $1.key }) { emit(shardOf(s), series[s].sample(v)) }
        for (s, v) in gauges.sorted(by: { $0.key < $1.key }) { emit(shardOf(s), series[s].sample(v)) }
        for (s, h) in histograms.sorted(by: { $0.key < $1.key }) { emit(shardOf(s), series[s].sample(h.sum, counts: h.counts)) }
        for (shard, var e) in open {
            e.append(UInt8(ascii: "]"))
            out[shard, default: []].append(e)
        }
        return out
    }
}
