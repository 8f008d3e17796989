import Foundation
import Redis
import Testing
import TestSupport

/// Histogram samples with `counts` (what the client libraries send: a series' observations
/// counted into its buckets) through real gateways: added to the same family as single
/// observations on both parsers, and carried by the router — from a Redis list and from an
/// OTLP sender, whose explicit-bucket histograms it used to drop.
@Suite struct BucketCountsTests {
    static let key = ShardRouting.defaultQueueKey

    @Test(arguments: ["jansson", "simdjson"])
    func bucketCounts_addUpWithObservations_andBadOnesAreDropped(_ parser: String) throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Metrics__JsonParser": parser])
        try redis.push([
            #"{"type":"histogram","name":"job_seconds","value":0.25,"buckets":[0.1,0.5,1],"labels":{"q":"a"}}"#,
            #"[{"type":"histogram","name":"job_seconds","value":4.5,"buckets":[0.1,0.5,1],"counts":[3,5,1,2],"labels":{"q":"a"}},"#
                + #"{"type":"counter","name":"jobs_total","value":11}]"#,
            // Another layout: each count goes to the family's bucket holding its upper bound (0.5 → le=0.5, 2 → +Inf).
            #"{"type":"histogram","name":"job_seconds","value":1,"buckets":[0.5,2],"counts":[1,1,0],"labels":{"q":"a"}}"#,
            #"{"type":"histogram","name":"job_seconds","value":1,"buckets":[1,0.5],"counts":[1,1,0],"labels":{"q":"a"}}"#,
            #"{"type":"histogram","name":"job_seconds","value":1,"buckets":[0.5],"counts":[1.5,1],"labels":{"q":"a"}}"#,
            #"{"type":"histogram","name":"job_seconds","value":1,"buckets":[0.5],"counts":[1],"labels":{"q":"a"}}"#,
        ], key: Self.key)
        #expect(eventually { (try? gateway.value("jobs_total")) == 11 })
        #expect(eventually { (try? gateway.value(#"job_seconds_count{q="a"}"#)) == 14 })
        let page = try gateway.metrics()
        #expect(page.contains(#"""
            job_seconds_bucket{q="a",le="0.1"} 3
            job_seconds_bucket{q="a",le="0.5"} 10
            job_seconds_bucket{q="a",le="1"} 11
            job_seconds_bucket{q="a",le="+Inf"} 14
            job_seconds_sum{q="a"} 5.75
            """#), "\(page)")
        func badBuckets() -> Double {
            let series = { (w: Int) in #"prom_stream_gateway_dropped_metrics_total{worker="\#(w)",queueKey="\#(Self.key)",reason="bad_buckets"}"# }
            return (0..<2).compactMap { try? gateway.value(series($0)) }.reduce(0, +)
        }
        #expect(eventually { badBuckets() == 3 }, "unsorted bounds, a fractional count, a count missing")
    }

    /// The router writes bucket counts as `counts`: the shard's owner adds them as the router's source read them.
    @Test func bucketCounts_passTheRouter_fromARedisList() throws {
        let redis = try RedisServer()
        let router = try GatewayProcess(args: ["--config", packageRoot.appendingPathComponent("pipelines/router.yaml").path], environment: [
            "REDIS_URL": "redis://127.0.0.1:\(redis.port)/0", "QUEUE_KEY": "in", "SHARDS": "2", "INSTANCE": "r"])
        let owner = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Redis__MetricQueueKey": "in",
                                                     "Redis__MetricQueueShards": "2"])
        try redis.push([#"[{"type":"histogram","name":"routed_seconds","value":2.5,"buckets":[1,2],"counts":[1,0,1]}]"#], key: "in")
        #expect(eventually { (try? owner.value(#"routed_seconds_bucket{le="1"}"#)) == 1 && (try? owner.value("routed_seconds_count")) == 2 })
        #expect(try owner.value("routed_seconds_sum") == 2.5)
        _ = router
    }

    /// An OTLP delta histogram in explicit buckets reaches the shard's owner through a router; an
    /// exponential one still cannot (JSON has no form for it) and is counted as `unencodable`.
    @Test func otlpExplicitBuckets_passTheRouter() throws {
        let redis = try RedisServer()
        let setup = try OTLPTests.Setup("""
            sources: { otel: { type: otlp, listen: "127.0.0.1:${OTLP_PORT}" } }
            sinks:
              route: { type: redis_list, inputs: [otel], url: "redis://127.0.0.1:\(redis.port)/0", key: out, shards: 2 }
              page: { type: prometheus, inputs: [otel], listen: "${GATEWAY_LISTEN}" }
            """)
        defer { setup.cleanup() }
        let router = try setup.start()
        let owner = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Redis__MetricQueueKey": "out",
                                                     "Redis__MetricQueueShards": "2"])
        #expect(try setup.post(Array(OTLPTests.specExample.utf8)).status == 200)
        let l = #"job="my.service",my_histogram_attr="some value""#
        #expect(eventually { (try? owner.value("my_histogram_count{\(l)}")) == 2 })
        #expect(try owner.value("my_histogram_bucket{\(l),le=\"1\"}") == 1)
        #expect(try owner.value("my_histogram_sum{\(l)}") == 2)
        #expect(try !owner.metrics().contains("my_exponential_histogram"))
        #expect(try router.metrics().contains(#"reason="unencodable"} 1"#))
    }
}
