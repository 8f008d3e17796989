import Foundation
import Testing
@testable import Aggregation
@testable import Sinks

@Suite struct SummaryWindowTests {
    static let objectives: [(Double, Double)] = [(0.5, 0.05), (0.9, 0.01), (0.99, 0.001)]

    @Test(arguments: ["uniform", "exponential", "sorted", "reversed"])
    func estimates_stayWithinTheirRankErrorBounds(_ distribution: String) {
        var rng = SplitMix(seed: 42)
        let n = 100_000
        var data: [Double] = (0..<n).map { _ in
            let u = Double(rng.next() >> 11) / Double(1 << 53)
            return distribution == "exponential" ? -log(1 - u) : u * 1000
        }
        if distribution == "sorted" { data.sort() }
        if distribution == "reversed" { data.sort(by: >) }
        let window = SummaryWindow(objectives: Self.objectives, maxAge: .seconds(600), ageBuckets: 5, now: 0)
        for v in data { window.observe(v, now: 1) }
        let estimates = window.quantiles(now: 1)
        let sorted = data.sorted()
        for ((q, eps), estimate) in zip(Self.objectives, estimates) {
            // The estimate's rank range in the exact data must touch [q−ε, q+ε] on
            // random input. Adversarial orders (all ascending or all descending) are
            // allowed 1.5ε: measured worst case 1.15ε at q=0.99, descending.
            let eps = distribution == "uniform" || distribution == "exponential" ? eps : eps * 1.5
            let lo = sorted.partitioningIndex { $0 >= estimate }
            let hi = sorted.partitioningIndex { $0 > estimate }
            let lowRank = Double(lo) / Double(n), highRank = Double(hi) / Double(n)
            #expect(highRank >= q - eps && lowRank <= q + eps,
                    "q=\(q) eps=\(eps): estimate \(estimate) has rank \(lowRank)…\(highRank)")
        }
    }

    @Test func compression_keepsFarFewerTuplesThanObservations() {
        var s = QuantileStream(targets: Self.objectives)
        for i in 0..<100_000 { s.insert(Double((i * 7919) % 100_000)) }
        s.flush()
        #expect(s.tuples.count < 5_000)
        #expect(s.count == 100_000)
    }

    /// A window restored from a state taken `elapsed` ago (a restart's downtime) answers as the
    /// window that lived on would have: observations older than `maxAge` are gone.
    @Test(arguments: [0, 3, 6, 8, 30])
    func aRestoredWindow_agesByTheTimeSinceItsStateWasTaken(elapsedSeconds: UInt64) {
        let second: UInt64 = 1_000_000_000
        func filled() -> SummaryWindow {
            let w = SummaryWindow(objectives: [(0.5, 0.05)], maxAge: .seconds(10), ageBuckets: 5, now: 0)
            for _ in 0..<100 { w.observe(1, now: 0) }
            for _ in 0..<100 { w.observe(5, now: 5 * second) }
            return w
        }
        let state = filled().state(now: 5 * second)
        let restart: UInt64 = 1000 * second   // the new process's clock
        let restored = SummaryWindow(objectives: [(0.5, 0.05)], maxAge: .seconds(10), ageBuckets: 5, now: restart, state: state,
                                     elapsed: elapsedSeconds * second)
        let livedOn = filled().quantiles(now: (5 + elapsedSeconds) * second)
        let answer = restored.quantiles(now: restart)
        #expect(answer == livedOn || answer.first?.isNaN == true && livedOn.first?.isNaN == true, "\(answer) vs \(livedOn)")
    }

    @Test func window_forgetsObservationsOlderThanMaxAge() {
        let second: UInt64 = 1_000_000_000
        let window = SummaryWindow(objectives: [(0.5, 0.05)], maxAge: .seconds(10), ageBuckets: 5, now: 0)
        for _ in 0..<100 { window.observe(1, now: 0) }
        #expect(window.quantiles(now: 1 * second) == [1])
        for _ in 0..<100 { window.observe(5, now: 5 * second) }
        #expect(window.quantiles(now: 9 * second) == [1])   // both still in window; median of 100×1,100×5
        #expect(window.quantiles(now: 11 * second) == [5])  // the first ones aged out
        #expect(window.quantiles(now: 30 * second).first?.isNaN == true)  // all aged out
    }

    @Test func fewObservations_answerExactlyAsTheGoClientDoes() {
        var s = QuantileStream(targets: [(0.5, 0.05), (0.9, 0.01)])
        for v in [300.0, 100, 200] { s.insert(v) }
        #expect(s.query(0.5) == 200)
        #expect(s.query(0.9) == 300)
    }
}

/// Deterministic PRNG for reproducible tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == Double {
    func partitioningIndex(where belongs: (Double) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi { let m = (lo + hi) / 2; if belongs(self[m]) { hi = m } else { lo = m + 1 } }
        return lo
    }
}
