import Foundation
import Pipeline
import Synchronization
import Testing
import TestSupport
@testable import Aggregation
@testable import Sinks

func makeStore(now: UInt64 = 1_000_000_000) -> MetricStore {
    let clock = Atomic<UInt64>(now)
    return MetricStore(clock: { clock.load(ordering: .relaxed) })
}

func render(_ store: MetricStore, meta: [MetaFamily] = []) -> String {
    String(decoding: Exposition(store: store, meta: { meta }).render(), as: UTF8.self)
}

@discardableResult
func apply(_ store: MetricStore, _ samples: [TestSample]) -> Batch {
    var b = sampleBatch(samples)
    var scratch: [UInt8] = []
    store.apply(&b, scratch: &scratch)
    return b
}

@Suite struct ExpositionTests {
    @Test func allFourTypes_renderAsGoldenText() {
        let store = makeStore()
        apply(store, [
            TestSample(.counter, "jobs_total", 2, labels: [("queue", "b")], help: "Jobs done."),
            TestSample(.counter, "jobs_total", 3, labels: [("queue", "a")]),
            TestSample(.counter, "jobs_total", 1.5, labels: [("queue", "b")], help: "ignored: first help wins"),
            TestSample(.gauge, "temperature_celsius", 20),
            TestSample(.gauge, "temperature_celsius", -3.25),
            TestSample(.histogram, "latency_seconds", 0.3, help: "Latency.", buckets: [1, 0.5, 0.1, 0.5]),
            TestSample(.histogram, "latency_seconds", 0.05, buckets: [9]),
            TestSample(.histogram, "latency_seconds", 7, buckets: [2]),
            TestSample(.summary, "payload_bytes", 100, help: "Sizes.", quantiles: [0.9, 0.5], epsilons: [0.01, 0.05]),
            TestSample(.summary, "payload_bytes", 300),
            TestSample(.summary, "plain_summary", 4),
        ])
        #expect(render(store) == """
        # HELP jobs_total Jobs done.
        # TYPE jobs_total counter
        jobs_total{queue="a"} 3
        jobs_total{queue="b"} 3.5
        # HELP latency_seconds Latency.
        # TYPE latency_seconds histogram
        latency_seconds_bucket{le="0.1"} 1
        latency_seconds_bucket{le="0.5"} 2
        latency_seconds_bucket{le="1"} 2
        latency_seconds_bucket{le="+Inf"} 3
        latency_seconds_sum 7.35
        latency_seconds_count 3
        # HELP payload_bytes Sizes.
        # TYPE payload_bytes summary
        payload_bytes{quantile="0.5"} 100
        payload_bytes{quantile="0.9"} 300
        payload_bytes_sum 400
        payload_bytes_count 2
        # HELP plain_summary Pushed through prom-stream-gateway without a help text.
        # TYPE plain_summary summary
        plain_summary_sum 4
        plain_summary_count 1
        # HELP temperature_celsius Pushed through prom-stream-gateway without a help text.
        # TYPE temperature_celsius gauge
        temperature_celsius -3.25

        """)
    }

    @Test func typeConflict_isDroppedAndCounted() {
        let store = makeStore()
        let b = apply(store, [TestSample(.counter, "x_total", 1), TestSample(.gauge, "x_total", 5), TestSample(.counter, "x_total", 1)])
        #expect(b.drops.entries.map(\.reason) == [.typeConflict])
        #expect(render(store).contains("x_total 2\n"))
    }

    @Test func seriesOfOneName_mayHaveDifferentLabelNames() {
        let store = makeStore()
        apply(store, [TestSample(.counter, "c_total", 1, labels: [("a", "1")]), TestSample(.counter, "c_total", 1, labels: [("b", "1"), ("c", "2")]), TestSample(.counter, "c_total", 1)])
        #expect(render(store).contains("c_total 1\nc_total{a=\"1\"} 1\nc_total{b=\"1\",c=\"2\"} 1\n"))
    }

    @Test func emptyLabelValue_isTheSameSeriesAsNoLabel() {
        let store = makeStore()
        apply(store, [TestSample(.counter, "c_total", 1, labels: [("a", "")]), TestSample(.counter, "c_total", 1)])
        #expect(render(store).contains("c_total 2\n"))
    }

    @Test func hostileLabelValuesAndHelp_cannotCreateLines() throws {
        let store = makeStore()
        apply(store, [
            TestSample(.counter, "evil_total", 1, labels: [("v", "x\"} 1\nevil_total{v=\"injected\"} 999\n# TYPE a gauge\\")], help: "line1\nfake_metric 1\n\\"),
        ])
        let text = render(store)
        #expect(text == """
        # HELP evil_total line1\\nfake_metric 1\\n\\\\
        # TYPE evil_total counter
        evil_total{v="x\\"} 1\\nevil_total{v=\\"injected\\"} 999\\n# TYPE a gauge\\\\"} 1

        """)
        #expect(text.split(separator: "\n").count == 3)
    }

    @Test func sinkDefences_dropWhatWouldBreakTheFormat() {
        let store = makeStore()
        let b = apply(store, [
            TestSample(.counter, "bad-name", 1),
            TestSample(.counter, "ok_total", 1, labels: [("bad-label", "x")]),
            TestSample(.counter, "ok_total", 1, labels: [("__x", "x")]),
            TestSample(.histogram, "h", 1, labels: [("le", "x")], buckets: [1]),
            TestSample(.counter, "neg_total", -1),
            TestSample(.counter, "prom_stream_gateway_info", 1),
        ])
        #expect(Set(b.drops.entries.map(\.reason.name)) == ["invalid_name", "invalid_label_name", "reserved_label", "bad_value", "reserved_name"])
        #expect(b.liveSampleCount == 0)
    }

    @Test func metaFamilies_mergeIntoNameOrder() {
        let store = makeStore()
        apply(store, [TestSample(.gauge, "zz", 1), TestSample(.gauge, "aa", 1)])
        let text = render(store, meta: [MetaFamily(name: "prom_stream_gateway_info", help: "Info.", type: .gauge, samples: [MetaSample(labels: [("version", "1")], value: 1)])])
        let names = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE") }.map { $0.split(separator: " ")[2] }
        #expect(names == ["aa", "prom_stream_gateway_info", "zz"])
    }

    @Test func seriesOrder_staysSortedAsSeriesAreAdded() {
        let store = makeStore()
        let exposition = Exposition(store: store, meta: { [] })
        var expected: [String] = []
        for round in 0..<3 {
            let values = (0..<50).map { "v\(($0 * 37 + round * 11) % 1000)" }
            apply(store, values.map { TestSample(.counter, "c_total", 1, labels: [("k", $0)]) })
            expected = Array(Set(expected + values)).sorted()
            let lines = String(decoding: exposition.render(), as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("c_total{") }
            #expect(lines.map { String($0.split(separator: "\"")[1]) } == expected)
        }
    }

    @Test func edgeCasePage_passesPromtool() throws {
        let store = makeStore()
        apply(store, [
            TestSample(.counter, "edge_requests_total", 1e21, labels: [("path", "/a\"b\\c\nd"), ("unicode", "日本語 ✓")], help: "Help with \\ and\nnewline and \"quotes\"."),
            TestSample(.counter, "edge_requests_total", 0.1, labels: [("path", "")]),
            TestSample(.gauge, "edge_temperature_celsius", -.infinity, help: "Gauge."),
            TestSample(.gauge, "edge_ratio", .nan, help: "NaN gauge."),
            TestSample(.gauge, "edge_big", 1.7976931348623157e308, help: "Big."),
            TestSample(.histogram, "edge_latency_seconds", 1e-9, labels: [("a", "1")], help: "Histogram.", buckets: [1e-7, 0.005, 1, 1e6]),
            TestSample(.summary, "edge_size_bytes", 5, labels: [("b", "{}=,")], help: "Summary.", quantiles: [0.01, 0.5, 0.99], epsilons: [0.001, 0.05, 0.001]),
        ])
        let page = render(store, meta: [MetaFamily(name: "prom_stream_gateway_info", help: PrometheusSink.infoHelp, type: .gauge, samples: [MetaSample(labels: [("version", GatewayVersion.current)], value: 1)])])
        let promtool = try #require(RedisServer.which("promtool"), "promtool not installed (apt-get install prometheus)")
        let (status, output) = try runCommand(promtool, ["check", "metrics"], stdin: Array(page.utf8))
        #expect(status == 0, "promtool: \(output)\n\(page)")
    }
}
