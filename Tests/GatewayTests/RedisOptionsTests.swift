import Foundation
import Testing
import TestSupport

/// One Redis client for every stage: `url`, `tls`, `sentinel`, `cluster` mean the same
/// on the `redis_list` source, the `redis_list` router sink and `dead_letter`; `validate`
/// checks all of them, and each reaches a TLS-only Redis whose CA is private.
@Suite struct RedisOptionsTests {
    func validate(_ yaml: String) throws -> (status: Int32, output: String) {
        let dir = try makeTemporaryDirectory("redis-options")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        return try runCommand(GatewayProcess.binary, ["validate", "--config", file.path], environment: ["PATH": "/usr/bin:/bin"])
    }

    /// The same mistakes, refused on each of the three, each error naming its YAML key.
    @Test func validate_checksEveryStagesRedisOptions() throws {
        let bad = #"url: "rediss://127.0.0.1:1", tls: { ca_file: /nonexistent/ca.crt }, sentinel: { addresses: ["h:1"] }"#
        let r = try validate("""
            sources: { queue: { type: redis_list, \(bad) } }
            transforms: { decode: { type: json_decode, inputs: [queue], dead_letter: { key: dl, \(bad) } } }
            sinks:
              page: { type: prometheus, inputs: [decode], listen: "127.0.0.1:0" }
              router: { type: redis_list, inputs: [decode], shards: 2, \(bad) }
            """)
        #expect(r.status != 0)
        for stage in ["sources.queue", "transforms.decode.dead_letter", "sinks.router"] {
            #expect(r.output.contains("\(stage).tls.ca_file: cannot read `/nonexistent/ca.crt`"), "\(stage): \(r.output)")
            #expect(r.output.contains("\(stage).sentinel.master: must be set"), "\(stage): \(r.output)")
        }
    }

    /// Dead letters and the router's pushes reach a TLS-only Redis signed by a private CA,
    /// configured in YAML exactly as the source is.
    @Test func deadLettersAndRouter_reachATLSRedis_withAPrivateCA() throws {
        let certs = try TestCertificates()
        let tlsRedis = try RedisServer(tls: certs)
        let queue = try RedisServer()
        let dir = try makeTemporaryDirectory("redis-options-tls")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tls = #"url: "rediss://127.0.0.1:\#(tlsRedis.port)", tls: { ca_file: "\#(certs.caFile)", server_name: localhost }"#
        let file = dir.appendingPathComponent("p.yaml")
        try """
            sources: { queue: { type: redis_list, url: "127.0.0.1:\(queue.port)" } }
            transforms: { decode: { type: json_decode, inputs: [queue], dead_letter: { key: dl, \(tls) } } }
            sinks:
              page: { type: prometheus, inputs: [decode], listen: "${GATEWAY_LISTEN}" }
              router: { type: redis_list, inputs: [decode], key: routed, shards: 2, \(tls) }
            """.write(to: file, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(args: ["--config", file.path])
        try queue.push(["{not json", #"{"type":"counter","name":"a_total","value":1}"#, #"{"type":"counter","name":"b_total","value":2}"#])
        #expect(eventually { (try? gateway.value("a_total")) == 1 && (try? gateway.value("b_total")) == 2 })
        #expect(eventually { (try? tlsRedis.llen("dl")) == 1 }, "dead letter over TLS")
        #expect(eventually { ((try? tlsRedis.llen("routed:{0}")) ?? 0) + ((try? tlsRedis.llen("routed:{1}")) ?? 0) == 2 }, "router over TLS")
    }

    /// The default pipeline on a TLS-only Redis: the dead letters take the queue's CA from
    /// Redis__TlsCaFile too (they read it from YAML now, not from the environment).
    @Test func defaultPipeline_deadLettersFollowTheQueueOntoTLS() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs)
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "rediss://localhost:\(redis.port)",
                                                       "Redis__TlsCaFile": certs.caFile, "Metrics__DeadLetterKey": "dl"])
        try redis.push(["{not json", #"{"type":"counter","name":"ok_total","value":1}"#])
        #expect(eventually { (try? gateway.value("ok_total")) == 1 })
        #expect(eventually { (try? redis.llen("dl")) == 1 })
    }
}
