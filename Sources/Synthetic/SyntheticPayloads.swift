import Foundation

/// Realistic queue elements, as senders push them: a mix of the four types over a
/// fixed number of series, ~110–190 bytes each. Used by `gateway loadgen` and the
/// benchmarks, so both measure the same payloads.
public struct SyntheticPayloads: Sendable {
    /// Percent of counters, gauges, histograms, summaries.
    public var mix: [Int] = [50, 20, 25, 5]
    public var series = 10_000
    public var labelsPerSample = 3
    /// Samples per element; more than 1 makes JSON arrays.
    public var samplesPerElement = 1

    public init(series: Int = 10_000, labelsPerSample: Int = 3, samplesPerElement: Int = 1, mix: [Int] = [50, 20, 25, 5]) {
        precondition(Self.isValidMix(mix), "mix must be four non-negative percentages adding up to 100")
        self.series = series; self.labelsPerSample = labelsPerSample; self.samplesPerElement = max(1, samplesPerElement)
        self.mix = mix
    }

    /// `counter,gauge,histogram,summary` percentages, e.g. `50,20,25,5`; nil unless
    /// there are four non-negative integers adding up to 100.
    public static func parseMix(_ text: String) -> [Int]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.allSatisfy({ $0 != nil }) else { return nil }
        let mix = parts.map { $0! }
        return isValidMix(mix) ? mix : nil
    }

    static func isValidMix(_ mix: [Int]) -> Bool { mix.count == 4 && mix.allSatisfy { $0 >= 0 } && mix.reduce(0, +) == 100 }

    /// One element per `samplesPerElement` series, to be cycled through.
    public func elements() -> [[UInt8]] {
        let types = ["counter", "gauge", "histogram", "summary"]
        let total = 100
        var elements: [[UInt8]] = []
        var pending: [String] = []
        for s in 0..<max(series, 1) {
            var pick = s * 7919 % total, t = 0
            while pick >= mix[t] { pick -= mix[t]; t += 1 }
            let type = types[t]
            let name = "loadgen_\(type)_\(s % 50)" + (t == 0 ? "_total" : t == 2 ? "_seconds" : "")
            // Name and label values repeat after 50 × 997 series; beyond that a suffix keeps the
            // series distinct (the first 49 850 stay as they were, so benchmarks compare).
            let lap = s / (50 * 997), suffix = lap > 0 ? "_\(lap)" : ""
            let labels = (0..<labelsPerSample).map { "\"l\($0)\":\"v\((s / 50 + $0 * 13) % 997)\(suffix)\"" }.joined(separator: ",")
            let value = Double((s * 31) % 1000 + 1) / 100
            var json = "{\"type\":\"\(type)\",\"name\":\"\(name)\",\"value\":\(value),\"labels\":{\(labels)}"
            if t == 2 { json += ",\"buckets\":[0.005,0.01,0.05,0.1,0.5,1,5,10]" }
            if t == 3 { json += ",\"quantiles\":[0.5,0.9,0.99],\"epsilons\":[0.05,0.01,0.001]" }
            json += "}"
            pending.append(json)
            if pending.count == samplesPerElement {
                elements.append(Array((samplesPerElement == 1 ? pending[0] : "[" + pending.joined(separator: ",") + "]").utf8))
                pending = []
            }
        }
        if !pending.isEmpty { elements.append(Array(("[" + pending.joined(separator: ",") + "]").utf8)) }
        return elements
    }
}
