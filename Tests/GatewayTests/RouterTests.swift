import Foundation
import Logging
import Aggregation
import Pipeline
import Sinks
import Testing
import TestSupport
import Transforms

/// The router's compact JSON reads back, through `json_decode`, as the sample it
/// came from; and the sharding options are checked where they are given.
@Suite struct RouterTests {
    func describe(_ b: Batch) -> [String] {
        let s = b.samples
        return s.records.indices.filter { !s.records[$0].isDropped }.map { i in
            let r = s.records[i]
            let labels = r.labelRange.map { "\(s.string(s.labels[$0].name))=\(s.string(s.labels[$0].value))" }
            let e = s.exemplar(of: r).map { e in "\(e.labelRange.map { "\(s.string(s.labels[$0].name))=\(s.string(s.labels[$0].value))" }) \(e.value) \(e.timestamp)" } ?? "-"
            return "\(r.type.name) \(s.string(r.name)) \(r.value.bitPattern) \(labels) \(s.string(r.help)) \(Array(s.numbers(r.buckets))) \(Array(s.numbers(r.quantiles))) \(Array(s.numbers(r.epsilons))) \(e)"
        }
    }

    @Test func routedJSON_decodesToTheSameSamples() throws {
        let samples = [
            TestSample(.counter, "jobs_total", 1, labels: [("queue", "a\"b\\c\n"), ("ü", "✓")], help: "Jobs \"done\"."),
            TestSample(.gauge, "temp", -0.1 + 0.2, labels: [("t", "\u{01}")]),
            TestSample(.gauge, "big", 1e300),
            TestSample(.gauge, "int", 123456789012),
            TestSample(.histogram, "rt_seconds", 0.25, buckets: [0.1, 0.5, 1e-9], exemplar: ([("trace_id", "abc")], 0.25, 1.7e9)),
            TestSample(.summary, "size", .leastNonzeroMagnitude, quantiles: [0.5, 0.99], epsilons: [0.05, 0.001]),
        ]
        let original = sampleBatch(samples)
        var payloads = PayloadBatch()
        original.samples.bytes.withUnsafeBytes { arena in
            for r in original.samples.records { payloads.append(RedisListSink.json(r, original.samples, arena)!, origin: 0) }
        }
        var decoded = Batch(payloads: payloads)
        let d = JSONDecodeTransform(config: JSONDecodeConfig(options: OptionReader(describing: "d")),
                                    context: StageContext(id: "d", logger: Logger(label: "t"), telemetry: Telemetry(), health: HealthBoard(), workers: 1))
        d.process(&decoded, worker: 0)
        #expect(describe(decoded) == describe(original))
        #expect(original.samples.bytes.withUnsafeBytes { arena in
            RedisListSink.json(sampleBatch([TestSample(.gauge, "g", .nan)]).samples.records[0], sampleBatch([TestSample(.gauge, "g", .nan)]).samples, arena) } == nil,
            "a value JSON cannot carry is not written")
    }

    @Test func bucketCounts_areWrittenAsTheyWereRead_exponentialBucketsAreNot() throws {
        let context = StageContext(id: "d", logger: Logger(label: "t"), telemetry: Telemetry(), health: HealthBoard(), workers: 1)
        let d = JSONDecodeTransform(config: JSONDecodeConfig(options: OptionReader(describing: "d")), context: context)
        let json = #"{"type":"histogram","name":"h","value":2.5,"labels":{"q":"a"},"buckets":[1,2],"counts":[1,0,1]}"#
        var payloads = PayloadBatch()
        payloads.append(Array(json.utf8), origin: 0)
        var batch = Batch(payloads: payloads)
        d.process(&batch, worker: 0)
        let s = batch.samples
        #expect(s.bytes.withUnsafeBytes { RedisListSink.json(s.records[0], s, $0) }.map { String(decoding: $0, as: UTF8.self) } == json)
        var e = s
        e.records[0].shape = .exponential
        #expect(e.bytes.withUnsafeBytes { RedisListSink.json(e.records[0], e, $0) } == nil)
    }

    @Test(arguments: [
        ("sources: {q: {type: redis_list, group: g}}", "group", "needs shards"),
        ("sources: {q: {type: redis_list, shards: 4, group: g}}", "group", "needs a prometheus sink with `state: redis` below it"),
        ("sources: {q: {type: redis_list, shards: 4, sentinel: {master: m, addresses: [\"h:1\"]}}}", "shards", "not behind Sentinel"),
        ("sources: {q: {type: redis_list, shards: 4, cluster: [\"redis://h:1\"]}}", "cluster", "expected host:port"),
        ("sinks: {p: {type: prometheus, inputs: [q], state: redis, state_file: /tmp/x}}", "state", "not both"),
        ("sinks: {p: {type: prometheus, inputs: [q], state: disk}}", "state", "expected redis"),
        ("sinks: {r: {type: redis_list, inputs: [q]}}", "shards", "must be set"),
        ("sources: {q: {type: redis_list, shards: 4, key: \"metrics{eu}\"}}", "key", "hash tag"),
        ("sinks: {r: {type: redis_list, inputs: [q], shards: 4, key: \"m{x}:q\"}}", "key", "hash tag"),
        ("sources: {q: {type: redis_list, shards: 4, group: g}}\nsinks: {p: {type: prometheus, inputs: [q], state: redis, listen: \"127.0.0.1:0\"}, "
         + "rw: {type: remote_write, inputs: [q], url: \"http://127.0.0.1:1/\", state: redis}}", "state", "second sink with `state: redis`"),
        // A shard-state sink takes only the group's shards: an otlp source (or a plain list) beside it has none.
        ("sources: {q: {type: redis_list, shards: 4, group: g}, o: {type: otlp, listen: \"127.0.0.1:0\"}}\n"
         + "sinks: {p: {type: prometheus, inputs: [q, o], state: redis, listen: \"127.0.0.1:0\"}}", "state", "sources.o above it has no shards"),
        ("sinks: {p: {type: prometheus, inputs: [q], state: redis, listen: \"127.0.0.1:0\"}}", "state", "has no shards"),
    ])
    func shardingOptions_areCheckedAndNameTheirKey(_ yaml: String, _ key: String, _ reason: String) throws {
        let source = yaml.hasPrefix("sources") ? "" : "sources: {q: {type: redis_list}}\n"
        let sink = yaml.contains("sinks:") ? "" : "\nsinks: {p: {type: prometheus, inputs: [q], listen: \"127.0.0.1:0\"}}"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("shard-\(UUID().uuidString).yaml")
        try (source + yaml + sink).write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try runCommand(GatewayProcess.binary, ["validate", "--config", file.path], environment: ["PATH": "/usr/bin:/bin"])
        #expect(r.status != 0)
        #expect(r.output.contains(".\(key)") && r.output.contains(reason), "\(r.output)")
    }
}
