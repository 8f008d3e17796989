import Pipeline
import Testing
import TestSupport
@testable import Transforms

@Suite struct SortLabelsTransformTests {
    func labels(_ b: Batch, _ i: Int) -> [String] { b.samples.labels(at: i).map { "\($0.name)=\($0.value)" } }

    @Test(arguments: [
        ([("b", "2"), ("a", "1")], ["a=1", "b=2"]),
        ([("c", "3"), ("b", "2"), ("a", "1")], ["a=1", "b=2", "c=3"]),
        ([("a", "1")], ["a=1"]),
        ([("ab", "x"), ("a", "y"), ("b", "z")], ["a=y", "ab=x", "b=z"]),
        ([("Z", "1"), ("a", "2"), ("_", "3")], ["Z=1", "_=3", "a=2"]),   // byte order, as Prometheus sorts
    ] as [([(String, String)], [String])])
    func labels_areSortedByNameBytes(_ input: [(String, String)], _ expected: [String]) {
        var b = sampleBatch([TestSample(.gauge, "g", 1, labels: input), TestSample(.gauge, "h", 1, labels: [("y", "1"), ("x", "2")])])
        SortLabelsTransform().process(&b, worker: 0)
        #expect(labels(b, 0) == expected)
        #expect(labels(b, 1) == ["x=2", "y=1"], "each sample sorts only its own labels")
    }

    @Test func disabled_leavesOrderAlone() {
        var b = sampleBatch([TestSample(.gauge, "g", 1, labels: [("b", "2"), ("a", "1")])])
        SortLabelsTransform(enabled: false).process(&b, worker: 0)
        #expect(labels(b, 0) == ["b=2", "a=1"])
    }

    @Test func labels_areSortedByNamePerSample() {
        var batch = run(decoder(), [#"[{"type":"counter","name":"a","value":1,"labels":{"z":"1","b":"2","a":"3","bb":"4"}},{"type":"counter","name":"b","value":1,"labels":{"y":"1","x":"2"}}]"#])
        SortLabelsTransform().process(&batch, worker: 0)
        #expect(batch.samples.labels(at: 0).map(\.name) == ["a", "b", "bb", "z"])
        #expect(batch.samples.labels(at: 0).map(\.value) == ["3", "2", "4", "1"])
        #expect(batch.samples.labels(at: 1).map(\.name) == ["x", "y"])
    }

    @Test func disabled_leavesOrderAsSent() {
        var batch = run(decoder(), [#"{"type":"counter","name":"a","value":1,"labels":{"z":"1","a":"3"}}"#])
        SortLabelsTransform(enabled: false).process(&batch, worker: 0)
        #expect(batch.samples.labels(at: 0).map(\.name) == ["z", "a"])
    }
}
