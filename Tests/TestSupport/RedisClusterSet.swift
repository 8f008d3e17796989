import Foundation
import Pipeline
import Redis
import Synchronization

/// A real Redis Cluster on loopback: six `redis-server --cluster-enabled yes`
/// (three masters, three replicas) joined with `redis-cli --cluster create`.
/// Started for one suite and stopped when dropped; fails loudly (throws) when
/// redis-server or redis-cli is missing.
public final class RedisClusterSet: @unchecked Sendable {
    public let servers: [RedisServer]
    /// The cluster's own client (slot map, redirects), for the tests' pushes and reads.
    private let client: RedisCluster
    private let lock = NSLock()

    public struct Missing: Error, CustomStringConvertible {
        public var description = "redis-cli not found: install redis-server (apt-get install redis-server, or `make test` does it)"
    }

    public init(nodeTimeoutMs: Int = 1500) throws {
        guard RedisServer.which("redis-cli") != nil else { throw Missing() }
        // A node also listens on port + 10000 (the cluster bus): its port must be ≤ 55535
        // (above it Redis starts, then the node cannot be joined).
        servers = try (0..<6).map { _ in
            // Full syncs start at once (Redis 7 waits 5 s for more replicas by default): a
            // replica that never finished its first sync cannot be promoted.
            try RedisServer(args: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", String(nodeTimeoutMs),
                                   "--repl-diskless-sync-delay", "0"], maxPort: 55535)
        }
        let create = try runCommand(RedisServer.which("redis-cli")!, ["--cluster", "create"] + servers.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", "1", "--cluster-yes"])
        guard create.status == 0 else { throw StartError(description: "redis-cli --cluster create failed:\n\(create.output)") }
        client = RedisCluster(connector: RedisConnector(url: RedisURL(host: "127.0.0.1", port: servers[0].port), connectTimeout: 1, readTimeout: 5),
                              seeds: servers.map { RedisEndpoint(host: "127.0.0.1", port: $0.port) })
        client.retryFor = 20
        Self.stopAtExit(self)
        guard eventually(timeout: 30, { healthy() }) else { throw StartError(description: "the cluster did not become healthy") }
    }

    /// A suite keeps its cluster in a `static let`, which is never released: stop the
    /// nodes when the test process exits, or they would outlive it.
    private static let atExit = Mutex<[RedisClusterSet]>([])
    private static func stopAtExit(_ set: RedisClusterSet) {
        let first = atExit.withLock { sets in sets.append(set); return sets.count == 1 }
        if first { atexit { for set in RedisClusterSet.atExit.withLock({ $0 }) { for s in set.servers { s.stop() } } } }
    }

    public struct StartError: Error, CustomStringConvertible { public var description: String }

    /// `host:port,host:port,…` of every node: the seeds for a connection string.
    public var seeds: String { servers.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    /// Every running node says `cluster_state:ok`, every slot has a master, and each
    /// master has a replica that is linked and in sync (`master_link_status:up`).
    public func healthy() -> Bool {
        for s in servers {
            guard let c = try? s.client(), let info = try? c.command("CLUSTER", "INFO").text else { continue }
            if !info.contains("cluster_state:ok") { return false }
            if let replication = try? c.command("INFO", "replication").text, replication.contains("role:slave"),
               !replication.contains("master_link_status:up") { return false }
        }
        guard let nodes = try? nodes() else { return false }
        let masters = nodes.filter { $0.master && $0.slots > 0 }
        return masters.count == 3 && masters.allSatisfy { m in nodes.contains { $0.masterID == m.id && $0.linked } }
    }

    public struct Node { public var id: String; public var port: Int; public var master: Bool; public var masterID: String; public var slots: Int; public var linked: Bool; public var ranges: [ClosedRange<Int>] }

    /// `CLUSTER NODES` as a live node sees it.
    public func nodes() throws -> [Node] {
        for s in servers {
            guard let c = try? s.client(), let text = try? c.command("CLUSTER", "NODES").text else { continue }
            return text.split(separator: "\n").compactMap { line in
                let f = line.split(separator: " ").map(String.init)
                guard f.count >= 8, let port = Int(f[1].split(separator: "@")[0].split(separator: ":").last ?? "") else { return nil }
                if f[2].contains("fail") && !f[2].contains("fail?") { return Node(id: f[0], port: port, master: false, masterID: "-", slots: 0, linked: false, ranges: []) }
                var ranges: [ClosedRange<Int>] = []
                for r in f.dropFirst(8) where !r.hasPrefix("[") {
                    let p = r.split(separator: "-").compactMap { Int($0) }
                    if p.count == 2 { ranges.append(p[0]...p[1]) } else if p.count == 1 { ranges.append(p[0]...p[0]) }
                }
                return Node(id: f[0], port: port, master: f[2].contains("master"), masterID: f[3], slots: ranges.reduce(0) { $0 + $1.count },
                            linked: f[7] == "connected", ranges: ranges)
            }
        }
        throw StartError(description: "no node answered CLUSTER NODES")
    }

    /// The master serving `key` now.
    public func master(of key: String) throws -> Node {
        let slot = HashSlot.of(key)
        guard let m = try nodes().first(where: { $0.master && $0.ranges.contains { $0.contains(slot) } }) else { throw StartError(description: "no master serves slot \(slot)") }
        return m
    }

    public func replica(of master: Node) throws -> Node {
        guard let r = try nodes().first(where: { $0.masterID == master.id }) else { throw StartError(description: "master \(master.port) has no replica") }
        return r
    }

    public func server(port: Int) -> RedisServer { servers.first { $0.port == port }! }

    /// `CLUSTER FAILOVER` on `replica`: a coordinated switch, no write lost.
    public func failover(to replica: Node) throws {
        try server(port: replica.port).client().command("CLUSTER", "FAILOVER")
    }

    /// Moves `count` slots from one master to another (`redis-cli --cluster reshard`).
    public func reshard(from: Node, to: Node, count: Int) throws -> String {
        let r = try runCommand(RedisServer.which("redis-cli")!, ["--cluster", "reshard", "127.0.0.1:\(to.port)", "--cluster-from", from.id, "--cluster-to", to.id,
                                                                 "--cluster-slots", String(count), "--cluster-yes", "--cluster-pipeline", "10"])
        guard r.status == 0 else { throw StartError(description: "reshard failed:\n\(r.output)") }
        return r.output
    }

    public func push(_ values: [String], key: String) throws {
        try lock.withLock {
            for chunk in stride(from: 0, to: values.count, by: 500) {
                try client.command(key: key, [Array("LPUSH".utf8), Array(key.utf8)] + values[chunk..<min(values.count, chunk + 500)].map { Array($0.utf8) })
            }
        }
    }

    public func command(key: String, _ args: String...) throws -> RedisValue { try command(key: key, args) }

    public func command(key: String, _ args: [String]) throws -> RedisValue {
        try lock.withLock { try client.command(key: key, args.map { Array($0.utf8) }) }
    }

    public func llen(_ key: String) throws -> Int {
        guard case .integer(let n) = try command(key: key, "LLEN", key) else { return -1 }
        return Int(n)
    }
}
