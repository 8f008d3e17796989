import Foundation
import Testing
import TestSupport

/// The sender libraries in clients/ (PHP with phpredis and Predis, Python with
/// redis-py and its asyncio client, Node with node-redis 4), each through its own
/// test runner against a real redis-server and three real gateways: the default
/// pipeline on the default key, one draining a queue of 4 shards, and one draining 4 shards
/// on a Redis Cluster (PHP's `\RedisCluster`, redis-py's `RedisCluster` and node-redis' `createCluster` send there);
/// and a TLS-only redis-server with a private CA (TLS_REDIS_PORT, TLS_CA_FILE, TLS_OTHER_CA_FILE).
@Suite(.serialized) struct ClientLibraryTests {
    final class Servers: Sendable {
        let redis: RedisServer
        let plain: GatewayProcess
        let sharded: GatewayProcess
        let cluster: RedisClusterSet
        let clustered: GatewayProcess
        let certificates: TestCertificates
        let tlsRedis: RedisServer
        let key = "clients:sharded"
        init() throws {
            redis = try RedisServer()
            plain = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
            sharded = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Redis__MetricQueueKey": key,
                                                       "Redis__MetricQueueShards": "4", "Gateway__Instance": "clients"])
            cluster = try RedisClusterSet()
            clustered = try GatewayProcess(environment: ["Redis__ConnectionString": cluster.seeds, "Redis__MetricQueueKey": key,
                                                         "Redis__MetricQueueShards": "4", "Gateway__Instance": "clients"])
            certificates = try TestCertificates()
            tlsRedis = try RedisServer(tls: certificates)   // a TLS-only server, its certificate for localhost, a private CA
        }
        var environment: [String: String] {
            ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": NSTemporaryDirectory(),
             "REDIS_PORT": String(redis.port), "GATEWAY_PORT": String(plain.port), "SHARDED_KEY": key,
             "SHARDED_GATEWAY_PORT": String(sharded.port), "GATEWAY_BIN": GatewayProcess.binary, "NODE_PATH": "/usr/share/nodejs",
             "CLUSTER_SEEDS": cluster.seeds, "CLUSTER_GATEWAY_PORT": String(clustered.port),
             "TLS_REDIS_PORT": String(tlsRedis.port), "TLS_CA_FILE": certificates.caFile, "TLS_OTHER_CA_FILE": certificates.otherCAFile]
        }
    }

    static let servers = Result { try Servers() }

    func run(_ command: [String]) throws {
        let s = try Self.servers.get()
        let r = try runCommand(command[0], Array(command.dropFirst()), environment: s.environment)
        #expect(r.status == 0, "\(command.joined(separator: " ")) failed:\n\(r.output)")
    }

    func path(_ p: String) -> String { packageRoot.appendingPathComponent(p).path }

    @Test func php() throws { try run(["/usr/bin/phpunit", "-c", path("clients/php/phpunit.xml")]) }
    @Test func python() throws { try run([python3, "-m", "unittest", "discover", "-v", "-s", path("clients/python/tests")]) }
    @Test func node() throws { try run(["/usr/bin/env", "node", "--test", "--test-timeout=60000", path("clients/node/test/metrics.test.js")]) }
}
