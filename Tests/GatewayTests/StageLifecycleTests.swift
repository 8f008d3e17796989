import Foundation
import Logging
import Aggregation
import Pipeline
import Sinks
import Redis
import Sources
import Testing
import TestSupport
import Transforms

/// Every registered stage type, through one generic lifecycle: its example YAML
/// decodes and validates, then start → process → shutdown.
@Suite struct StageLifecycleTests {
    /// type → example options (the YAML a user would write).
    static func examples(redisURL: String, otlpPort: Int = 0) -> [(any StageConfig.Type, String)] { [
        (RedisListConfig.self, #"{ type: redis_list, url: "\#(redisURL)", key: q, block_timeout: 100ms }"#),
        // The test posts one export with one point to it.
        (OTLPConfig.self, #"{ type: otlp, listen: "127.0.0.1:\#(otlpPort)" }"#),
        (JSONDecodeConfig.self, "{ type: json_decode, inputs: [src] }"),
        (ValidateConfig.self, "{ type: validate, inputs: [src] }"),
        (SortLabelsConfig.self, "{ type: sort_labels, inputs: [src] }"),
        (RelabelConfig.self, "{ type: relabel, inputs: [src], rules: [{ target_label: env, replacement: prod }] }"),
        (StaticLabelsConfig.self, "{ type: static_labels, inputs: [src], labels: { env: prod } }"),
        (PrometheusSinkConfig.self, #"{ type: prometheus, inputs: [src], listen: "127.0.0.1:0" }"#),
        // Nothing listens on port 1: sends fail fast, counted; the lifecycle does not depend on the remote.
        (RemoteWriteConfig.self, #"{ type: remote_write, inputs: [src], url: "http://127.0.0.1:1/push", interval: 100ms, remote_timeout: 1s }"#),
    ] }

    @Test func everyRegisteredStageType_hasALifecycleExample() throws {
        let (_, listing) = try runCommand(GatewayProcess.binary, ["stages"])
        let registered = listing.split(separator: "\n").filter { !$0.hasPrefix(" ") && $0.contains(" (") }.map { String($0.split(separator: " ")[0]) }
        let covered = Self.examples(redisURL: "").map { $0.0.type }
        #expect(Set(registered) == Set(covered))
    }

    @Test func everyStage_decodesStartsProcessesAndShutsDown() throws {
        let redis = try RedisServer()
        try redis.push([#"{"type":"counter","name":"x_total","value":1}"#], key: "q")
        let otlpPort = freePort()
        for (type, yaml) in Self.examples(redisURL: redis.url, otlpPort: otlpPort) {
            let role = type.role
            let upstream = type.inputKind == .payloads ? "{ type: test_payload_source }" : "{ type: test_counter_source, batches: 1 }"
            let downstream = type.outputKind == .payloads ? "test_collect_payloads" : "test_collect"
            let key = uniqueKey(type.type)
            let spec = try PipelineSpec.load(yaml: """
                sources:
                  src: \(role == .source ? yaml : upstream)
                \(role == .transform ? "transforms:\n  stage: \(yaml)\n" : "")sinks:
                  sink: \(role == .sink ? yaml : "{ type: \(downstream), inputs: [\(role == .source ? "src" : "stage")], key: \(key) }")
                """, environment: [:], registry: testRegistry.adding(CollectPayloadsSinkConfig.self).adding(type))
            let runtime = try PipelineRuntime(spec: spec, logger: Logger(label: "lifecycle"))
            try runtime.start()
            #expect(runtime.phase != .idle, "\(type.type)")
            if role == .source {
                if type == OTLPConfig.self {
                    let export = #"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"asInt":"1"}]}}]}]}]}"#
                    let answer = try httpPost(port: otlpPort, path: "/v1/metrics", headers: ["Content-Type": "application/json"], body: Array(export.utf8))
                    #expect(answer.status == 200)
                }
                #expect(eventually { runtime.sourceItemsEmitted == 1 }, "\(type.type)")
                runtime.stop()   // redis_list runs until stopped
            }
            runtime.wait()   // the test sources stop by themselves once they have emitted
            #expect(runtime.phase == .stopped, "\(type.type)")
            if role != .sink { #expect(!TestRegistry.shared.values(key).isEmpty, "\(type.type) passed nothing on") }
        }
    }
}

extension StageRegistry {
    func adding(_ t: any StageConfig.Type) -> StageRegistry {
        var r = self
        if r[t.type, role: t.role] == nil { r.register(t) }
        return r
    }
}
