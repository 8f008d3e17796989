import Foundation
import Pipeline
import Testing
import TestSupport
@testable import Aggregation
@testable import Sinks

/// Whatever senders push, the page parses: one family per name, one line per
/// series, no value that Prometheus would read as stuck.
@Suite struct PageValidityTests {
    func dropped(_ b: Batch) -> [String] { b.drops.entries.flatMap { e in Array(repeating: e.reason.name, count: e.count) } }

    func promtool(_ page: String) throws -> (Int32, String) {
        let promtool = try #require(RedisServer.which("promtool"), "promtool not installed (apt-get install prometheus)")
        let (status, output) = try runCommand(promtool, ["check", "metrics"], stdin: Array(page.utf8))
        return (status, output)
    }

    @Test(arguments: [
        // (first family, colliding sample)
        (TestSample(.histogram, "h16_bucket", 1, buckets: [1]), TestSample(.counter, "h16_bucket_bucket", 1)),
        (TestSample(.histogram, "lat", 1, buckets: [1]), TestSample(.gauge, "lat_sum", 1)),
        (TestSample(.histogram, "lat", 1, buckets: [1]), TestSample(.gauge, "lat_count", 1)),
        (TestSample(.gauge, "lat_sum", 1), TestSample(.histogram, "lat", 1, buckets: [1])),
        (TestSample(.summary, "rpc", 1), TestSample(.counter, "rpc_count", 1)),
        (TestSample(.counter, "jobs_total", 1), TestSample(.counter, "jobs", 1)),
        (TestSample(.counter, "jobs", 1), TestSample(.gauge, "jobs_created", 1)),
    ] as [(TestSample, TestSample)])
    func nameCollision_firstFamilyWinsAndTheOtherIsDropped(_ first: TestSample, _ second: TestSample) throws {
        let store = makeStore()
        #expect(dropped(apply(store, [first])).isEmpty)
        #expect(dropped(apply(store, [second])) == ["name_collision"])
        #expect(dropped(apply(store, [first])).isEmpty, "the first family keeps updating")
        let page = render(store)
        let (status, output) = try promtool(page)
        // 3: lint findings only (a gauge named `lat_sum` is poor style, not invalid).
        #expect(status == 0 || status == 3, "\(output)\n\(page)")
    }

    @Test func labelOrder_isNotPartOfASeriesIdentity() {
        // What the sink sees with Metrics__SortIncomingLabels=false.
        let store = makeStore()
        apply(store, [TestSample(.counter, "ns_total", 4, labels: [("b", "2"), ("a", "1")]),
                      TestSample(.counter, "ns_total", 1, labels: [("a", "1"), ("b", "2")])])
        #expect(render(store).contains("\nns_total{a=\"1\",b=\"2\"} 5\n"))
        #expect(!render(store).contains("b=\"2\",a="))
    }

    @Test func duplicateQuantiles_renderOnceWithTheTightestEpsilon() {
        let store = makeStore()
        apply(store, [TestSample(.summary, "q", 1, quantiles: [0.5, 0.5, 0.9], epsilons: [0.05, 0.01, 0.01])])
        let family = store.snapshot().first { $0.name == Array("q".utf8) }
        #expect(family?.objectives.map(\.0) == [0.5, 0.9])
        #expect(family?.objectives.map(\.1) == [0.01, 0.01])
        #expect(render(store).components(separatedBy: "quantile=\"0.5\"").count == 2)
    }

    @Test(arguments: [
        TestSample(.counter, "big_total", 1e308),
        TestSample(.histogram, "big_seconds", 1e308, buckets: [1]),
        TestSample(.summary, "big_bytes", 1e308),
    ])
    func sumThatWouldOverflow_isDroppedAndTheSeriesStaysFinite(_ s: TestSample) {
        let store = makeStore()
        #expect(dropped(apply(store, [s])).isEmpty)
        #expect(dropped(apply(store, [s])) == ["value_overflow"])
        let page = render(store)
        let values = page.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.contains("le=\"+Inf\"") }
        #expect(!values.contains { $0.hasSuffix("Inf") }, "\(page)")
        #expect(page.contains(s.type == .counter ? "big_total 1e+308" : "_sum 1e+308"), "\(page)")
        if s.type != .counter { #expect(page.contains("_count 1\n"), "the dropped observation is not counted") }
    }

    @Test func invalidUTF8LabelValue_isDroppedAsSuch() {
        let store = makeStore()
        var b = sampleBatch([TestSample(.gauge, "g", 1, labels: [("l", "x")])])
        let bad = b.samples.appendBytes([0xC3, 0x28])
        b.samples.labels[0].value = bad
        var scratch: [UInt8] = []
        store.apply(&b, scratch: &scratch)
        #expect(dropped(b) == ["invalid_label_value"])
    }
}
