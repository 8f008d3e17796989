import Foundation
import Pipeline
import Redis
import Sources
import Testing
import TestSupport

/// A group gateway over a TLS-only Redis Cluster node (`--port 0 --tls-port P
/// --tls-cluster yes`, every slot on it), the shape of managed clusters with
/// in-transit encryption: the slot map, the pops, the leases and the state all go
/// over TLS with the CA verified.
@Suite struct ClusterTLSTests {
    @Test func groupGateway_overATLSOnlyCluster_drainsItsShards() throws {
        let certs = try TestCertificates()
        let node = try RedisServer(tls: certs, args: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--tls-cluster", "yes"], maxPort: 55535)
        let admin = try node.client()
        try admin.command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        #expect(eventually(timeout: 10) { ((try? admin.command("CLUSTER", "INFO").text) ?? "").contains("cluster_state:ok") })
        let dir = try makeTemporaryDirectory("tls-cluster")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        try """
            sources: {q: {type: redis_list, url: "rediss://127.0.0.1:\(node.port)", tls: {ca_file: "\(certs.caFile)"}, key: tq, shards: 4, group: g, lease_ttl: 2s}}
            transforms: {d: {type: json_decode, inputs: [q]}}
            sinks: {p: {type: prometheus, inputs: [d], listen: "${GATEWAY_LISTEN}", state: redis, snapshot_interval: 200ms}}
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(args: ["--config", pipeline.path])
        #expect(eventually(timeout: 15) { (try? gateway.value("prom_stream_gateway_shards_owned{queueKey=\"tq\"}")) == 4 }, "\(gateway.log.suffix(1500))")
        let names = ["a_total", "b_total", "c_total", "d_total"]
        for name in names {
            let key = ShardRouting.queueKey("tq", shard: ShardRouting.shard(of: name, shards: 4))
            admin.append([Array("LPUSH".utf8), Array(key.utf8)] + (0..<50).map { _ in Array(#"{"type":"counter","name":"\#(name)","value":1}"#.utf8) })
            _ = try admin.withReply { r throws(RedisError) in RedisConnection.copy(r) }
        }
        #expect(eventually(timeout: 10) { names.allSatisfy { (try? gateway.value($0)) == 50 } })
        #expect(eventually(timeout: 5) {
            (try? admin.command("EXISTS", ShardKeys(key: "tq", shard: ShardRouting.shard(of: "a_total", shards: 4)).state)) == .integer(1)
        }, "the shard's state was written over TLS")
    }
}
