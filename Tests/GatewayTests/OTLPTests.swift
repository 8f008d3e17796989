import Aggregation
import Web
import Foundation
import Redis
import Synchronization
import Testing
import TestSupport

/// The `otlp` source with real OpenTelemetry senders: the Python SDK and its OTLP/HTTP
/// exporter (`Tests/Fixtures/otlp/sender.py`, opentelemetry-sdk from PyPI), a real
/// Prometheus for the native histograms (via remote_write), and raw requests for the
/// OTLP/HTTP rules.
@Suite(.serialized) struct OTLPTests {
    static let sender = packageRoot.appendingPathComponent("Tests/Fixtures/otlp/sender.py").path

    /// A gateway whose pipeline file is `pipeline` with `${OTLP_PORT}` and `${DIR}` filled in.
    struct Setup {
        let otlpPort: Int
        let dir: URL
        let pipeline: URL

        init(_ pipeline: String) throws {
            otlpPort = freePort()
            dir = try makeTemporaryDirectory("otlp")
            self.pipeline = dir.appendingPathComponent("p.yaml")
            try pipeline.replacingOccurrences(of: "${OTLP_PORT}", with: String(otlpPort)).replacingOccurrences(of: "${DIR}", with: dir.path)
                .write(to: self.pipeline, atomically: true, encoding: .utf8)
        }

        /// The gateway, once the otlp source listens too (it starts after the sinks: `/` answers first).
        func start() throws -> GatewayProcess {
            let gateway = try GatewayProcess(args: ["--config", pipeline.path])
            let port = otlpPort
            #expect(eventually(timeout: 15) { portAccepts(port) }, "the otlp source did not listen:\n\(gateway.log)")
            return gateway
        }

        var endpoint: String { "http://127.0.0.1:\(otlpPort)/v1/metrics" }

        /// Runs the SDK sender; returns one success flag per export.
        @discardableResult
        func send(_ temporality: String, invocations: Int, service: String, extra: [String] = []) throws -> [Bool] {
            let r = try runCommand(python3, [OTLPTests.sender, endpoint, temporality, String(invocations), "--service", service] + extra)
            #expect(r.status == 0, "\(r.output)")
            var flags: [Bool] = []
            for line in r.output.split(separator: "\n") {
                guard let data = line.data(using: .utf8), let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                      let e = o["exports"] as? [Bool] else { continue }
                flags += e
            }
            return flags
        }

        func post(_ body: [UInt8], type: String = "application/json", encoding: String? = nil, path: String = "/v1/metrics") throws -> HTTPResult {
            var headers = ["Content-Type": type]
            if let encoding { headers["Content-Encoding"] = encoding }
            return try httpPost(port: otlpPort, path: path, headers: headers, body: body)
        }

        /// Posts `body` (JSON) from another thread; the answer once it comes.
        func postInBackground(_ body: [UInt8]) -> Pending {
            let pending = Pending()
            let port = otlpPort
            DispatchQueue.global().async {
                let r = try? httpPost(port: port, path: "/v1/metrics", headers: ["Content-Type": "application/json"], body: body, timeout: 30)
                pending.answer.withLock { $0 = r }
                pending.done.signal()
            }
            return pending
        }

        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    /// An answer still to come.
    final class Pending: Sendable {
        let answer = Mutex<HTTPResult?>(nil)
        let done = DispatchSemaphore(value: 0)
        func wait(seconds: Double) -> HTTPResult? {
            guard done.wait(timeout: .now() + seconds) == .success else { return nil }
            return answer.withLock { $0 }
        }
    }

    /// One delta count of `n`, as JSON.
    static let oneCount = Array(#"""
        {"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"n","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asInt":"1"}]}}]}]}]}
        """#.utf8)

    /// A 1 MiB memory budget, the least a pipeline takes.
    static let smallBudget = """
        memory_budget: 1MiB
        sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}" } }
        sinks: { page: { type: prometheus, inputs: [otel], listen: "${GATEWAY_LISTEN}" } }
        """

    @Test func sdkSenders_deltaAndCumulative_threeInvocations_exactTotals_inThePageAndInPrometheus() throws {
        let prometheus = try PrometheusServer(features: ["native-histograms"], extraArguments: ["--web.enable-remote-write-receiver"])
        let setup = try Setup("""
            sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}" } }
            sinks:
              page: { type: prometheus, inputs: [otel], listen: "${GATEWAY_LISTEN}" }
              remote: { type: remote_write, inputs: [otel], url: "http://127.0.0.1:\(prometheus.port)/api/v1/write", interval: 300ms }
            """)
        defer { setup.cleanup() }
        let gateway = try setup.start()
        // Three short-lived MeterProviders each (three Lambda invocations) adding 1, 2, 3.
        #expect(try setup.send("delta", invocations: 3, service: "delta", extra: ["--gzip"]).allSatisfy { $0 })
        // Cumulative: each provider exports three times (two flushes and its shutdown): the
        // repeats add nothing, and each new provider (a restart, a new start time) continues the total.
        #expect(try setup.send("cumulative", invocations: 3, service: "cumulative", extra: ["--exports", "2"]).allSatisfy { $0 })
        for job in ["shop/delta", "shop/cumulative"] {
            let l = "job=\"\(job)\",method=\"card\""
            #expect(try gateway.value("orders_total{\(l)}") == 18, "\(job)")
            #expect(try gateway.value("request_duration_seconds_bucket{\(l),le=\"0.5\"}") == 0)
            #expect(try gateway.value("request_duration_seconds_bucket{\(l),le=\"1\"}") == 3)
            #expect(try gateway.value("request_duration_seconds_bucket{\(l),le=\"2.5\"}") == 6)
            #expect(try gateway.value("request_duration_seconds_bucket{\(l),le=\"+Inf\"}") == 9)
            #expect(try gateway.value("request_duration_seconds_sum{\(l)}") == 18)
            #expect(try gateway.value("payload_size_bytes_count{\(l)}") == 9)
            #expect(try gateway.value("payload_size_bytes_sum{\(l)}") == 18)
            // The exponential histogram is a native one: Prometheus computes from its buckets.
            let h = "payload_size_bytes{job=\"\(job)\"}"
            #expect(eventually(timeout: 15) { RemoteWriteTests.value(prometheus, "histogram_count(\(h))") == 9 }, "\(job)")
            #expect(RemoteWriteTests.value(prometheus, "histogram_sum(\(h))") == 18)
            // Values 1, 2, 3 three times each: a third are at most 1 (1 is a bucket boundary at every scale).
            #expect(RemoteWriteTests.value(prometheus, "histogram_fraction(0, 1, \(h))").map { abs($0 - 1.0 / 3) < 1e-9 } == true)
        }
        #expect(try gateway.value("prom_stream_gateway_otlp_requests_total{source=\"otel\",code=\"200\"}") == 12)
        #expect(try gateway.value("prom_stream_gateway_otlp_cumulative_baselines_total{source=\"otel\"}") == 0)
        #expect(try gateway.metrics().contains("# HELP orders_total Orders placed."))
    }

    /// The OTLP/JSON example of the specification's repository (examples/metrics.json), trimmed to one point per kind.
    static let specExample = #"""
    {"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
     "scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},
      "metrics":[
       {"name":"my.counter","unit":"1","description":"I am a Counter","sum":{"aggregationTemporality":1,"isMonotonic":true,
         "dataPoints":[{"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
           "attributes":[{"key":"my.counter.attr","value":{"stringValue":"some value"}}]}]}},
       {"name":"my.gauge","unit":"1","description":"I am a Gauge","gauge":{"dataPoints":[{"asDouble":10,"timeUnixNano":"1544712660300000000",
           "attributes":[{"key":"my.gauge.attr","value":{"stringValue":"some value"}}]}]}},
       {"name":"my.histogram","unit":"1","description":"I am a Histogram","histogram":{"aggregationTemporality":1,
         "dataPoints":[{"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000","count":2,"sum":2,
           "bucketCounts":[1,1],"explicitBounds":[1],"min":0,"max":2,"attributes":[{"key":"my.histogram.attr","value":{"stringValue":"some value"}}]}]}},
       {"name":"my.exponential.histogram","unit":"1","description":"I am an Exponential Histogram","exponentialHistogram":{"aggregationTemporality":1,
         "dataPoints":[{"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000","count":3,"sum":10,"scale":0,"zeroCount":1,
           "positive":{"offset":1,"bucketCounts":[0,2]},"min":0,"max":5,"zeroThreshold":0,
           "attributes":[{"key":"my.exponential.histogram.attr","value":{"stringValue":"some value"}}]}]}}
      ]}]}]}
    """#

    static func cumulativeCounter(_ value: Double, start: UInt64, time: UInt64) -> [UInt8] {
        Array(#"""
        {"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"batch"}}]},"scopeMetrics":[{"metrics":[
         {"name":"jobs","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"asDouble":\#(value),
          "startTimeUnixNano":"\#(start)","timeUnixNano":"\#(time)"}]}}]}]}]}
        """#.utf8)
    }

    @Test func theSpecificationsJSONExample_cumulativeRules_andEveryErrorStatus() throws {
        let setup = try Setup("""
            sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}", max_request_body_size: 4096 } }
            sinks: { page: { type: prometheus, inputs: [otel], listen: "${GATEWAY_LISTEN}" } }
            """)
        defer { setup.cleanup() }
        let gateway = try setup.start()
        let ok = try setup.post(Array(Self.specExample.utf8))
        #expect(ok.status == 200 && ok.text == "{}" && ok.headers["content-type"] == "application/json")
        let l = "job=\"my.service\""
        #expect(try gateway.value("my_counter_total{\(l),my_counter_attr=\"some value\"}") == 5)
        #expect(try gateway.value("my_gauge_ratio{\(l),my_gauge_attr=\"some value\"}") == 10)
        #expect(try gateway.value("my_histogram_bucket{\(l),my_histogram_attr=\"some value\",le=\"1\"}") == 1)
        #expect(try gateway.value("my_histogram_count{\(l),my_histogram_attr=\"some value\"}") == 2)
        #expect(try gateway.value("my_exponential_histogram_count{\(l),my_exponential_histogram_attr=\"some value\"}") == 3)
        #expect(try gateway.metrics().contains("# HELP my_counter_total I am a Counter"))

        // Cumulative: a stream that started before the gateway is a baseline (adds nothing);
        // then differences; a lower value is a reset (counts from zero); an older point is dropped.
        let old: UInt64 = 1_544_712_660_000_000_000
        #expect(try setup.post(Self.cumulativeCounter(100, start: old, time: old + 1)).status == 200)
        #expect(try gateway.value("jobs_total{job=\"batch\"}") == nil)
        #expect(try setup.post(Self.cumulativeCounter(104, start: old, time: old + 2)).status == 200)
        #expect(try gateway.value("jobs_total{job=\"batch\"}") == 4)
        #expect(try setup.post(Self.cumulativeCounter(104, start: old, time: old + 3)).status == 200)
        #expect(try setup.post(Self.cumulativeCounter(3, start: old, time: old + 4)).status == 200)
        #expect(try gateway.value("jobs_total{job=\"batch\"}") == 7)
        #expect(try setup.post(Self.cumulativeCounter(50, start: old, time: old + 1)).status == 200)
        #expect(try gateway.value("jobs_total{job=\"batch\"}") == 7)
        #expect(try gateway.value("prom_stream_gateway_dropped_metrics_total{source=\"otel\",reason=\"stale_point\"}") == 1)
        #expect(try gateway.value("prom_stream_gateway_otlp_cumulative_baselines_total{source=\"otel\"}") == 1)

        // A point the gateway cannot aggregate: partial success, the others applied.
        let partial = try setup.post(Array(#"""
            {"resourceMetrics":[{"scopeMetrics":[{"metrics":[
             {"name":"queue.depth","sum":{"aggregationTemporality":1,"isMonotonic":false,"dataPoints":[{"asInt":"3"}]}},
             {"name":"lat","histogram":{"aggregationTemporality":1,
               "dataPoints":[{"count":"2","sum":1,"bucketCounts":["1","1","0"],"explicitBounds":[2,1]}]}},
             {"name":"ok","gauge":{"dataPoints":[{"asInt":"7"}]}}]}]}]}
            """#.utf8))
        #expect(partial.status == 200)
        #expect(partial.text.contains(#""rejectedDataPoints":"2""#) && partial.text.contains("non-monotonic"), "\(partial.text)")
        #expect(try gateway.value("ok") == 7)
        #expect(try gateway.value("prom_stream_gateway_dropped_metrics_total{source=\"otel\",reason=\"unsupported_point\"}") == 2,
                "the non-monotonic delta sum, and the bounds out of order")

        // Exemplars: trace and span ids in hex, then the filtered attributes, on the OpenMetrics page.
        let traced = try setup.post(Array(#"""
            {"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"traced","sum":{"aggregationTemporality":1,"isMonotonic":true,
             "dataPoints":[{"asInt":"2","exemplars":[{"asDouble":2,"timeUnixNano":"1700000000500000000","traceId":"5b8efff798038103d269b633813fc60c",
             "spanId":"eee19b7ec3c1b174","filteredAttributes":[{"key":"user.id","value":{"stringValue":"u7"}}]}]}]}}]}]}]}
            """#.utf8))
        #expect(traced.status == 200)
        let openMetrics = try httpGet(port: gateway.port, path: "/metrics", headers: ["Accept": "application/openmetrics-text; version=1.0.0"]).text
        #expect(openMetrics.contains(#"traced_total 2 # {trace_id="5b8efff798038103d269b633813fc60c",span_id="eee19b7ec3c1b174",user_id="u7"} 2 "#),
                "\(openMetrics.split(separator: "\n").filter { $0.hasPrefix("traced") })")

        // The protobuf encoding answers in protobuf: an empty ExportMetricsServiceResponse.
        let empty = try setup.post([], type: "application/x-protobuf")
        #expect(empty.status == 200 && empty.body.isEmpty && empty.headers["content-type"] == "application/x-protobuf")
        // Errors, as OTLP/HTTP says.
        #expect(try setup.post([0x0A, 0x05, 0x01], type: "application/x-protobuf").status == 400)
        #expect(try setup.post(Array("{not json".utf8)).status == 400)
        #expect(try setup.post(Array("{}".utf8), type: "text/plain").status == 415)
        #expect(try setup.post(Array("{}".utf8), encoding: "br").status == 415)
        #expect(try setup.post(Array(repeating: 0x20, count: 5000)).status == 413)
        #expect(try setup.post(Array("{}".utf8), path: "/v1/traces").status == 404)
        #expect(try httpGet(port: setup.otlpPort, path: "/v1/metrics").status == 405)
        let bomb = try #require(GzipBody.make(Array(repeating: 0x20, count: 1 << 20)))
        #expect(try setup.post(bomb, encoding: "gzip").status == 413)
        #expect(try setup.post([1, 2, 3], encoding: "gzip").status == 400)
        let zipped = try #require(GzipBody.make(Self.cumulativeCounter(9, start: old, time: old + 9)))
        #expect(try setup.post(zipped, encoding: "gzip").status == 200)
        #expect(try gateway.value("jobs_total{job=\"batch\"}") == 13)
        #expect(try gateway.value("prom_stream_gateway_otlp_requests_total{source=\"otel\",code=\"413\"}") == 2)
        #expect(gateway.process.isRunning)
    }

    @Test func aFullPipeline_answers429WithRetryAfter_andTheRetryIsCounted() throws {
        // One export may wait (for the snapshot that makes it durable); the next is refused meanwhile.
        let setup = try Setup("""
            sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}", max_pending_requests: 1 } }
            sinks: { page: { type: prometheus, inputs: [otel], listen: "${GATEWAY_LISTEN}", state_file: "${DIR}/state", snapshot_interval: 3s } }
            """)
        defer { setup.cleanup() }
        let gateway = try setup.start()
        let body = Self.oneCount
        let first = setup.postInBackground(body)
        #expect(eventually { (try? gateway.value("prom_stream_gateway_otlp_pending_requests{source=\"otel\"}")) == 1 })
        let refused = try setup.post(body)
        #expect(refused.status == 429 && refused.headers["retry-after"] == "1")
        #expect(first.wait(seconds: 10)?.status == 200)
        #expect(try setup.post(body).status == 200)
        #expect(try gateway.value("n_total") == 2)
    }

    @Test func anExportLargerThanTheMemoryBudget_isTakenWhenNothingElseIsInFlight() throws {
        // 5 000 points are estimated at 1.25 MB, over a 1 MiB budget: refusing it would make the sender retry forever.
        let setup = try Setup(Self.smallBudget)
        defer { setup.cleanup() }
        let gateway = try setup.start()
        let points = (0..<5000).map { #"{"asInt":"1","attributes":[{"key":"i","value":{"intValue":"\#($0)"}}]}"# }.joined(separator: ",")
        let body = #"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"wide","gauge":{"dataPoints":["# + points + "]}}]}]}]}"
        #expect(try setup.post(Array(body.utf8)).status == 200)
        #expect(try gateway.value("prom_stream_gateway_series{type=\"gauge\"}") == 5000)
    }

    @Test func bodiesHeldAtOnce_areBoundedByTheMemoryBudget_beyondIt429() throws {
        let setup = try Setup(Self.smallBudget)
        defer { setup.cleanup() }
        let gateway = try setup.start()
        // A slow client holds 900 kB of an unfinished body…
        let fd = try #require(connectLoopback(port: setup.otlpPort))
        defer { close(fd) }
        let head = Array("POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n".utf8)
        let held = head + Array(repeating: UInt8(ascii: " "), count: 900_000)
        var sent = 0
        while sent < held.count {
            let n = held[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { break }
            sent += n
        }
        usleep(300_000)
        // …so another client's 400 kB body does not fit beside it: 429, to retry.
        let refused = try setup.post(Array(repeating: UInt8(ascii: " "), count: 400_000))
        #expect(refused.status == 429 && refused.headers["retry-after"] == "1", "\(refused.status)")
        // Once the slow client is gone, bodies fit again.
        close(fd)
        #expect(eventually { (try? setup.post(Array(#"{"resourceMetrics":[]}"#.utf8)).status) == 200 })
        #expect(gateway.process.isRunning)
    }

    @Test func stateFile_kill9WhileTheSDKExports_losesNoAcknowledgedExport() throws {
        let setup = try Setup("""
            sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}" } }
            sinks: { page: { type: prometheus, inputs: [otel], listen: "${GATEWAY_LISTEN}", state_file: "${DIR}/state", snapshot_interval: 200ms } }
            """)
        defer { setup.cleanup() }
        var gateway: GatewayProcess? = try setup.start()
        // The SDK sender exports delta counts of 1 from fresh providers while the gateway is killed and restarted.
        let log = setup.dir.appendingPathComponent("sender.log")
        let sender = Process()
        sender.executableURL = URL(fileURLWithPath: python3)
        sender.arguments = [Self.sender, setup.endpoint, "delta", "120", "--service", "k", "--values", "1", "--timeout", "1"]
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        sender.standardOutput = try FileHandle(forWritingTo: log)
        sender.standardError = FileHandle.nullDevice
        try sender.run()
        for round in 0..<3 {
            usleep(UInt32.random(in: 1_500_000...5_000_000))
            if let g = gateway { kill(g.process.processIdentifier, SIGKILL); g.process.waitUntilExit() }
            gateway = nil
            usleep(UInt32.random(in: 0...300_000))
            gateway = try setup.start()
            _ = round
        }
        #expect(sender.isRunning, "the kills fell while the sender exported")
        sender.waitUntilExit()
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        let acknowledged = lines.filter { $0.contains("[true]") }.count
        let attempted = lines.count
        #expect(attempted == 120)
        let g = try #require(gateway)
        // Every export answered 200 is counted; an unanswered one may be (at-least-once), nothing more.
        #expect(eventually { (try? g.value("orders_total{job=\"shop/k\",method=\"card\"}")) != nil })
        let total = try #require(try g.value("orders_total{job=\"shop/k\",method=\"card\"}"))
        #expect(total >= Double(acknowledged), "acknowledged \(acknowledged), counted \(total)")
        #expect(total <= Double(attempted), "attempted \(attempted), counted \(total)")
        #expect(acknowledged < attempted, "some exports fell on a dead gateway (else the kills proved nothing)")
    }

    @Test func theWebConfig_tlsAndBasicAuth_guardTheSource_asOnMetrics() throws {
        let certs = try TestCertificates()
        let htpasswd = try #require(RedisServer.which("htpasswd"), "htpasswd not installed (apt-get install apache2-utils)")
        let hash = String(try runCommand(htpasswd, ["-nbBC", "10", "lambda", "s3cret"]).output.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(7))
        let web = certs.path("otlp-web.yml")
        try """
            tls_server_config: { cert_file: server.crt, key_file: server.key, client_auth_type: VerifyClientCertIfGiven, client_ca_file: ca.crt }
            basic_auth_users: { lambda: \(hash) }
            """.write(toFile: web, atomically: true, encoding: .utf8)
        let setup = try Setup("""
            sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}", web_config_file: "\(web)" } }
            sinks: { page: { type: prometheus, inputs: [otel], listen: "${GATEWAY_LISTEN}" } }
            """)
        defer { setup.cleanup() }
        let gateway = try setup.start()
        let url = "https://localhost:\(setup.otlpPort)/v1/metrics"
        // The SDK over TLS with the right credentials: taken.
        let r = try runCommand(python3, [Self.sender, url, "delta", "1", "--service", "tls", "--ca", certs.caFile, "--auth", "lambda:s3cret", "--timeout", "3"])
        #expect(r.output.contains("[true]"), "\(r.output)")
        #expect(try gateway.value("orders_total{job=\"shop/tls\",method=\"card\"}") == 6)
        // Wrong password: the SDK's export fails (401); nothing counted.
        let wrong = try runCommand(python3, [Self.sender, url, "delta", "1", "--service", "tls", "--ca", certs.caFile, "--auth", "lambda:nope", "--timeout", "3"])
        #expect(wrong.output.contains("[false]"), "\(wrong.output)")
        let curl = { (extra: [String]) in try runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", "-X", "POST",
                                                                           "-H", "Content-Type: application/json", "--data", "{}"] + extra + [url]).output }
        #expect(try curl(["--cacert", certs.caFile]) == "401")
        #expect(try curl(["--cacert", certs.caFile, "-u", "lambda:s3cret"]) == "200")
        #expect(try curl(["--cacert", certs.caFile, "-u", "lambda:s3cret", "--cert", certs.clientCert, "--key", certs.clientKey]) == "200")
        #expect(try curl(["--cacert", certs.caFile, "-u", "lambda:s3cret", "--cert", certs.expiredCert, "--key", certs.expiredKey]) == "000",
                "a client certificate the CA did not sign (or expired) fails the handshake")
        #expect(try gateway.value("orders_total{job=\"shop/tls\",method=\"card\"}") == 6)
    }

    @Test func aReloadThatRebuildsTheSource_keepsItsCumulativeStreams_andTheStateFileCount() throws {
        func pipeline(ttl: String) -> String {
            """
            sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}", stream_ttl: \(ttl) } }
            sinks: { page: { type: prometheus, inputs: [otel], listen: "${GATEWAY_LISTEN}", state_file: "${DIR}/state", snapshot_interval: 200ms } }
            """
        }
        let setup = try Setup(pipeline(ttl: "1h"))
        defer { setup.cleanup() }
        let gateway = try setup.start()
        let start = UInt64(Date().timeIntervalSince1970 * 1e9)
        #expect(try setup.post(Self.cumulativeCounter(5, start: start, time: start + 1)).status == 200)
        #expect(try gateway.value("jobs_total{job=\"batch\"}") == 5)
        // A changed option rebuilds the source (same port): its successor keeps the stream table.
        try pipeline(ttl: "2h").replacingOccurrences(of: "${OTLP_PORT}", with: String(setup.otlpPort)).replacingOccurrences(of: "${DIR}", with: setup.dir.path)
            .write(to: setup.pipeline, atomically: true, encoding: .utf8)
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.contains("reloaded") && (try? setup.post(Self.cumulativeCounter(5, start: start, time: start + 2)).status) == 200 })
        #expect(try setup.post(Self.cumulativeCounter(12, start: start, time: start + 3)).status == 200)
        #expect(try gateway.value("jobs_total{job=\"batch\"}") == 12, "the stream continued: 5 + 7, not 5 + 12")
        // And the numbering continued: a restart restores the count from the state file, nothing twice.
        #expect(gateway.terminate().status == 0)
        let again = try setup.start()
        #expect(try again.value("jobs_total{job=\"batch\"}") == 12)
    }

    @Test func relabelRules_workOnOTLPSamples_asOnRedisOnes() throws {
        let setup = try Setup("""
            sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}", resource_attributes: [cloud.region] } }
            transforms:
              rules:
                type: relabel
                inputs: [otel]
                rules:
                  - { source_labels: [job], target_label: service }
                  - { action: labeldrop, regex: job }
                  - { source_labels: [__name__], regex: "secret_.*", action: drop }
            sinks: { page: { type: prometheus, inputs: [rules], listen: "${GATEWAY_LISTEN}" } }
            """)
        defer { setup.cleanup() }
        let gateway = try setup.start()
        let body = Array(#"""
            {"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}},
             {"key":"cloud.region","value":{"stringValue":"eu-west-1"}}]},"scopeMetrics":[{"metrics":[
             {"name":"n","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asInt":"3"}]}},
             {"name":"secret.things","gauge":{"dataPoints":[{"asInt":"1"}]}}]}]}]}
            """#.utf8)
        #expect(try setup.post(body).status == 200)
        #expect(try gateway.value("n_total{cloud_region=\"eu-west-1\",service=\"api\"}") == 3)
        #expect(try !gateway.metrics().contains("secret_things"))
        #expect(try gateway.value("prom_stream_gateway_dropped_metrics_total{source=\"otel\",reason=\"relabel_drop\"}") == 1)
    }

    @Test func aStop_answersWhatIsNotDurableWith503_andTheFinalSnapshotKeepsIt() throws {
        // The snapshot interval is longer than the 10 s the source waits at a stop: the waiting export gets 503
        // (the sender retries), and the final snapshot at the stop still holds it: at-least-once, as documented.
        let setup = try Setup("""
            sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}" } }
            sinks: { page: { type: prometheus, inputs: [otel], listen: "${GATEWAY_LISTEN}", state_file: "${DIR}/state", snapshot_interval: 1m } }
            """)
        defer { setup.cleanup() }
        let gateway = try setup.start()
        let body = Self.oneCount
        let answer = setup.postInBackground(body)
        #expect(eventually { (try? gateway.value("prom_stream_gateway_otlp_pending_requests{source=\"otel\"}")) == 1 })
        #expect(gateway.terminate(timeout: 30).status == 0)
        #expect(answer.wait(seconds: 30)?.status == 503)
        let again = try setup.start()
        #expect(try again.value("n_total") == 1)
    }

    @Test func theDefaultPipeline_withOtlpListen_meetsTheRedisSenders() throws {
        let redis = try RedisServer()
        let otlpPort = freePort()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Otlp__Listen": "127.0.0.1:\(otlpPort)"])
        #expect(eventually { portAccepts(otlpPort) })
        try redis.push([#"{"type":"counter","name":"orders_total","value":100,"labels":{"job":"shop/both","method":"card"}}"#])
        let dir = try makeTemporaryDirectory("otlp-default")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runCommand(python3, [Self.sender, "http://127.0.0.1:\(otlpPort)/v1/metrics", "delta", "1", "--service", "both"])
        #expect(r.status == 0 && r.output.contains("[true]"), "\(r.output)")
        #expect(eventually { (try? gateway.value("orders_total{job=\"shop/both\",method=\"card\"}")) == 106 })
        #expect(try gateway.value("prom_stream_gateway_ready{source=\"otlp\"}") == 1)
    }

    /// Three durable inputs into one state file: the default pipeline with a sharded queue
    /// (`Redis__MetricQueueShards`), `Metrics__StateFile` and `Otlp__Listen`, killed with SIGKILL
    /// four times while Redis arrays wait in every shard and the SDK exports, restarted with the
    /// parsers alternating. The Redis counters end exact; OTLP between what was answered 200 and
    /// what was attempted.
    @Test func theDefaultPipeline_shardsStateFileAndOTLP_kill9WhileBothSend_redisExact_otlpWithinItsBounds() throws {
        let redis = try RedisServer()
        let otlpPort = freePort()
        let dir = try makeTemporaryDirectory("otlp-shards")
        defer { try? FileManager.default.removeItem(at: dir) }
        func start(_ parser: String) throws -> GatewayProcess {
            let g = try GatewayProcess(environment: [
                "Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Redis__MetricQueueShards": "4", "Gateway__Instance": "k9",
                "Metrics__StateFile": dir.appendingPathComponent("state").path, "Metrics__SnapshotInterval": "200ms",
                "Otlp__Listen": "127.0.0.1:\(otlpPort)", "Metrics__JsonParser": parser,
            ])
            #expect(eventually(timeout: 15) { portAccepts(otlpPort) }, "the otlp source did not listen:\n\(g.log)")
            return g
        }
        let names = (0..<6).map { "fam\($0)_total" }
        func push(_ arrays: Int) throws {
            for name in names {
                let key = ShardRouting.queueKey(ShardRouting.defaultQueueKey, shard: ShardRouting.shard(of: name, shards: 4))
                let samples = (0..<10).map { #"{"type":"counter","name":"\#(name)","value":1,"labels":{"k":"\#($0)"}}"# }
                let array = "[" + samples.joined(separator: ",") + "]"
                try redis.push(Array(repeating: array, count: arrays), key: key)
            }
        }
        try push(500)
        var gateway: GatewayProcess? = try start("jansson")
        let log = dir.appendingPathComponent("sender.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let sender = Process()
        sender.executableURL = URL(fileURLWithPath: python3)
        sender.arguments = [Self.sender, "http://127.0.0.1:\(otlpPort)/v1/metrics", "delta", "80", "--service", "k",
                            "--values", "1", "--timeout", "1"]
        sender.standardOutput = try FileHandle(forWritingTo: log)
        sender.standardError = FileHandle.nullDevice
        try sender.run()
        for round in 0..<4 {
            usleep(UInt32.random(in: 800_000...2_500_000))
            try push(200)
            if let g = gateway { kill(g.process.processIdentifier, SIGKILL); g.process.waitUntilExit() }
            gateway = nil
            usleep(UInt32.random(in: 0...300_000))
            gateway = try start(round % 2 == 0 ? "simdjson" : "jansson")
        }
        sender.waitUntilExit()
        let g = try #require(gateway)
        let pushed = Double((500 + 4 * 200) * 10)
        #expect(eventually(timeout: 30) { names.allSatisfy { name in (try? self.total(g, name)) == pushed } },
                "every shard's counters exact after four kills: \(names.map { (try? self.total(g, $0)) ?? -1 }) of \(pushed)")
        let exports = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").filter { $0.contains("exports") }
        let acknowledged = exports.filter { $0.contains("[true]") }.count
        #expect(exports.count == 80)
        #expect(acknowledged < exports.count, "some exports fell on a dead gateway (else the kills proved nothing)")
        let otlp = try #require(try g.value("orders_total{job=\"shop/k\",method=\"card\"}"))
        #expect(otlp >= Double(acknowledged) && otlp <= Double(exports.count),
                "answered \(acknowledged), attempted \(exports.count), counted \(otlp)")
        #expect(try (0..<4).map { try redis.llen(ShardRouting.queueKey(ShardRouting.defaultQueueKey, shard: $0)) }.reduce(0, +) == 0)
    }

    func total(_ gateway: GatewayProcess, _ name: String) throws -> Double {
        try gateway.metrics().split(separator: "\n").filter { $0.hasPrefix(name + "{") }
            .compactMap { Double($0.split(separator: " ").last!) }.reduce(0, +)
    }
}


/// A gzip body made by the gateway's own zlib wrapper.
enum GzipBody {
    static func make(_ bytes: [UInt8]) -> [UInt8]? { Gzip.compress(bytes, level: 9) }
}
