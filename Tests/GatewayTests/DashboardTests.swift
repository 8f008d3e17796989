import Foundation
import Testing
import TestSupport

/// `deploy/grafana/prom-stream-gateway.json` and `deploy/prometheus/rules.yml`
/// against a real Prometheus scraping a real gateway: every expression of the
/// dashboard runs without error and returns data once samples were pushed.
@Suite struct DashboardTests {
    struct Target { var panel: String; var expr: String }

    static func targets() throws -> [Target] {
        let data = try Data(contentsOf: packageRoot.appendingPathComponent("deploy/grafana/prom-stream-gateway.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        return panels.flatMap { panel in
            ((panel["targets"] as? [[String: Any]]) ?? []).compactMap { t in
                (t["expr"] as? String).map { Target(panel: panel["title"] as? String ?? "?", expr: $0) }
            }
        }
    }

    /// Grafana's variables as a dashboard showing every instance would expand them.
    static func expand(_ expr: String) -> String {
        expr.replacingOccurrences(of: "$__rate_interval", with: "1m")
            .replacingOccurrences(of: "$instance", with: ".*").replacingOccurrences(of: "$job", with: ".*")
    }

    @Test func everyDashboardExpression_returnsDataFromARealPrometheus() throws {
        let targets = try Self.targets()
        #expect(targets.count >= 15)
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("dash")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        try """
            sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port)", reliable: true, instance: dash } }
            transforms: { decode: { type: json_decode, inputs: [queue] } }
            sinks:
              prometheus:
                type: prometheus
                inputs: [decode]
                listen: "${GATEWAY_LISTEN}"
                max_series: 1000
                state_file: "\(dir.appendingPathComponent("state").path)"
                snapshot_interval: 1s
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(args: ["--config", pipeline.path], environment: [:])
        try redis.push((0..<200).map { #"{"type":"counter","name":"dash_total","value":1,"labels":{"k":"\#($0 % 10)"}}"# } + ["not json"])
        let prometheus = try PrometheusServer(scrapeConfigs: """
              - job_name: prom-stream-gateway
                static_configs: [{ targets: ["127.0.0.1:\(gateway.port)"] }]
            """, ruleFiles: [packageRoot.appendingPathComponent("deploy/prometheus/rules.yml").path])
        // Keep a trickle going, so rates and derivatives have something to show.
        let pushing = OSThreadRunner {
            for i in 0..<40 {
                try? redis.push([#"{"type":"gauge","name":"dash_gauge","value":\#(i)}"#, "{"])
                usleep(250_000)
            }
        }
        defer { pushing.join() }
        var empty: [String] = []
        let allAnswer = eventually(timeout: 45) {
            empty = targets.filter { t in
                let body = prometheus.query(Self.expand(t.expr))
                return !(body.contains(#""status":"success""#) && body.contains(#""value":["#))
            }.map { "\($0.panel): \($0.expr)" }
            return empty.isEmpty
        }
        #expect(allAnswer, "no data: \(empty)")
        // The alerts' expressions evaluate too (none firing in a healthy run but the rule groups load).
        let rules = (try? httpGet(port: prometheus.port, path: "/api/v1/rules").text) ?? ""
        #expect(rules.contains("PromStreamGatewayBacklogGrowing") && !rules.contains(#""health":"err""#), "\(rules.prefix(400))")
    }
}
