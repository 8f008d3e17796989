import Foundation
import Testing
import TestSupport

/// The three formats through the real binary: negotiated from `Accept`, gzip on
/// each, `formats` switching them off; and a real Prometheus with native
/// histograms and exemplar storage storing exactly what was pushed.
@Suite struct FormatEndToEndTests {
    func pipeline(redis: RedisServer, textPort: Int, extra: String = "") -> String {
        """
        sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port)" } }
        transforms:
          decode: { type: json_decode, inputs: [queue] }
          check: { type: validate, inputs: [decode] }
        sinks:
          prometheus:
            type: prometheus
            inputs: [check]
            listen: "${GATEWAY_LISTEN}"
            native_histograms: { "native_*": { schema: 3 } }
        \(extra)
          text_only: { type: prometheus, inputs: [check], listen: "127.0.0.1:\(textPort)", formats: [text] }
        """
    }

    func start(_ redis: RedisServer, textPort: Int, extra: String = "") throws -> (GatewayProcess, URL) {
        let dir = try makeTemporaryDirectory("formats")
        let file = dir.appendingPathComponent("p.yaml")
        try pipeline(redis: redis, textPort: textPort, extra: extra).write(to: file, atomically: true, encoding: .utf8)
        return (try GatewayProcess(args: ["--config", file.path]), dir)
    }

    func gunzip(_ body: [UInt8]) throws -> String {
        try runCommand(python3, ["-c", "import gzip,sys; sys.stdout.write(gzip.decompress(sys.stdin.buffer.read()).hex())"], stdin: body).output
    }

    @Test func metrics_isNegotiatedFromAccept_gzippedInEveryFormat_andFormatsCanBeSwitchedOff() throws {
        let redis = try RedisServer()
        let textPort = freePort()
        let (gateway, dir) = try start(redis, textPort: textPort, extra: "    disable_meta_metrics: true")
        defer { try? FileManager.default.removeItem(at: dir) }
        try redis.push([#"{"type":"counter","name":"neg_total","value":3,"exemplar":{"labels":{"trace_id":"abc"}}}"#])
        #expect(eventually { (try? gateway.value("neg_total")) == 3 })
        let cases: [(String, String)] = [
            ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,text/plain;q=0.5",
             "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"),
            ("*/*", "text/plain; version=0.0.4; charset=utf-8"),
        ]
        for (accept, contentType) in cases {
            let plain = try httpGet(port: gateway.port, path: "/metrics", headers: ["Accept": accept])
            #expect(plain.status == 200 && plain.headers["content-type"] == contentType, "\(accept): \(plain.headers)")
            #expect(plain.headers["vary"] == "Accept, Accept-Encoding")
            let zipped = try httpGet(port: gateway.port, path: "/metrics", headers: ["Accept": accept, "Accept-Encoding": "gzip"])
            #expect(zipped.headers["content-encoding"] == "gzip" && zipped.headers["content-type"] == contentType)
            #expect(try gunzip(zipped.body) == plain.body.map { String(format: "%02x", $0) }.joined(), "\(accept): the gzipped page is the page")
        }
        let om = try httpGet(port: gateway.port, path: "/metrics", headers: ["Accept": "application/openmetrics-text"]).text
        #expect(om.hasSuffix("# EOF\n") && om.contains(#"neg_total 3 # {trace_id="abc"} 3"#), "\(om)")
        // The text-only sink answers text even to Prometheus's OpenMetrics-first header.
        let textOnly = try httpGet(port: textPort, path: "/metrics", headers: ["Accept": cases[0].0])
        #expect(textOnly.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8" && !textOnly.text.contains("# EOF"))
        #expect(gateway.terminate().status == 0)
    }

    @Test func onlyOpenMetrics_answers406ToACurl() throws {
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("formats")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml")
        try """
            sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port)" } }
            transforms: { decode: { type: json_decode, inputs: [queue] } }
            sinks: { p: { type: prometheus, inputs: [decode], listen: "${GATEWAY_LISTEN}", formats: [openmetrics] } }
            """.write(to: file, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(args: ["--config", file.path])
        let refused = try httpGet(port: gateway.port, path: "/metrics", headers: ["Accept": "*/*"])
        #expect(refused.status == 406 && refused.text.contains("openmetrics"), "\(refused.status) \(refused.text)")
        #expect(try httpGet(port: gateway.port, path: "/metrics", headers: ["Accept": "application/openmetrics-text"]).status == 200)
        try """
            sources: { queue: { type: redis_list } }
            sinks: { p: { type: prometheus, inputs: [queue], formats: [json], native_histograms: { "*_seconds": { schema: 9, zero_treshold: 1 } } } }
            """.write(to: file, atomically: true, encoding: .utf8)
        let r = try runCommand(GatewayProcess.binary, ["validate", "--config", file.path])
        #expect(r.status == 1 && r.output.contains("sinks.p.formats: unknown format `json` (known: text, openmetrics, protobuf)"), "\(r.output)")
        #expect(r.output.contains("sinks.p.native_histograms.*_seconds.schema") && r.output.contains("zero_treshold"), "\(r.output)")
    }

    @Test func realPrometheus_withNativeHistogramsAndExemplars_storesWhatWasPushed() throws {
        let redis = try RedisServer()
        let textPort = freePort()
        let (gateway, dir) = try start(redis, textPort: textPort)
        defer { try? FileManager.default.removeItem(at: dir) }
        let now = Date().timeIntervalSince1970
        var elements = [
            #"{"type":"counter","name":"fmt_requests_total","value":41,"labels":{"path":"/a"},"exemplar":{"labels":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"},"value":1,"timestamp":\#(now)}}"#,
            #"{"type":"counter","name":"fmt_requests_total","value":1,"labels":{"path":"/a"}}"#,
            #"{"type":"gauge","name":"fmt_temperature","value":-1.5}"#,
            #"{"type":"counter","name":"fmt_quoted_total","value":1,"help":"He said \"hi\"","exemplar":{"labels":{"trace_id":"q\"uote\\"},"timestamp":\#(now)}}"#,
            #"{"type":"summary","name":"fmt_bytes","value":10,"quantiles":[0.5],"epsilons":[0.05]}"#,
        ]
        for v in [0.05, 0.5, 2] {
            elements.append(#"{"type":"histogram","name":"fmt_classic_seconds","value":\#(v),"buckets":[0.1,1],"exemplar":{"labels":{"trace_id":"classic\#(v)"},"timestamp":\#(now)}}"#)
        }
        // 1000 observations spread evenly over (0, 1]: count 1000, sum 500.5, median 0.5.
        elements += (1...1000).map { #"{"type":"histogram","name":"native_latency_seconds","value":\#(Double($0) / 1000)}"# }
        try redis.push(elements)
        #expect(eventually { (try? gateway.value("native_latency_seconds_count")) == 1000 })

        let prometheus = try PrometheusServer(scrapeConfigs: """
              - job_name: proto
                static_configs: [{ targets: ["127.0.0.1:\(gateway.port)"] }]
              - job_name: text
                static_configs: [{ targets: ["127.0.0.1:\(textPort)"] }]
            """, features: ["native-histograms", "exemplar-storage"])
        let query = prometheus.query
        func value(_ q: String) -> Double? {
            let body = query(q)
            guard let r = body.range(of: #""value":["#, options: .backwards) else { return nil }
            let tail = body[r.upperBound...]
            guard let c = tail.range(of: #",""#) else { return nil }
            return Double(tail[c.upperBound...].prefix { $0 != "\"" })
        }
        #expect(eventually(timeout: 30) { value("histogram_count(native_latency_seconds)") == 1000 },
                "native histogram not stored: \(query("native_latency_seconds"))")
        #expect(value("histogram_sum(native_latency_seconds)") == 500.5)
        let median = value("histogram_quantile(0.5, native_latency_seconds)") ?? -1
        #expect(median > 0.45 && median < 0.55, "median \(median) (schema 3: buckets 9 % wide)")
        #expect(eventually(timeout: 10) { prometheus.exemplars("fmt_requests_total").contains("4bf92f3577b34da6a3ce929d0e0e4736") },
                "\(prometheus.exemplars("fmt_requests_total"))")
        #expect(eventually(timeout: 10) { prometheus.exemplars("fmt_classic_seconds_bucket").contains("classic0.5") })
        #expect(eventually(timeout: 10) { prometheus.exemplars("fmt_quoted_total").contains(#"q\"uote\\"#) }, "\(prometheus.exemplars("fmt_quoted_total"))")
        // Prometheus 2 names a bucket read from text or OpenMetrics as written
        // (`1`), one read from protobuf canonically (`1.0`).
        for (job, one) in [("proto", "1.0"), ("text", "1")] {
            #expect(eventually(timeout: 10) { value(#"fmt_requests_total{job="\#(job)"}"#) == 42 }, "\(job)")
            #expect(value(#"fmt_classic_seconds_bucket{job="\#(job)",le="\#(one)"}"#) == 2, "\(job)")
            #expect(value(#"fmt_classic_seconds_count{job="\#(job)"}"#) == 3, "\(job)")
            #expect(value(#"fmt_temperature{job="\#(job)"}"#) == -1.5, "\(job)")
            #expect(value(#"fmt_bytes{job="\#(job)",quantile="0.5"}"#) == 10, "\(job)")
        }
        #expect(value(#"count(fmt_requests_total)"#) == 2, "one series per job, nothing else")
        #expect((try gateway.value(#"prom_stream_gateway_http_scrapes_total{format="protobuf"}"#) ?? 0) > 0, "Prometheus asked for protobuf")
        #expect(value(#"scrape_samples_scraped{job="proto"}"#).map { $0 > 0 } == true)
    }
}
