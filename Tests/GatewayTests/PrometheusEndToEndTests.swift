import Builtins
import Foundation
import Testing
import TestSupport

@Suite struct PrometheusEndToEndTests {
    @Test func realPrometheus_scrapesTheGatewayAndQueriesThePushedValues() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        try redis.push([
            #"{"type":"counter","name":"e2e_requests_total","value":41,"labels":{"path":"/a \"quoted\"\nline"},"help":"Requests."}"#,
            #"{"type":"counter","name":"e2e_requests_total","value":1,"labels":{"path":"/a \"quoted\"\nline"}}"#,
            // Prometheus asks for OpenMetrics: a help and an exemplar with every character that needs escaping there.
            #"{"type":"counter","name":"e2e_quoted_total","value":1,"help":"He said \"hi\" \\ bye\nnext","exemplar":{"labels":{"trace_id":"q\"u\\o\nte"}}}"#,
            #"{"type":"gauge","name":"e2e_temperature","value":-1.5}"#,
            #"{"type":"histogram","name":"e2e_seconds","value":0.2,"buckets":[0.1,1]}"#,
            #"{"type":"summary","name":"e2e_bytes","value":10,"quantiles":[0.5],"epsilons":[0.05]}"#,
        ])
        #expect(eventually { (try? gateway.metrics().contains("e2e_bytes_count 1")) == true })

        let prometheus = try PrometheusServer(scrapeConfigs: """
              - job_name: gateway
                static_configs: [{ targets: ["127.0.0.1:\(gateway.port)"] }]
            """)
        let query = prometheus.query
        #expect(eventually(timeout: 30) { query("up").contains(#""value":["#) && query("up").contains(#","1"]"#) },
                "Prometheus never scraped the gateway successfully: \(query("up"))")
        #expect(eventually(timeout: 10) { query("e2e_requests_total").contains(#","42"]"#) })
        #expect(query("e2e_requests_total").contains(#""path":"/a \"quoted\"\nline""#))
        #expect(eventually(timeout: 10) { query("e2e_temperature").contains(#","-1.5"]"#) })
        #expect(query(#"e2e_seconds_bucket{le="1"}"#).contains(#","1"]"#))
        #expect(query(#"e2e_bytes{quantile="0.5"}"#).contains(#","10"]"#))
        #expect(query(#"prom_stream_gateway_info"#).contains("version"))
        #expect(query("e2e_quoted_total").contains(#","1"]"#), "the OpenMetrics page with escapes was read")
        // Prometheus parsed the whole page: no scrape sample was rejected.
        #expect(query("scrape_samples_post_metric_relabeling").contains(#""value":["#))
    }

    @Test func livePage_passesPromtool() throws {
        let promtool = try #require(RedisServer.which("promtool"), "promtool not installed (apt-get install prometheus)")
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        try redis.push([#"{"type":"counter","name":"live_total","value":1,"help":"Live."}"#, "garbage"])
        #expect(eventually { (try? gateway.metrics().contains("live_total 1")) == true })
        let page = try httpGet(port: gateway.port, path: "/metrics").body
        let (status, output) = try runCommand(promtool, ["check", "metrics"], stdin: page)
        // Exit 3 is lint only. The one lint finding allowed is the camelCase `queueKey`
        // label that the .NET gateway fixed (dashboards depend on it).
        let findings = output.split(separator: "\n").filter { !$0.contains("label names should be written in 'snake_case' not 'camelCase'") }
        #expect(status == 0 || (status == 3 && findings.isEmpty), "\(output)\n\(String(decoding: page, as: UTF8.self))")
    }
}

@Suite struct PipelineFilesTests {
    @Test func everyPipelineFile_validates() throws {
        let dir = packageRoot.appendingPathComponent("pipelines")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.contains("default.yaml"))
        for file in files {
            let (status, output) = try runCommand(GatewayProcess.binary, ["validate", "--config", dir.appendingPathComponent(file).path])
            #expect(status == 0, "\(file): \(output)")
            #expect(output.hasPrefix("ok: "))
        }
    }

    @Test func defaultYAML_isWhatRunUsesWithoutConfig() throws {
        let file = try String(contentsOf: packageRoot.appendingPathComponent("pipelines/default.yaml"), encoding: .utf8)
        #expect(defaultPipelineYAML == file)
    }

    @Test func validate_reportsThreeMistakesWithTheirLines() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).yaml")
        try """
        sources:
          queue: { type: redis_list, pop_count: lots }
        transforms:
          decode: { type: json_decode, inputs: [queue], wokers: 2 }
        sinks:
          prometheus: { type: prometheus, inputs: [decode, missing] }
        """.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let (status, output) = try runCommand(GatewayProcess.binary, ["validate", "--config", url.path])
        #expect(status == 1)
        #expect(output.contains("line 2: sources.queue.pop_count: expected an integer, got `lots`"))
        #expect(output.contains("line 4: transforms.decode.wokers: unknown key"))
        #expect(output.contains("line 6: sinks.prometheus.inputs: unknown input `missing`"))
    }

    @Test func stages_listsEveryBuiltinWithOptions() throws {
        let (status, output) = try runCommand(GatewayProcess.binary, ["stages"])
        #expect(status == 0)
        for t in ["redis_list", "json_decode", "validate", "sort_labels", "prometheus"] { #expect(output.contains("\(t) (")) }
        #expect(output.contains("pop_count: integer = 25"))
    }
}
