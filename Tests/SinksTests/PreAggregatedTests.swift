import Foundation
import Pipeline
import Testing
@testable import Aggregation

/// Histogram deltas a sender already counted into buckets (OTLP): explicit and
/// exponential, added to the store.
@Suite struct PreAggregatedTests {
    static func binned(_ name: String, bounds: [Double], counts: [Double], sum: Double, labels: [(String, String)] = []) -> Batch {
        var s = SampleBatch()
        var r = SampleRecord(type: .histogram, origin: 0, value: sum, name: s.appendString(name))
        r.labelStart = UInt32(s.labels.count)
        for (k, v) in labels { s.labels.append(LabelRef(name: s.appendString(k), value: s.appendString(v))) }
        r.labelCount = UInt32(labels.count)
        r.shape = .binned
        r.buckets = s.appendNumbers(bounds)
        r.bins = s.appendNumbers(BinnedHistogram(count: counts.reduce(0, +), counts: ArraySlice(counts)).numbers)
        s.records.append(r)
        return Batch(samples: s)
    }

    static func exponential(_ name: String, _ e: ExponentialHistogram, sum: Double) -> Batch {
        var s = SampleBatch()
        var r = SampleRecord(type: .histogram, origin: 0, value: sum, name: s.appendString(name))
        r.shape = .exponential
        r.bins = s.appendNumbers(e.numbers)
        s.records.append(r)
        return Batch(samples: s)
    }

    static func apply(_ store: MetricStore, _ batch: Batch) -> [String] {
        var b = batch, scratch: [UInt8] = []
        store.apply(&b, scratch: &scratch)
        return b.drops.entries.map(\.reason.name)
    }

    static func family(_ store: MetricStore, _ name: String) -> Family? { store.snapshot().first { $0.name == Array(name.utf8) } }

    @Test func binnedDeltas_addBucketByBucket_andAChangedLayoutCountsAtItsUpperBound() throws {
        let store = MetricStore()
        #expect(Self.apply(store, Self.binned("d", bounds: [1, 2], counts: [1, 2, 3], sum: 10)).isEmpty)
        #expect(Self.apply(store, Self.binned("d", bounds: [1, 2], counts: [0, 1, 0], sum: 1.5)).isEmpty)
        var f = try #require(Self.family(store, "d"))
        #expect(f.bucketCounts == [1, 3, 3] && f.counts == [7] && f.values == [11.5])
        // Bounds [0.5, 2]: 0.5's bucket lands in the family's le=1, 2's in le=2, +Inf in +Inf.
        #expect(Self.apply(store, Self.binned("d", bounds: [0.5, 2], counts: [4, 5, 6], sum: 0)).isEmpty)
        f = try #require(Self.family(store, "d"))
        #expect(f.bucketCounts == [5, 8, 9] && f.counts == [22])
        // A count per bucket missing: refused, the series unchanged.
        #expect(Self.apply(store, Self.binned("d", bounds: [1, 2], counts: [1, 1], sum: 0)) == ["bad_buckets"])
        #expect(Self.family(store, "d")?.counts == [22])
        // No bounds at all: one +Inf bucket.
        #expect(Self.apply(store, Self.binned("single", bounds: [], counts: [4], sum: 2)).isEmpty)
        #expect(Self.family(store, "single")?.bucketCounts == [4])
    }

    @Test func binnedDeltas_cannotFeedANativeFamily_norExponentialsAClassicOne() {
        let store = MetricStore(nativeHistograms: [("n_*", NativeHistogramOptions())])
        #expect(Self.apply(store, Self.binned("n_x", bounds: [1], counts: [1, 1], sum: 3)) == ["bad_buckets"], "a native family's buckets would disagree")
        #expect(Self.apply(store, Self.binned("c", bounds: [1], counts: [1, 1], sum: 3)).isEmpty)
        let e = ExponentialHistogram(count: 1, scale: 0, zeroThreshold: 0, zeroCount: 0, positiveOffset: 0, positive: [1], negativeOffset: 0, negative: [])
        #expect(Self.apply(store, Self.exponential("c", e, sum: 1.5)) == ["bad_buckets"])
    }

    @Test func exponentialDeltas_landInTheBucketsObservationsWouldHave() throws {
        // For many values: OTLP's index at scale s is ceil(log2(v)·2^s) − 1; merged, it must be
        // the key NativeHistogram.observe gives the same value (Prometheus's key = index + 1).
        for scale in [-2, 0, 3, 8, 11] {
            let store = MetricStore()
            var observed = NativeHistogram(schema: min(8, scale))
            let options = NativeHistogramOptions(schema: min(8, scale), maxBuckets: 0)
            for v in [0.001, 0.3, 1, 1.5, 2, 3.999, 100, 12345.678] {
                let index = Int((log2(v) * exp2(Double(scale))).rounded(.up)) - 1
                let e = ExponentialHistogram(count: 2, scale: scale, zeroThreshold: 0, zeroCount: 0, positiveOffset: index, positive: [1],
                                             negativeOffset: index, negative: [1])
                #expect(Self.apply(store, Self.exponential("e", e, sum: 0)).isEmpty)
                observed.observe(v, options: options)
                observed.observe(-v, options: options)
            }
            let f = try #require(Self.family(store, "e"))
            #expect(f.natives.first?.positive == observed.positive, "scale \(scale)")
            #expect(f.natives.first?.negative == observed.negative, "scale \(scale)")
            #expect(f.native?.schema == min(8, scale) && f.bounds.isEmpty)
        }
    }

    @Test func exponentialDeltas_atACoarserScale_halveTheSeries_andStateFilesKeepTheFamilyNative() throws {
        let store = MetricStore()
        let fine = ExponentialHistogram(count: 3, scale: 2, zeroThreshold: 0.001, zeroCount: 1, positiveOffset: 4, positive: [1, 1],
                                        negativeOffset: 0, negative: [])
        #expect(Self.apply(store, Self.exponential("e", fine, sum: 5)).isEmpty)
        let coarse = ExponentialHistogram(count: 1, scale: 1, zeroThreshold: 0.001, zeroCount: 0, positiveOffset: 2, positive: [1],
                                          negativeOffset: 0, negative: [])
        #expect(Self.apply(store, Self.exponential("e", coarse, sum: 2)).isEmpty)
        let f = try #require(Self.family(store, "e"))
        // Scale 2 indices 4,5 → scale 1 index 2 (key 3); the coarse point's index 2 → key 3 too.
        #expect(f.natives.first?.schema == 1 && f.natives.first?.positive.keys == [3] && f.natives.first?.positive.counts == [3])
        #expect(f.natives.first?.zeroCount == 1 && f.counts == [4] && f.values == [7])
        #expect(f.native?.zeroThreshold == 0.001)
        // A scale Prometheus cannot hold is refused by the layout check.
        let odd = ExponentialHistogram(count: 1, scale: -5, zeroThreshold: 0, zeroCount: 1, positiveOffset: 0, positive: [], negativeOffset: 0, negative: [])
        #expect(Self.apply(store, Self.exponential("e", odd, sum: 0)) == ["bad_buckets"])
        // Restored without a native_histograms match, the family is still native.
        let restored = MetricStore()
        restored.restore(try StateFile.decode(StateFile.encode(store.captureState())))
        #expect(Self.family(restored, "e")?.natives == f.natives)
        #expect(Self.family(restored, "e")?.native == f.native)
    }
}
