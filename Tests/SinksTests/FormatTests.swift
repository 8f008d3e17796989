import Foundation
import Fuzzing
import Pipeline
import Synchronization
import Testing
import TestSupport
@testable import Aggregation
@testable import Sinks

/// The three exposition formats: which one a scraper gets, golden pages of all
/// four types in OpenMetrics and protobuf, and that independent parsers
/// (prometheus_client's OpenMetrics parser, protoc + the `protobuf` package) read
/// them back as meant.
@Suite struct FormatTests {
    static let prometheus2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    static let prometheus2Native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    static let prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    static let prometheus3Proto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"

    @Test(arguments: [
        (prometheus2, nil, ExpositionFormat.openMetrics),
        (prometheus2Native, nil, .protobuf),
        (prometheus3, nil, .openMetrics),
        (prometheus3Proto, nil, .protobuf),
        ("*/*", nil, .text),   // curl
        ("", nil, .text),   // no header
        ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", nil, .text),   // a browser
        ("text/plain", nil, .text),
        ("text/plain;version=0.0.4", nil, .text),
        ("text/plain;version=9.9", nil, .text),   // no match: the fallback
        ("application/openmetrics-text", nil, .openMetrics),
        ("application/openmetrics-text; version=\"1.0.0\"; charset=utf-8", nil, .openMetrics),
        ("application/openmetrics-text;version=2.0.0", nil, .text),
        ("APPLICATION/OpenMetrics-Text;Version=1.0.0", nil, .openMetrics),
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text", nil, .text),   // text protobuf: not served
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.2,text/plain;q=0.5", nil, .text),   // q decides
        ("application/openmetrics-text;q=0,text/plain;q=0.1", nil, .text),   // q=0 refuses
        ("text/plain;q=0.5,application/openmetrics-text;q=0.5", nil, .text),   // a tie keeps the header's order
        (prometheus2, "text,protobuf", .text),   // openmetrics switched off
        (prometheus2Native, "text,openmetrics", .openMetrics),
        ("*/*", "openmetrics", nil),   // text off and nothing else asked for: 406
    ] as [(String, String?, ExpositionFormat?)])
    func negotiation_followsClientGolang(accept: String, enabled: String?, expected: ExpositionFormat?) {
        let formats = enabled.map { Set($0.split(separator: ",").compactMap { ExpositionFormat(rawValue: String($0)) }) } ?? Set(ExpositionFormat.allCases)
        #expect(ExpositionFormat.negotiate(accept: accept, enabled: formats) == expected)
    }

    /// All four types, two series each where it matters, exemplars on a counter and
    /// on two histogram buckets, a help with a quote, backslash and newline.
    func goldenStore() -> MetricStore {
        let store = MetricStore(nativeHistograms: [("native_*", NativeHistogramOptions(schema: 0, zeroThreshold: 0.001, maxBuckets: 160))],
                                clock: { 1_000_000_000 })
        var b = sampleBatch([
            TestSample(.counter, "jobs_total", 2, labels: [("queue", "b")], help: "Jobs \"done\"\\ok\nsecond line.",
                       exemplar: ([("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")], 2, 1732550000.123)),
            TestSample(.counter, "jobs_total", 3, labels: [("queue", "a\"x\\y\nz")]),
            TestSample(.counter, "requests", 7, exemplar: ([], 7, .nan)),
            TestSample(.gauge, "temperature_celsius", -3.25),
            TestSample(.counter, "plain_total", 4, labels: [("path", "/a\"b"), ("code", "200")]),
            TestSample(.histogram, "latency_seconds", 0.3, help: "Latency.", buckets: [0.1, 0.5, 1],
                       exemplar: ([("trace_id", "abc")], 0.31, 1732550000)),
            TestSample(.histogram, "latency_seconds", 0.05, buckets: [0.1, 0.5, 1]),
            TestSample(.histogram, "latency_seconds", 7, buckets: [0.1, 0.5, 1], exemplar: ([("trace_id", "def")], 7, .nan)),
            TestSample(.summary, "payload_bytes", 100, help: "Sizes.", quantiles: [0.5, 0.9], epsilons: [0.05, 0.01]),
            TestSample(.summary, "payload_bytes", 300),
            TestSample(.histogram, "native_seconds", 1.5, help: "Native only."),
            TestSample(.histogram, "native_seconds", 3),
            TestSample(.histogram, "native_seconds", 3.5),
            TestSample(.histogram, "native_seconds", 0),
            TestSample(.histogram, "native_seconds", -2, exemplar: ([("trace_id", "neg")], -2, 1732550001.5)),
            TestSample(.histogram, "native_seconds", 40),
        ])
        var scratch: [UInt8] = []
        store.apply(&b, scratch: &scratch)
        #expect(b.drops.isEmpty, "\(b.drops.summary)")
        return store
    }

    static let meta = [MetaFamily(name: "prom_stream_gateway_popped_total", help: "Popped.", type: .counter,
                                  samples: [MetaSample(labels: [("queueKey", "q")], value: 5)])]

    func page(_ store: MetricStore, _ format: ExpositionFormat) -> [UInt8] {
        Exposition(store: store, meta: { Self.meta }).render(format)
    }

    @Test func goldenPages_passTheFuzzersCheckers() {
        let store = goldenStore()
        #expect(ExpositionChecker.problem(in: page(store, .text)) == nil)
        #expect(OpenMetricsChecker.problem(in: page(store, .openMetrics)) == nil)
        #expect(ProtobufChecker.problem(in: page(store, .protobuf)) == nil)
    }

    @Test func openMetrics_goldenPage() {
        let text = String(decoding: page(goldenStore(), .openMetrics), as: UTF8.self)
        #expect(text == #"""
        # HELP jobs Jobs \"done\"\\ok\nsecond line.
        # TYPE jobs counter
        jobs_total{queue="a\"x\\y\nz"} 3
        jobs_total{queue="b"} 2 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 2 1732550000.123
        # HELP latency_seconds Latency.
        # TYPE latency_seconds histogram
        latency_seconds_bucket{le="0.1"} 1
        latency_seconds_bucket{le="0.5"} 2 # {trace_id="abc"} 0.31 1732550000
        latency_seconds_bucket{le="1"} 2
        latency_seconds_bucket{le="+Inf"} 3 # {trace_id="def"} 7
        latency_seconds_sum 7.35
        latency_seconds_count 3
        # HELP native_seconds Native only.
        # TYPE native_seconds histogram
        native_seconds_bucket{le="+Inf"} 6 # {trace_id="neg"} -2 1732550001.5
        native_seconds_sum 46
        native_seconds_count 6
        # HELP payload_bytes Sizes.
        # TYPE payload_bytes summary
        payload_bytes{quantile="0.5"} 100
        payload_bytes{quantile="0.9"} 300
        payload_bytes_sum 400
        payload_bytes_count 2
        # HELP plain Pushed through prom-stream-gateway without a help text.
        # TYPE plain counter
        plain_total{code="200",path="/a\"b"} 4
        # HELP prom_stream_gateway_popped Popped.
        # TYPE prom_stream_gateway_popped counter
        prom_stream_gateway_popped_total{queueKey="q"} 5
        # HELP requests Pushed through prom-stream-gateway without a help text.
        # TYPE requests counter
        requests_total 7 # {} 7
        # HELP temperature_celsius Pushed through prom-stream-gateway without a help text.
        # TYPE temperature_celsius gauge
        temperature_celsius -3.25
        # EOF

        """#)
    }

    @Test func openMetrics_isReadByThePythonClientsParser() throws {
        let r = try runCommand(python3, [packageRoot.appendingPathComponent("Tests/Fixtures/formats/parse_openmetrics.py").path],
                               stdin: page(goldenStore(), .openMetrics))
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output == #"""
        # jobs counter 'Jobs "done"\\ok\nsecond line.'
        jobs_total{queue='a"x\\y\nz'} 3
        jobs_total{queue='b'} 2 # {trace_id='4bf92f3577b34da6a3ce929d0e0e4736'} 2 Timestamp(1732550000, 123000000)
        # latency_seconds histogram 'Latency.'
        latency_seconds_bucket{le='0.1'} 1
        latency_seconds_bucket{le='0.5'} 2 # {trace_id='abc'} 0.31 Timestamp(1732550000, 0)
        latency_seconds_bucket{le='1'} 2
        latency_seconds_bucket{le='+Inf'} 3 # {trace_id='def'} 7 None
        latency_seconds_sum{} 7.35
        latency_seconds_count{} 3
        # native_seconds histogram 'Native only.'
        native_seconds_bucket{le='+Inf'} 6 # {trace_id='neg'} -2 Timestamp(1732550001, 500000000)
        native_seconds_sum{} 46
        native_seconds_count{} 6
        # payload_bytes summary 'Sizes.'
        payload_bytes{quantile='0.5'} 100
        payload_bytes{quantile='0.9'} 300
        payload_bytes_sum{} 400
        payload_bytes_count{} 2
        # plain counter 'Pushed through prom-stream-gateway without a help text.'
        plain_total{code='200',path='/a"b'} 4
        # prom_stream_gateway_popped counter 'Popped.'
        prom_stream_gateway_popped_total{queueKey='q'} 5
        # requests counter 'Pushed through prom-stream-gateway without a help text.'
        requests_total{} 7 # {} 7 None
        # temperature_celsius gauge 'Pushed through prom-stream-gateway without a help text.'
        temperature_celsius{} -3.25

        """#, "the parser's reading of every sample, exemplar and help")
    }

    @Test func protobuf_goldenPage_asAnIndependentDecoderReadsIt() throws {
        let r = try runCommand(python3, [packageRoot.appendingPathComponent("Tests/Fixtures/formats/decode_protobuf.py").path],
                               stdin: page(goldenStore(), .protobuf))
        #expect(r.status == 0, "\(r.output)")
        let golden = packageRoot.appendingPathComponent("Tests/Fixtures/formats/golden.pb.txt")
        // UPDATE_GOLDEN=1 rewrites the file; read the diff before committing it.
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" { try r.output.write(to: golden, atomically: true, encoding: .utf8) }
        let expected = try String(contentsOf: golden, encoding: .utf8)
        #expect(r.output == expected, "decoded:\n\(r.output)")
    }

    @Test func latestExemplarWins_perCounterSeriesAndPerBucket() {
        let store = MetricStore(clock: { 1_000_000_000 })
        var b = sampleBatch([
            TestSample(.counter, "c_total", 1, exemplar: ([("trace_id", "old")], 1, 1)),
            TestSample(.counter, "c_total", 1, exemplar: ([("trace_id", "new")], 1, 2)),
            TestSample(.counter, "c_total", 1),   // no exemplar: the last one stays
            TestSample(.histogram, "h", 0.2, buckets: [0.5, 1], exemplar: ([("trace_id", "a")], 0.2, .nan)),
            TestSample(.histogram, "h", 0.7, buckets: [0.5, 1], exemplar: ([("trace_id", "b")], 0.7, .nan)),
            TestSample(.histogram, "h", 0.3, buckets: [0.5, 1], exemplar: ([("trace_id", "c")], 0.3, .nan)),
        ])
        var scratch: [UInt8] = []
        store.apply(&b, scratch: &scratch)
        let text = String(decoding: Exposition(store: store, meta: { [] }).render(.openMetrics), as: UTF8.self)
        #expect(text.contains(#"c_total 3 # {trace_id="new"} 1 2"#), "\(text)")
        #expect(text.contains(#"h_bucket{le="0.5"} 2 # {trace_id="c"} 0.3"#) && text.contains(#"h_bucket{le="1"} 3 # {trace_id="b"} 0.7"#), "\(text)")
        #expect(!text.contains("old") && !text.contains(#""a""#))
    }

    @Test func hostilePage_isReadByBothIndependentParsers() throws {
        let store = MetricStore(nativeHistograms: [("h*", NativeHistogramOptions(schema: 8, zeroThreshold: 0, maxBuckets: 4))])
        let values = ["\"", "\\", "\n", "e\u{0301}", "\u{059E}x", "}", "{", "=", ",", " ", "#", "# {x=\"y\"} 1", "\\n", ""]
        var samples: [TestSample] = []
        for (i, v) in values.enumerated() {
            samples.append(TestSample(.gauge, "a:b:c", [.nan, .infinity, -.infinity, Double(bitPattern: 2024) /* 1e-320 */, .greatestFiniteMagnitude][i % 5], labels: [("v", v), ("i", String(i))],
                                      help: "a\\b\nc\"d # {} \u{0000}"))
            // No `"` in exemplar labels here: prometheus_client 0.26 cannot read an escaped
            // quote inside an exemplar (Prometheus can: FormatEndToEndTests).
            let e = String(v.map { $0 == "\"" ? "'" : $0 })
            samples.append(TestSample(.counter, "c_total", 1, labels: [("v", v)], exemplar: ([("trace_id", e), ("w", "\\\n")], 1e-300, 1e9 + Double(i) / 7)))
            samples.append(TestSample(.histogram, "h", [-1e300, 1e-300, 0, .leastNonzeroMagnitude][i % 4], labels: [("v", v)],
                                      exemplar: ([("x", e)], 1, .nan)))
            samples.append(TestSample(.summary, "s", Double(i), labels: [("v", v)], quantiles: [0.5], epsilons: [0.05]))
        }
        var b = sampleBatch(samples)
        var scratch: [UInt8] = []
        store.apply(&b, scratch: &scratch)
        #expect(b.drops.isEmpty, "\(b.drops.summary)")
        let om = try runCommand(python3, [packageRoot.appendingPathComponent("Tests/Fixtures/formats/parse_openmetrics.py").path], stdin: page(store, .openMetrics))
        #expect(om.status == 0, "\(om.output)\n\(String(decoding: page(store, .openMetrics), as: UTF8.self))")
        #expect(om.output.contains(##"c_total{v='# {x="y"} 1'} 1 # {trace_id="# {x='y'} 1",w='\\\n'} 1e-300"##), "\(om.output)")
        let pb = try runCommand(python3, [packageRoot.appendingPathComponent("Tests/Fixtures/formats/decode_protobuf.py").path], stdin: page(store, .protobuf))
        #expect(pb.status == 0, "\(pb.output)")
        #expect(pb.output.contains(##"value: "# {x=\"y\"} 1""##) && pb.output.contains("schema: "), "\(pb.output.prefix(2000))")
        #expect(OpenMetricsChecker.problem(in: page(store, .openMetrics)) == nil)
        #expect(ProtobufChecker.problem(in: page(store, .protobuf)) == nil)
    }

    @Test(arguments: [
        // (value, schema, key): the bucket is (2^((k-1)·2^-s), 2^(k·2^-s)].
        (1.0, 0, 0), (2.0, 0, 1), (3.0, 0, 2), (0.5, 0, -1), (0.75, 0, 0),
        (1.5, 3, 5), (1.0, 3, 0), (2.0, 3, 8), (1.0001, 3, 1),
        (1.0, -1, 0), (3.0, -1, 1), (4.0, -1, 1), (5.0, -1, 2), (0.2, -2, 0), (0.05, -2, -1),
        (1e-300, 2, -3986), (1.5, 8, 150),
    ] as [(Double, Int, Int32)])
    func nativeBucketKey_matchesThePrometheusBoundaries(value: Double, schema: Int, key: Int32) {
        #expect(NativeHistogram.key(value, schema: schema) == key)
        let upper = exp2(Double(key) * exp2(Double(-schema))), lower = exp2(Double(key - 1) * exp2(Double(-schema)))
        #expect(value <= upper * (1 + 1e-12) && value > lower * (1 - 1e-12), "\(value) in (\(lower), \(upper)]")
    }

    @Test(arguments: [(1.1, 3), (2.0, 0), (1.0001, 8), (1.01, 7), (4.0, -1), (65536.0, -4), (1e300, -4)] as [(Double, Int)])
    func bucketFactor_picksTheSchemaClientGolangPicks(factor: Double, schema: Int) {
        #expect(NativeHistogramOptions.schema(bucketFactor: factor) == schema)
        #expect(NativeHistogramOptions.schema(bucketFactor: 1) == nil)
    }

    @Test func nativeHistogram_halvesItsResolutionWhenOverMaxBuckets_keepingEveryCount() {
        var h = NativeHistogram(schema: 3)
        let options = NativeHistogramOptions(schema: 3, zeroThreshold: 1e-9, maxBuckets: 8)
        var values: [Double] = []
        for i in 1...200 { values.append(Double(i) * 0.37) }
        for v in values + [0, -1.5, -100] { h.observe(v, options: options) }
        #expect(h.positive.count + h.negative.count <= 8)
        #expect(h.schema < 3)
        #expect(h.positive.counts.reduce(0, +) == 200 && h.negative.counts.reduce(0, +) == 2 && h.zeroCount == 1)
        for v in values { #expect(h.positive.keys.contains(NativeHistogram.key(v, schema: Int(h.schema)))) }
    }

    @Test func spans_fillGapsOfOneOrTwo_andStartANewSpanAfterLongerOnes() {
        var b = SparseBuckets()
        for k: Int32 in [-2, -2, 0, 1, 1, 1, 3, 9] { _ = b.add(k) }
        let (spans, deltas) = b.spansAndDeltas()
        #expect(spans.map { [$0.offset, Int32($0.length)] } == [[-2, 6], [5, 1]])
        #expect(deltas == [2, -2, 1, 2, -3, 1, 0])   // counts 2,0,1,3,0,1 | 1
    }
}
