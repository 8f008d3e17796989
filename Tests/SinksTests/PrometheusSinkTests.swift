import Foundation
import Logging
import Pipeline
import Synchronization
import Testing
import TestSupport
@testable import Aggregation
@testable import Sinks

func makeSink(disableMeta: Bool = false, health: HealthBoard = HealthBoard()) throws -> PrometheusSink {
    var config = PrometheusSinkConfig(options: OptionReader(describing: "p"))
    config.listen = "127.0.0.1:0"
    config.disableMetaMetrics = disableMeta
    let sink = PrometheusSink(config: config, context: StageContext(id: "p", logger: Logger(label: "t"), telemetry: Telemetry(), health: health, workers: 1))
    try sink.start()
    return sink
}

@Suite struct PrometheusSinkTests {
    @Test func reloadTakeover_keepsNativeBucketsAndExemplars() throws {
        var config = PrometheusSinkConfig(options: OptionReader(describing: "p"))
        config.listen = "127.0.0.1:0"
        config.disableMetaMetrics = true
        config.aggregate.nativeHistograms = [("*_seconds", NativeHistogramOptions(schema: 1, zeroThreshold: 0.01, maxBuckets: 10))]
        func sink() -> PrometheusSink {
            PrometheusSink(config: config, context: StageContext(id: "p", logger: Logger(label: "t"), telemetry: Telemetry(), health: HealthBoard(), workers: 1))
        }
        let old = sink()
        try old.start()
        var b = sampleBatch((0..<50).map { TestSample(.histogram, "rt_seconds", Double($0) / 7, exemplar: $0 == 9 ? ([("trace_id", "t9")], 9.0 / 7, 5) : nil) }
                            + [TestSample(.counter, "c_total", 1, exemplar: ([("trace_id", "c")], 1, .nan))])
        old.consume(&b, worker: 0)
        let before = ExpositionFormat.allCases.map { old.exposition.render($0) }
        old.shutdown()
        let new = sink()
        new.takeOver(from: old)
        try new.start()
        defer { new.shutdown() }
        #expect(ExpositionFormat.allCases.map { new.exposition.render($0) } == before)
    }

    @Test func http_servesMetricsRootReadyAndNotFound() throws {
        let health = HealthBoard()
        health.set("queue", ready: true, detail: "connected")
        let sink = try makeSink(health: health)
        defer { sink.shutdown() }
        var b = sampleBatch([TestSample(.counter, "hits_total", 2, help: "Hits.")])
        sink.consume(&b, worker: 0)

        let metrics = try httpGet(port: sink.port, path: "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(metrics.text.contains("# HELP hits_total Hits.\n# TYPE hits_total counter\nhits_total 2\n"))
        #expect(metrics.text.contains("prom_stream_gateway_info{version=\"\(GatewayVersion.current)\"} 1"))
        #expect(metrics.text.contains("prom_stream_gateway_processed_metrics_total"))

        let root = try httpGet(port: sink.port, path: "/")
        #expect(root.status == 200 && root.text == "ok")

        let ready = try httpGet(port: sink.port, path: "/ready")
        #expect(ready.status == 200)
        #expect(ready.text == "{\"ready\":true,\"sources\":{\"queue\":{\"ready\":true,\"detail\":\"connected\"}}}\n")
        health.set("queue", ready: false, detail: "connection refused")
        let notReady = try httpGet(port: sink.port, path: "/ready")
        #expect(notReady.status == 503)
        #expect(notReady.text.contains("\"ready\":false"))

        #expect(try httpGet(port: sink.port, path: "/nope").status == 404)
        #expect(try httpGet(port: sink.port, path: "/metrics", method: "POST").status == 405)

        let head = try httpGet(port: sink.port, path: "/metrics", method: "HEAD")
        #expect(head.status == 200 && head.body.isEmpty)
        #expect(Int(head.headers["content-length"] ?? "") == metrics.body.count)
    }

    @Test func gzip_roundTripsWhenAccepted() throws {
        let sink = try makeSink()
        defer { sink.shutdown() }
        var b = sampleBatch((0..<200).map { TestSample(.counter, "g_total", 1, labels: [("i", String($0))]) })
        sink.consume(&b, worker: 0)
        let plain = try httpGet(port: sink.port, path: "/metrics")
        let zipped = try httpGet(port: sink.port, path: "/metrics", headers: ["Accept-Encoding": "deflate, gzip;q=0.8"])
        #expect(zipped.headers["content-encoding"] == "gzip")
        #expect(zipped.body.count < plain.body.count / 3)
        let (status, unzipped) = try runCommand("/bin/gzip", ["-dc"], stdin: zipped.body)
        #expect(status == 0)
        // Rendered twice: only the meta-metrics' counters may differ.
        let userLines = { (t: String) in t.split(separator: "\n").filter { $0.hasPrefix("g_total") } }
        #expect(userLines(unzipped) == userLines(plain.text))
        #expect(userLines(unzipped).count == 200)
        let refused = try httpGet(port: sink.port, path: "/metrics", headers: ["Accept-Encoding": "gzip;q=0"])
        #expect(refused.headers["content-encoding"] == nil)
    }

    @Test func disableMetaMetrics_keepsOnlyInfo() throws {
        let sink = try makeSink(disableMeta: true)
        defer { sink.shutdown() }
        let text = try httpGet(port: sink.port, path: "/metrics").text
        let families = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE") }
        #expect(families == ["# TYPE prom_stream_gateway_info gauge"])
    }

    @Test func halfOpenClient_doesNotStallOtherScrapes() throws {
        let sink = try makeSink()
        defer { sink.shutdown() }
        // A client that connects and sends half a request, then goes silent.
        let fd = try #require(connectLoopback(port: sink.port))
        defer { close(fd) }
        _ = "GET /metr".withCString { send(fd, $0, strlen($0), 0) }
        for _ in 0..<5 { #expect(try httpGet(port: sink.port, path: "/metrics", timeout: 2).status == 200) }
    }

    @Test func concurrentIngestAndScrape_neverShowsAHalfAppliedHistogram() throws {
        let sink = try makeSink()
        defer { sink.shutdown() }
        let stop = Atomic<Bool>(false)
        let writer = OSThread.spawn(name: "writer") {
            var n = 0
            while !stop.load(ordering: .relaxed) && n < 2000 {
                var b = sampleBatch((0..<50).map { TestSample(.histogram, "h_seconds", Double($0 % 5), labels: [("s", String($0 % 10))], buckets: [1, 2, 3]) })
                sink.consume(&b, worker: 0)
                n += 1
            }
        }
        var scrapes = 0
        let deadline = Date().addingTimeInterval(1.5)
        while Date() < deadline {
            let text = String(decoding: sink.exposition.render(), as: UTF8.self)
            var inf: [String: Double] = [:], count: [String: Double] = [:]
            for line in text.split(separator: "\n") where line.hasPrefix("h_seconds") {
                let parts = line.split(separator: " ")
                let series = String(line.split(separator: "\"")[1])   // the `s` label's value
                if line.contains("le=\"+Inf\"") { inf[series] = Double(parts[1]) }
                if line.hasPrefix("h_seconds_count") { count[series] = Double(parts[1]) }
            }
            #expect(inf.count == count.count)
            for (k, v) in inf { #expect(count[k] == v) }
            scrapes += 1
        }
        stop.store(true, ordering: .relaxed)
        writer.join()
        #expect(scrapes > 5)
        #expect(sink.store.seriesCount(.histogram) == 10)
    }
}
