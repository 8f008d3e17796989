/// What was recorded since the last flush, per series: counters as their sum, gauges
/// as their last value, histogram observations one by one (the gateway aggregates
/// them). A pure value: `take` hands the content over as JSON elements per shard,
/// `restore` puts a failed flush back (counters add up again, newer gauges win,
/// observations up to the cap), so a Redis outage loses nothing it can keep.
struct MetricsBuffer: Sendable {
    /// Observations kept at most between flushes; more are counted in `dropped`.
    let maxObservations: Int
    private(set) var counters: [Int: Double] = [:]
    private(set) var gauges: [Int: Double] = [:]
    private(set) var observations: [(series: Int, value: Double)] = []
    /// Observations dropped because the buffer was full, and values that were not finite.
    private(set) var dropped = 0
    var isEmpty: Bool { counters.isEmpty && gauges.isEmpty && observations.isEmpty }
    var count: Int { counters.count + gauges.count + observations.count }

    init(maxObservations: Int) { self.maxObservations = maxObservations }

    mutating func add(_ series: Int, _ delta: Double) {
        guard delta.isFinite else { dropped += 1; return }
        let sum = counters[series, default: 0] + delta
        if sum.isFinite { counters[series] = sum } else { dropped += 1 }
    }

    mutating func forget(_ series: Int) { counters[series] = nil }

    mutating func set(_ series: Int, _ value: Double) {
        guard value.isFinite else { dropped += 1; return }
        gauges[series] = value
    }

    mutating func observe(_ series: Int, _ value: Double) {
        guard value.isFinite, observations.count < maxObservations else { dropped += 1; return }
        observations.append((series, value))
    }

    /// Empties the buffer.
    mutating func take() -> MetricsBuffer {
        let taken = self
        counters = [:]; gauges = [:]; observations = []
        return taken
    }

    /// Puts back what a failed flush took, under what was recorded since.
    mutating func restore(_ old: MetricsBuffer) {
        for (s, v) in old.counters { add(s, v) }
        for (s, v) in old.gauges where gauges[s] == nil { gauges[s] = v }
        let room = max(0, maxObservations - observations.count)
        dropped += max(0, old.observations.count - room)
        observations = Array(old.observations.prefix(room)) + observations
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
        for o in observations { emit(shardOf(o.series), series[o.series].sample(o.value)) }
        for (shard, var e) in open {
            e.append(UInt8(ascii: "]"))
            out[shard, default: []].append(e)
        }
        return out
    }
}
