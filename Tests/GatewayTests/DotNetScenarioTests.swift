import Foundation
import Testing
import TestSupport

/// The .NET gateway's integration scenarios, run through `gateway run` configured
/// only by its environment settings, against a real redis-server.
@Suite struct DotNetScenarioTests {
    let redis: RedisServer
    let gateway: GatewayProcess
    let key = "prom-stream-gateway:metric-queue"

    init() throws {
        redis = try RedisServer()
        gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
    }

    func push(_ payloads: String...) throws { try redis.push(payloads, key: key) }

    func settle(_ series: String, _ expected: Double) -> Bool {
        eventually { (try? gateway.value(series)) == expected }
    }

    @Test func counters_areSummed() throws {
        try push(#"{"type":"counter","name":"orders_total","value":2,"labels":{"shop":"a"}}"#,
                 #"{"type":"counter","name":"orders_total","value":3.5,"labels":{"shop":"a"}}"#)
        #expect(settle(#"orders_total{shop="a"}"#, 5.5))
    }

    @Test func gauges_areReplacedNotSummed() throws {
        try push(#"{"type":"gauge","name":"queue_depth","value":10}"#, #"{"type":"gauge","name":"queue_depth","value":4}"#)
        #expect(settle("queue_depth", 4))
        try push(#"{"type":"gauge","name":"queue_depth","value":7}"#)
        #expect(settle("queue_depth", 7))
    }

    @Test func histograms_keepTheFirstBucketLayout() throws {
        try push(#"{"type":"histogram","name":"job_seconds","value":0.2,"buckets":[0.5,1]}"#,
                 #"{"type":"histogram","name":"job_seconds","value":0.7,"buckets":[10,20,30]}"#,
                 #"{"type":"histogram","name":"job_seconds","value":1}"#)
        #expect(settle("job_seconds_count", 2))
        let page = try gateway.metrics()
        #expect(page.contains("job_seconds_bucket{le=\"0.5\"} 1\njob_seconds_bucket{le=\"1\"} 2\njob_seconds_bucket{le=\"+Inf\"} 2\njob_seconds_sum 0.8999999999999999\n") ||
                page.contains("job_seconds_bucket{le=\"0.5\"} 1\njob_seconds_bucket{le=\"1\"} 2\njob_seconds_bucket{le=\"+Inf\"} 2\njob_seconds_sum 0.9\n"))
        #expect(!page.contains("le=\"10\""))
        #expect(eventually { (try? gateway.value(#"prom_stream_gateway_dropped_metrics_total{worker="0",queueKey="prom-stream-gateway:metric-queue",reason="bad_buckets"}"#)) == 1 ||
                             (try? gateway.value(#"prom_stream_gateway_dropped_metrics_total{worker="1",queueKey="prom-stream-gateway:metric-queue",reason="bad_buckets"}"#)) == 1 })
    }

    @Test func summaries_withAndWithoutQuantiles() throws {
        try push(#"{"type":"summary","name":"resp_bytes","value":100,"quantiles":[0.5,0.9],"epsilons":[0.05,0.01]}"#,
                 #"{"type":"summary","name":"resp_bytes","value":200}"#,
                 #"{"type":"summary","name":"plain_bytes","value":3}"#)
        #expect(settle("resp_bytes_count", 2))
        #expect(try gateway.value("resp_bytes_sum") == 300)
        #expect(try gateway.value(#"resp_bytes{quantile="0.5"}"#) == 100)
        #expect(try gateway.value(#"resp_bytes{quantile="0.9"}"#) == 200)
        #expect(settle("plain_bytes_count", 1))
        #expect(try !gateway.metrics().contains("plain_bytes{quantile"))
    }

    @Test func invalidJSONAndUnknownTypes_areDroppedAndCounted() throws {
        try push("{not json", #"{"type":"meter","name":"m","value":1}"#, #"{"type":"counter","name":"after_total","value":1}"#)
        #expect(settle("after_total", 1))
        let page = try gateway.metrics()
        #expect(page.contains(#"reason="invalid_json"} 1"#))
        #expect(page.contains(#"reason="unknown_type"} 1"#))
    }

    @Test func bulkOf1000_inOneArrayElement() throws {
        let array = "[" + (0..<1000).map { #"{"type":"counter","name":"bulk_total","value":1,"labels":{"i":"\#($0 % 10)"}}"# }.joined(separator: ",") + "]"
        try push(array)
        #expect(eventually { (0..<10).allSatisfy { i in (try? gateway.value("bulk_total{i=\"\(i)\"}")) == 100 } })
    }

    @Test func emptyLabels_andDifferentLabelNamesUnderOneName() throws {
        try push(#"{"type":"counter","name":"mixed_total","value":1,"labels":{}}"#,
                 #"{"type":"counter","name":"mixed_total","value":1,"labels":{"a":"1"}}"#,
                 #"{"type":"counter","name":"mixed_total","value":1,"labels":{"b":"2","c":"3"}}"#)
        #expect(settle(#"mixed_total{b="2",c="3"}"#, 1))
        #expect(try gateway.value("mixed_total") == 1)
        #expect(try gateway.value(#"mixed_total{a="1"}"#) == 1)
    }

    @Test func labelOrder_doesNotMatterWhenSorted() throws {
        try push(#"{"type":"counter","name":"sorted_total","value":1,"labels":{"b":"2","a":"1"}}"#,
                 #"{"type":"counter","name":"sorted_total","value":1,"labels":{"a":"1","b":"2"}}"#)
        #expect(settle(#"sorted_total{a="1",b="2"}"#, 2))
    }

    @Test func typeConflicts_areDropped() throws {
        try push(#"{"type":"counter","name":"conflict_total","value":1}"#, #"{"type":"gauge","name":"conflict_total","value":9}"#)
        #expect(eventually { (try? gateway.metrics().contains(#"reason="type_conflict"} 1"#)) == true })
        #expect(try gateway.value("conflict_total") == 1)
    }
}

@Suite struct GatewayProcessTests {
    @Test func gauge_endsAtTheValuePushedLast_withFourWorkersEverywhere() throws {
        let redis = try RedisServer()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("order-\(UUID().uuidString).yaml")
        try """
        sources:
          queue: { type: redis_list, url: "redis://127.0.0.1:\(redis.port)", workers: 4, pop_count: 3, batch_size: 5 }
        transforms:
          decode: { type: json_decode, inputs: [queue], workers: 4 }
          validate: { type: validate, inputs: [decode], workers: 4 }
          sort: { type: sort_labels, inputs: [validate], workers: 4 }
        sinks:
          prometheus: { type: prometheus, inputs: [sort], workers: 4, listen: "${GATEWAY_LISTEN}" }
        """.write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        try redis.push((1...500).map { #"{"type":"gauge","name":"last_value","value":\#($0)}"# })
        let gateway = try GatewayProcess(args: ["--config", config.path])
        #expect(eventually { (try? gateway.value("last_value")) == 500 })
        #expect(eventually { (try? gateway.value(#"prom_stream_gateway_processed_metrics_total{worker="0",queueKey="prom-stream-gateway:metric-queue"}"#)).map { $0 > 0 } == true })
        #expect(gateway.terminate().status == 0)
    }

    @Test func ready_followsRedis() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        #expect(eventually { (try? httpGet(port: gateway.port, path: "/ready").status) == 200 })
        redis.stop()
        #expect(eventually(timeout: 3) { (try? httpGet(port: gateway.port, path: "/ready").status) == 503 })
        #expect(try httpGet(port: gateway.port, path: "/metrics").status == 200)
        try redis.restart()
        #expect(eventually(timeout: 8) { (try? httpGet(port: gateway.port, path: "/ready").status) == 200 })
        #expect(gateway.terminate().status == 0)
    }
}
