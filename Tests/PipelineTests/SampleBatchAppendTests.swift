import Pipeline
import Testing
import TestSupport

/// `SampleBatch.append(contentsOf:)`: a merged batch reads exactly as its parts did.
@Suite struct SampleBatchAppendTests {
    static func describe(_ s: SampleBatch, _ i: Int) -> String {
        let r = s.records[i]
        let exemplar = s.exemplar(of: r).map { e in e.labelRange.map { "\(s.string(s.labels[$0].name))=\(s.string(s.labels[$0].value))" } } ?? []
        return "\(s.name(at: i)) \(r.type.name) \(r.value) \(s.labels(at: i).map { "\($0.name)=\($0.value)" }) help=\(s.string(r.help)) "
            + "buckets=\(Array(s.numbers(r.buckets))) quantiles=\(Array(s.numbers(r.quantiles))) exemplar=\(exemplar)"
    }

    @Test func aMergedBatch_readsAsItsParts() {
        let a = sampleBatch([
            TestSample(.counter, "a_total", 1, labels: [("x", "1")], help: "A.", exemplar: ([("trace_id", "t1")], 1, .nan)),
            TestSample(.histogram, "h", 0.5, labels: [("y", "2")], buckets: [1, 2]),
        ]).samples
        let b = sampleBatch([
            TestSample(.summary, "s", 3, quantiles: [0.5], epsilons: [0.05]),
            TestSample(.counter, "b_total", 2, labels: [("z", "3"), ("w", "4")], exemplar: ([("span_id", "s2")], 2, 5)),
        ]).samples
        var merged = a
        merged.append(contentsOf: b)
        #expect(merged.count == 4)
        for i in 0..<2 { #expect(Self.describe(merged, i) == Self.describe(a, i)) }
        for i in 0..<2 { #expect(Self.describe(merged, i + 2) == Self.describe(b, i)) }
    }
}
