import Foundation
import Redis
import Testing
import TestSupport

/// The `remote_write` sink against a real Prometheus (2.42, `--web.enable-remote-write-receiver`)
/// and against `Tests/Fixtures/remote-write/receiver.py`, a scripted receiver that decodes
/// every request independently (cramjam's snappy, protoc + the protobuf package).
@Suite(.serialized) struct RemoteWriteTests {
    /// A gateway with a `prometheus` and a `remote_write` sink on one Redis queue.
    struct Setup {
        let redis: RedisServer
        let gateway: GatewayProcess
        let dir: URL

        init(remote: String, interval: String = "500ms", sinkOptions: String = "", pageOptions: String = "", extraSinks: String = "") throws {
            redis = try RedisServer()
            dir = try makeTemporaryDirectory("rw")
            let pipeline = dir.appendingPathComponent("p.yaml")
            // Options are flat keys (flow mappings at most): each at the sink's indentation.
            func indented(_ text: String) -> String {
                text.split(separator: "\n").map { "    " + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
            }
            try """
                sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port)" } }
                transforms: { decode: { type: json_decode, inputs: [queue] } }
                sinks:
                  page:
                    type: prometheus
                    inputs: [decode]
                    listen: "${GATEWAY_LISTEN}"
                \(indented(pageOptions))
                  remote:
                    type: remote_write
                    inputs: [decode]
                    url: "\(remote)"
                    interval: \(interval)
                \(indented(sinkOptions))
                \(extraSinks)
                """.write(to: pipeline, atomically: true, encoding: .utf8)
            gateway = try GatewayProcess(args: ["--config", pipeline.path])
        }

        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    /// The Prometheus query API's value of `q`'s first result (nil: no result).
    static func value(_ prometheus: PrometheusServer, _ q: String) -> Double? {
        guard let data = prometheus.query(q).data(using: .utf8),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let result = (json["data"] as? [String: Any])?["result"] as? [[String: Any]],
              let first = result.first, let v = first["value"] as? [Any], let text = v.last as? String else { return nil }
        return Double(text)
    }

    static func labels(_ prometheus: PrometheusServer, _ q: String) -> [String: String] {
        guard let data = prometheus.query(q).data(using: .utf8),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let result = (json["data"] as? [String: Any])?["result"] as? [[String: Any]],
              let first = result.first else { return [:] }
        return first["metric"] as? [String: String] ?? [:]
    }

    static let samples = [
        #"{"type":"counter","name":"rw_jobs_total","value":3,"labels":{"queue":"a\"b"}}"#,
        #"{"type":"counter","name":"rw_jobs_total","value":4,"labels":{"queue":"a\"b"}}"#,
        #"{"type":"gauge","name":"rw_temperature","value":21.5}"#,
        #"{"type":"gauge","name":"rw_temperature","value":-3.25}"#,
        #"{"type":"histogram","name":"rw_latency_seconds","value":0.3,"buckets":[0.1,0.5,1],"labels":{"route":"/x"}}"#,
        #"{"type":"histogram","name":"rw_latency_seconds","value":0.05,"buckets":[0.1,0.5,1],"labels":{"route":"/x"}}"#,
        #"{"type":"histogram","name":"rw_latency_seconds","value":7,"buckets":[0.1,0.5,1],"labels":{"route":"/x"}}"#,
        #"{"type":"summary","name":"rw_payload_bytes","value":100,"quantiles":[0.5,0.9],"epsilons":[0.05,0.01]}"#,
        #"{"type":"summary","name":"rw_payload_bytes","value":300,"quantiles":[0.5,0.9],"epsilons":[0.05,0.01]}"#,
    ]

    @Test func aRealPrometheus_storesWhatTheGatewaysOwnPageShows() throws {
        let prometheus = try PrometheusServer(features: ["native-histograms"], extraArguments: ["--web.enable-remote-write-receiver"])
        let native = #"native_histograms: {"rw_latency_seconds": {schema: 3}}"#
        let setup = try Setup(remote: "http://127.0.0.1:\(prometheus.port)/api/v1/write",
                              sinkOptions: "        external_labels: {cluster: eu-1, queue: never}\n        \(native)",
                              pageOptions: "        \(native)")
        defer { setup.cleanup() }
        try setup.redis.push(Self.samples)
        let series = [
            ("rw_jobs_total{queue=\"a\\\"b\"}", "rw_jobs_total"),
            ("rw_temperature", "rw_temperature"),
            ("rw_latency_seconds_bucket{route=\"/x\",le=\"0.1\"}", "rw_latency_seconds_bucket{le=\"0.1\"}"),
            ("rw_latency_seconds_bucket{route=\"/x\",le=\"0.5\"}", "rw_latency_seconds_bucket{le=\"0.5\"}"),
            ("rw_latency_seconds_bucket{route=\"/x\",le=\"1\"}", "rw_latency_seconds_bucket{le=\"1\"}"),
            ("rw_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"}", "rw_latency_seconds_bucket{le=\"+Inf\"}"),
            ("rw_latency_seconds_sum{route=\"/x\"}", "rw_latency_seconds_sum"),
            ("rw_latency_seconds_count{route=\"/x\"}", "rw_latency_seconds_count"),
            ("rw_payload_bytes{quantile=\"0.5\"}", "rw_payload_bytes{quantile=\"0.5\"}"),
            ("rw_payload_bytes{quantile=\"0.9\"}", "rw_payload_bytes{quantile=\"0.9\"}"),
            ("rw_payload_bytes_sum", "rw_payload_bytes_sum"),
            ("rw_payload_bytes_count", "rw_payload_bytes_count"),
        ]
        #expect(eventually(timeout: 15) { Self.value(prometheus, "rw_payload_bytes_count") == 2 && Self.value(prometheus, "rw_jobs_total") == 7 })
        for (page, query) in series {
            let expected = try setup.gateway.value(page)
            #expect(expected != nil, "\(page) is not on the page")
            #expect(Self.value(prometheus, query) == expected, "\(query) in Prometheus differs from \(page) on the page")
        }
        #expect(Self.value(prometheus, "rw_jobs_total") == 7)
        #expect(Self.value(prometheus, "rw_temperature") == -3.25)
        // External labels: added where the series has no such label, never replacing one.
        #expect(Self.labels(prometheus, "rw_jobs_total") == ["__name__": "rw_jobs_total", "cluster": "eu-1", "queue": "a\"b"])
        #expect(Self.labels(prometheus, "rw_temperature")["queue"] == "never")
        // The native histogram: count and sum as on the classic series, observations in their buckets.
        #expect(Self.value(prometheus, "histogram_count(rw_latency_seconds)") == 3)
        #expect(Self.value(prometheus, "histogram_sum(rw_latency_seconds)") == 7.35)
        #expect(Self.value(prometheus, "histogram_fraction(0, 1, rw_latency_seconds)").map { abs($0 - 2.0 / 3) < 0.01 } == true)
        // The sink's own meta-metrics, on the page.
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_samples_sent_total{sink=\"remote\"}").map { $0 > 0 } == true)
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_histograms_sent_total{sink=\"remote\"}").map { $0 > 0 } == true)
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_last_success_timestamp_seconds{sink=\"remote\"}").map { $0 > 1e9 } == true)
    }

    @Test func anExpiredSeries_getsAStalenessMarker_andIsAbsentAtOnce() throws {
        let prometheus = try PrometheusServer(extraArguments: ["--web.enable-remote-write-receiver"])
        let setup = try Setup(remote: "http://127.0.0.1:\(prometheus.port)/api/v1/write",
                              sinkOptions: "        expire_after_by_name: {\"rw_short_*\": 2s}")
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"gauge","name":"rw_short_lived","value":1}"#, #"{"type":"gauge","name":"rw_long_lived","value":2}"#])
        #expect(eventually(timeout: 10) { Self.value(prometheus, "rw_short_lived") == 1 })
        // Without a marker the series would stay visible for Prometheus's 5-minute look-back.
        #expect(eventually(timeout: 15) { Self.value(prometheus, "rw_short_lived") == nil })
        #expect(Self.value(prometheus, "rw_long_lived") == 2)
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_stale_markers_sent_total{sink=\"remote\"}") == 1)
    }

    /// The page's admin API deletes from every aggregate of the pipeline: the remote gets a
    /// staleness marker, as for expiry, instead of the deleted series every interval for ever.
    @Test func aSeriesDeletedThroughTheAdminAPI_leavesTheRemoteToo() throws {
        let prometheus = try PrometheusServer(extraArguments: ["--web.enable-remote-write-receiver"])
        let setup = try Setup(remote: "http://127.0.0.1:\(prometheus.port)/api/v1/write", pageOptions: "        enable_admin_api: true")
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"gauge","name":"rw_doomed","value":1,"labels":{"q":"tmp"}}"#,
                              #"{"type":"gauge","name":"rw_doomed","value":2,"labels":{"q":"keep"}}"#])
        #expect(eventually(timeout: 10) {
            Self.value(prometheus, #"rw_doomed{q="tmp"}"#) == 1 && Self.value(prometheus, #"rw_doomed{q="keep"}"#) == 2
        })
        let selector = #"rw_doomed{q="tmp"}"#.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let deleted = try httpGet(port: setup.gateway.port, path: "/api/v1/series?match%5B%5D=\(selector)", method: "DELETE")
        #expect(deleted.status == 200 && deleted.text.contains(#""deleted":1"#) && deleted.text.contains(#""sinks":{"page":1,"remote":1}"#),
                "\(deleted.text)")
        #expect(eventually(timeout: 10) { Self.value(prometheus, #"rw_doomed{q="tmp"}"#) == nil }, "the remote still shows the deleted series")
        #expect(Self.value(prometheus, #"rw_doomed{q="keep"}"#) == 2)
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_stale_markers_sent_total{sink=\"remote\"}") == 1)
    }

    @Test func aReceiverThatWasDown_getsTheLatestState_andTheCounterHasNoReset() throws {
        let prometheus = try PrometheusServer(extraArguments: ["--web.enable-remote-write-receiver"])
        let setup = try Setup(remote: "http://127.0.0.1:\(prometheus.port)/api/v1/write")
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"counter","name":"rw_outage_total","value":5}"#])
        #expect(eventually(timeout: 10) { Self.value(prometheus, "rw_outage_total") == 5 })
        prometheus.stop()
        try setup.redis.push([#"{"type":"counter","name":"rw_outage_total","value":6}"#])
        #expect(eventually(timeout: 10) { (try? setup.gateway.value("prom_stream_gateway_remote_write_requests_failed_total{sink=\"remote\",reason=\"connection\"}")).map { $0 >= 2 } == true })
        #expect(setup.gateway.process.isRunning)
        #expect(try setup.gateway.value("prom_stream_gateway_ready{source=\"queue\"}") == 1, "a down backend must not stop intake")
        try setup.redis.push([#"{"type":"counter","name":"rw_outage_total","value":7}"#])
        try prometheus.restart()
        #expect(eventually(timeout: 15) { Self.value(prometheus, "rw_outage_total") == 18 })
        #expect(Self.value(prometheus, "resets(rw_outage_total[5m])") == 0)
    }

    // MARK: The scripted receiver

    final class Receiver: @unchecked Sendable {
        let process = Process()
        let port: Int
        let dir: URL

        init(_ arguments: [String] = []) throws {
            dir = try makeTemporaryDirectory("rw-receiver")
            let portFile = dir.appendingPathComponent("port").path
            process.executableURL = URL(fileURLWithPath: python3)
            process.arguments = [packageRoot.appendingPathComponent("Tests/Fixtures/remote-write/receiver.py").path, portFile] + arguments
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            var port = 0
            let child = process
            _ = eventually(timeout: 15) {
                port = Int((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "") ?? 0
                return port > 0 || !child.isRunning
            }
            guard port > 0 else { throw TestFailure("the receiver did not start (python3 with cramjam and protobuf: `make pydeps`)") }
            self.port = port
        }

        deinit {
            process.terminate()
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: dir)
        }

        /// Every request so far, decoded.
        func received(https: TestCertificates? = nil) throws -> [[String: Any]] {
            let text: String
            if let https {
                let r = try runCommand("/usr/bin/curl", ["-sS", "--cacert", https.caFile, "https://localhost:\(port)/received"])
                text = r.output
            } else {
                text = try httpGet(port: port, path: "/received").text
            }
            return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? []
        }
    }

    struct TestFailure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    @Test func theWireBytes_decodeWithAnIndependentDecoder() throws {
        let receiver = try Receiver()
        let setup = try Setup(remote: "http://127.0.0.1:\(receiver.port)/receive", sinkOptions: "        headers: {X-Scope-OrgID: tenant-1}")
        defer { setup.cleanup() }
        try setup.redis.push(Self.samples)
        var requests: [[String: Any]] = []
        #expect(eventually(timeout: 10) {
            requests = (try? receiver.received()) ?? []
            return requests.contains { (($0["series"] as? [[String: Any]]) ?? []).count >= 12 }
        })
        let request = try #require(requests.last { (($0["series"] as? [[String: Any]]) ?? []).count >= 12 })
        #expect(request["error"] == nil)
        let headers = try #require(request["headers"] as? [String: String])
        #expect(headers["content-encoding"] == "snappy")
        #expect(headers["content-type"] == "application/x-protobuf")
        #expect(headers["x-prometheus-remote-write-version"] == "0.1.0")
        #expect(headers["x-scope-orgid"] == "tenant-1")
        let series = try #require(request["series"] as? [[String: Any]])
        var byName: [String: [[String]]] = [:]
        for s in series {
            let labels = try #require(s["labels"] as? [[String]])
            #expect(labels.map { $0[0] } == labels.map { $0[0] }.sorted(), "labels are sorted by name")
            let name = try #require(labels.first { $0[0] == "__name__" }?[1])
            byName[name, default: []].append(contentsOf: labels)
            let samples = try #require(s["samples"] as? [[Any]])
            #expect(samples.count == 1)
        }
        #expect(byName["rw_jobs_total"]?.contains(["queue", "a\"b"]) == true, "the label value arrives unescaped")
        #expect(byName["rw_latency_seconds_bucket"]?.filter { $0[0] == "le" }.map { $0[1] }.sorted() == ["+Inf", "0.1", "0.5", "1"])
        let metadata = try #require(request["metadata"] as? [[String: Any]])
        let types = Dictionary(metadata.map { ($0["metric_family_name"] as? String ?? "", $0["type"] as? String ?? "") }, uniquingKeysWith: { a, _ in a })
        #expect(types == ["rw_jobs_total": "COUNTER", "rw_temperature": "GAUGE", "rw_latency_seconds": "HISTOGRAM", "rw_payload_bytes": "SUMMARY"])
    }

    @Test func a500ThenA200_isRetriedAndArrives() throws {
        let receiver = try Receiver(["--statuses", "500,503"])
        let setup = try Setup(remote: "http://127.0.0.1:\(receiver.port)/", interval: "5s", sinkOptions: "queue_config: {min_backoff: 100ms}")
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"counter","name":"rw_retry_total","value":1}"#])
        var requests: [[String: Any]] = []
        #expect(eventually(timeout: 15) { requests = (try? receiver.received()) ?? []; return requests.contains { $0["status"] as? Int == 200 } })
        #expect(requests.prefix(3).map { $0["status"] as? Int } == [500, 503, 200], "retried within one round, before the next interval")
        let times = requests.prefix(3).compactMap { $0["time"] as? Double }
        #expect(times.count == 3 && times[2] - times[0] < 4)
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_retries_total{sink=\"remote\"}") == 2)
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_requests_failed_total{sink=\"remote\",reason=\"5xx\"}") == 2)
        #expect(setup.gateway.log.contains("HTTP 500: status 500 from the test receiver"), "the body's first line is logged")
    }

    @Test func a429_waitsForRetryAfter() throws {
        let receiver = try Receiver(["--statuses", "429", "--retry-after", "2"])
        let setup = try Setup(remote: "http://127.0.0.1:\(receiver.port)/", interval: "5s", sinkOptions: "queue_config: {min_backoff: 10ms}")
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"counter","name":"rw_busy_total","value":1}"#])
        var requests: [[String: Any]] = []
        #expect(eventually(timeout: 20) { requests = (try? receiver.received()) ?? []; return requests.contains { $0["status"] as? Int == 200 } })
        let times = requests.compactMap { $0["time"] as? Double }
        #expect(requests.first?["status"] as? Int == 429)
        #expect(times.count >= 2 && times[1] - times[0] >= 1.9, "Retry-After: 2 is honoured, not the 10 ms back-off")
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_requests_failed_total{sink=\"remote\",reason=\"429\"}") == 1)
    }

    @Test func a400_isDroppedAndCounted_notRetried() throws {
        let receiver = try Receiver(["--statuses", "400"])
        let setup = try Setup(remote: "http://127.0.0.1:\(receiver.port)/", interval: "1s")
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"counter","name":"rw_bad_total","value":1}"#])
        var requests: [[String: Any]] = []
        #expect(eventually(timeout: 15) { requests = (try? receiver.received()) ?? []; return requests.count >= 2 })
        #expect(requests[0]["status"] as? Int == 400)
        let gap = (requests[1]["time"] as? Double ?? 0) - (requests[0]["time"] as? Double ?? 0)
        #expect(gap > 0.5, "the next request is the next round's, not a retry")
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_requests_failed_total{sink=\"remote\",reason=\"4xx\"}") == 1)
        #expect(try setup.gateway.value("prom_stream_gateway_remote_write_retries_total{sink=\"remote\"}") == 0)
    }

    @Test func basicAuthOverHTTPS_withAPrivateCA_andARotatedPasswordFile() throws {
        let certs = try TestCertificates()
        let dir = try makeTemporaryDirectory("rw-secret")
        defer { try? FileManager.default.removeItem(at: dir) }
        let password = dir.appendingPathComponent("password")
        try "first\n".write(to: password, atomically: true, encoding: .utf8)
        let receiver = try Receiver(["--tls", certs.serverCert, certs.serverKey, "--basic", "gw:\(password.path)"])
        let setup = try Setup(remote: "https://localhost:\(receiver.port)/push", sinkOptions: """
                    basic_auth: {username: gw, password_file: "\(password.path)"}
                    tls_config: {ca_file: "\(certs.caFile)"}
            """)
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"counter","name":"rw_tls_total","value":1}"#])
        #expect(eventually(timeout: 10) { ((try? receiver.received(https: certs)) ?? []).contains { $0["status"] as? Int == 200 } })
        try "second\n".write(to: password, atomically: true, encoding: .utf8)
        let before = try receiver.received(https: certs).count
        #expect(eventually(timeout: 10) { ((try? receiver.received(https: certs)) ?? []).dropFirst(before + 1).contains { $0["status"] as? Int == 200 } },
                "the rotated password is read at the next send")
        #expect(try receiver.received(https: certs).filter { $0["status"] as? Int == 401 }.count <= 1)
    }

    @Test func bearerTokenOverHTTPS_andAnUnknownCA_isRefusedByTheClient() throws {
        let certs = try TestCertificates()
        let dir = try makeTemporaryDirectory("rw-bearer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let token = dir.appendingPathComponent("token")
        try "s3cr3t".write(to: token, atomically: true, encoding: .utf8)
        let receiver = try Receiver(["--tls", certs.serverCert, certs.serverKey, "--bearer", token.path])
        let setup = try Setup(remote: "https://localhost:\(receiver.port)/push", sinkOptions: """
                    authorization: {credentials_file: "\(token.path)"}
                    tls_config: {ca_file: "\(certs.caFile)"}
            """, extraSinks: """
              untrusted:
                type: remote_write
                inputs: [decode]
                url: "https://localhost:\(receiver.port)/push"
                interval: 500ms
                authorization: {credentials_file: "\(token.path)"}
                tls_config: {ca_file: "\(certs.otherCAFile)"}
            """)
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"counter","name":"rw_bearer_total","value":1}"#])
        #expect(eventually(timeout: 10) { ((try? receiver.received(https: certs)) ?? []).contains { $0["status"] as? Int == 200 } })
        #expect(try receiver.received(https: certs).allSatisfy { $0["status"] as? Int == 200 }, "every request carried the token")
        #expect(eventually(timeout: 10) {
            (try? setup.gateway.value("prom_stream_gateway_remote_write_requests_failed_total{sink=\"untrusted\",reason=\"connection\"}")).map { $0 >= 1 } == true
        })
    }

    /// `tls_config` files are read at every new connection, as Prometheus does: a CA file that is
    /// fixed (or a client certificate renewed) while the gateway runs is used without a restart.
    @Test func aCAFileReplacedWhileRunning_isUsedAtTheNextConnection() throws {
        let certs = try TestCertificates()
        let dir = try makeTemporaryDirectory("rw-rotate")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ca = dir.appendingPathComponent("ca.crt")
        try FileManager.default.copyItem(atPath: certs.otherCAFile, toPath: ca.path)   // the wrong CA first
        let receiver = try Receiver(["--tls", certs.serverCert, certs.serverKey])
        let setup = try Setup(remote: "https://localhost:\(receiver.port)/push", sinkOptions: """
                    tls_config: {ca_file: "\(ca.path)"}
            """)
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"counter","name":"rw_rotated_total","value":1}"#])
        let failed = "prom_stream_gateway_remote_write_requests_failed_total{sink=\"remote\",reason=\"connection\"}"
        #expect(eventually(timeout: 10) { (try? setup.gateway.value(failed)).map { $0 >= 1 } == true })
        #expect(try receiver.received(https: certs).isEmpty)
        try Data(contentsOf: URL(fileURLWithPath: certs.caFile)).write(to: ca, options: .atomic)
        #expect(eventually(timeout: 10) { ((try? receiver.received(https: certs)) ?? []).contains { $0["status"] as? Int == 200 } },
                "the replaced CA file was not read again")
    }

    @Test func aStoppingGateway_sendsTheLastStateOnce() throws {
        let receiver = try Receiver()
        let setup = try Setup(remote: "http://127.0.0.1:\(receiver.port)/", interval: "1h")
        defer { setup.cleanup() }
        try setup.redis.push([#"{"type":"counter","name":"rw_last_total","value":9}"#])
        #expect(eventually { (try? setup.gateway.value("rw_last_total")) == 9 })
        #expect(try receiver.received().isEmpty, "no round before the interval")
        _ = setup.gateway.terminate()
        let requests = try receiver.received()
        #expect(requests.count == 1)
        let series = (requests.first?["series"] as? [[String: Any]]) ?? []
        #expect(series.contains { ($0["labels"] as? [[String]])?.contains(["__name__", "rw_last_total"]) == true })
    }

    /// No sink serves HTTP: the gateway itself answers /ready, /-/healthy, /-/reload and its
    /// own /metrics, on --listen, and a reload does not rebuild that server.
    @Test func aPipelineWithOnlyRemoteWrite_stillHasReadinessMetricsAndReload() throws {
        let receiver = try Receiver()
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("rw-only")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        func write(_ interval: String) throws {
            try """
                sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port)" } }
                transforms: { decode: { type: json_decode, inputs: [queue] } }
                sinks: { remote: { type: remote_write, inputs: [decode], url: "http://127.0.0.1:\(receiver.port)/", interval: \(interval) } }
                """.write(to: pipeline, atomically: true, encoding: .utf8)
        }
        try write("500ms")
        let gateway = try GatewayProcess(args: ["--config", pipeline.path, "--web.enable-lifecycle"])
        let ready = try httpGet(port: gateway.port, path: "/ready")
        #expect(ready.status == 200 && ready.text.contains(#""queue":{"ready":true"#), "\(ready.text)")
        #expect(try httpGet(port: gateway.port, path: "/-/healthy").text == "ok")
        try redis.push([#"{"type":"counter","name":"rw_only_total","value":1}"#])
        #expect(eventually { (try? gateway.value("prom_stream_gateway_remote_write_samples_sent_total{sink=\"remote\"}")).map { $0 >= 1 } == true })
        #expect(try gateway.value("prom_stream_gateway_ready{source=\"queue\"}") == 1)
        #expect(try gateway.value("rw_only_total") == nil, "the aggregate is the remote's, not served here")
        try write("700ms")
        let reload = try httpGet(port: gateway.port, path: "/-/reload", method: "POST")
        #expect(reload.status == 200, "\(reload.text)")
        #expect(eventually { gateway.log.contains("stage=remote") && gateway.log.contains("interval=0.7") })
        #expect(try httpGet(port: gateway.port, path: "/-/healthy").text == "ok", "the same server answers after the reload")
        #expect(try gateway.value("prom_stream_gateway_config_last_reload_successful") == 1)
    }

    /// The values of `name` in every request the receiver decoded, in arrival order.
    static func values(_ name: String, in requests: [[String: Any]]) -> [Double] {
        requests.flatMap { r in
            ((r["series"] as? [[String: Any]]) ?? []).filter { (($0["labels"] as? [[String]]) ?? []).contains(["__name__", name]) }
                .compactMap { (($0["samples"] as? [[Any]])?.first?.first as? Double) }
        }
    }

    /// `state_file` below a reliable source, with only a remote_write sink: killed with SIGKILL
    /// and restarted, the remote sees the counter continue from its total, never counted twice
    /// and never reset.
    @Test func withAStateFile_aKilledGatewayContinuesTheRemotesCounterExactly() throws {
        let receiver = try Receiver()
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("rw-durable")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        try """
            sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port)", reliable: true, instance: rw } }
            transforms: { decode: { type: json_decode, inputs: [queue] } }
            sinks:
              remote:
                type: remote_write
                inputs: [decode]
                url: "http://127.0.0.1:\(receiver.port)/"
                interval: 300ms
                state_file: "\(dir.appendingPathComponent("state").path)"
                snapshot_interval: 200ms
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        let increment = #"{"type":"counter","name":"rw_durable_total","value":1}"#
        var gateway = try GatewayProcess(args: ["--config", pipeline.path])
        try redis.push(Array(repeating: increment, count: 100))
        #expect(eventually(timeout: 15) { Self.values("rw_durable_total", in: (try? receiver.received()) ?? []).last == 100 })
        #expect(eventually { (try? redis.llen("prom-stream-gateway:metric-queue:processing:rw")) == 0 }, "acknowledged once a snapshot holds it")
        kill(gateway.process.processIdentifier, SIGKILL)
        gateway.process.waitUntilExit()
        let before = try receiver.received().count
        try redis.push(Array(repeating: increment, count: 50))
        gateway = try GatewayProcess(args: ["--config", pipeline.path])
        #expect(eventually(timeout: 15) { Self.values("rw_durable_total", in: (try? receiver.received()) ?? []).last == 150 })
        let after = Self.values("rw_durable_total", in: Array(try receiver.received().dropFirst(before)))
        #expect(!after.isEmpty && after.allSatisfy { $0 >= 100 && $0 <= 150 }, "no reset, nothing twice: \(after)")
        _ = gateway.terminate()
    }

    /// `state: redis` below a group-mode source (4 shards): the shards' state lives in Redis,
    /// so a gateway killed with SIGKILL and started again continues the remote's counter exactly.
    @Test func withStateInRedis_aKilledGroupMemberContinuesTheRemotesCounterExactly() throws {
        let receiver = try Receiver()
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("rw-group")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        let key = "rwq"
        try """
            sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port)", key: \(key), shards: 4, group: g, instance: m, lease_ttl: 2s } }
            transforms: { decode: { type: json_decode, inputs: [queue] } }
            sinks:
              remote: { type: remote_write, inputs: [decode], url: "http://127.0.0.1:\(receiver.port)/", interval: 300ms, state: redis,
                        snapshot_interval: 200ms }
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        func push(_ n: Int) throws {
            for i in 0..<n {
                let name = "rw_group_\(i % 4)_total"
                try redis.push([#"{"type":"counter","name":"\#(name)","value":1}"#],
                               key: ShardRouting.queueKey(key, shard: ShardRouting.shard(of: name, shards: 4)))
            }
        }
        func totals() -> [Double] {
            let requests = (try? receiver.received()) ?? []
            return (0..<4).map { Self.values("rw_group_\($0)_total", in: requests).last ?? 0 }
        }
        var gateway = try GatewayProcess(args: ["--config", pipeline.path])
        try push(40)
        #expect(eventually(timeout: 20) { totals() == [10, 10, 10, 10] })
        #expect(eventually { (0..<4).allSatisfy { (try? redis.llen(ShardKeys(key: key, shard: $0).processing)) == 0 } })
        kill(gateway.process.processIdentifier, SIGKILL)
        gateway.process.waitUntilExit()
        let before = try receiver.received().count
        try push(20)
        gateway = try GatewayProcess(args: ["--config", pipeline.path])
        #expect(eventually(timeout: 20) { totals() == [15, 15, 15, 15] }, "\(totals())")
        let after = try receiver.received().dropFirst(before)
        for s in 0..<4 {
            let v = Self.values("rw_group_\(s)_total", in: Array(after))
            #expect(v.allSatisfy { $0 >= 10 && $0 <= 15 }, "rw_group_\(s)_total: no reset, nothing twice: \(v)")
        }
        _ = gateway.terminate()
    }

    @Test func theDefaultPipeline_addsRemoteWrite_whenRemoteWriteUrlIsSet() throws {
        let receiver = try Receiver()
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)",
                                                       "RemoteWrite__Url": "http://127.0.0.1:\(receiver.port)/push", "RemoteWrite__Interval": "500ms"])
        try redis.push([#"{"type":"counter","name":"rw_default_total","value":2}"#])
        #expect(eventually(timeout: 10) {
            ((try? receiver.received()) ?? []).contains { r in
                ((r["series"] as? [[String: Any]]) ?? []).contains { s in ((s["labels"] as? [[String]]) ?? []).contains(["__name__", "rw_default_total"]) }
            }
        })
        #expect(try gateway.value("rw_default_total") == 2)
    }

    @Test func theDefaultPipeline_authenticatesWithTheRemoteWriteFiles() throws {
        let dir = try makeTemporaryDirectory("rw-default-auth")
        defer { try? FileManager.default.removeItem(at: dir) }
        let password = dir.appendingPathComponent("password"), token = dir.appendingPathComponent("token")
        try "pw\n".write(to: password, atomically: true, encoding: .utf8)
        try "tok".write(to: token, atomically: true, encoding: .utf8)
        let basic = try Receiver(["--basic", "gw:\(password.path)"])
        let bearer = try Receiver(["--bearer", token.path])
        let (r1, r2) = (try RedisServer(), try RedisServer())
        let g1 = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(r1.port)", "RemoteWrite__Interval": "300ms",
                                                  "RemoteWrite__Url": "http://127.0.0.1:\(basic.port)/",
                                                  "RemoteWrite__Username": "gw", "RemoteWrite__PasswordFile": password.path])
        let g2 = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(r2.port)", "RemoteWrite__Interval": "300ms",
                                                  "RemoteWrite__Url": "http://127.0.0.1:\(bearer.port)/", "RemoteWrite__BearerTokenFile": token.path])
        for redis in [r1, r2] { try redis.push([#"{"type":"counter","name":"rw_auth_total","value":1}"#]) }
        for receiver in [basic, bearer] {
            #expect(eventually(timeout: 10) { !Self.values("rw_auth_total", in: (try? receiver.received()) ?? []).isEmpty })
            #expect(try receiver.received().allSatisfy { $0["status"] as? Int == 200 }, "every request authenticated")
        }
        _ = (g1, g2)
    }
}
