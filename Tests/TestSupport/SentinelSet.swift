import Foundation
import Redis

/// A master, a replica of it and one `redis-sentinel` (quorum 1) monitoring them
/// as `master`, all on free loopback ports; stopped when dropped. A failover is
/// declared after 1 s without the master. Fails loudly when `redis-sentinel` is
/// missing.
public final class SentinelSet: @unchecked Sendable {
    public let master: RedisServer
    public let replica: RedisServer
    public let sentinelPort: Int
    public let name: String
    private let sentinel: Process
    private let dir: URL

    public struct Missing: Error, CustomStringConvertible {
        public var description = "redis-sentinel not found: install it (apt-get install redis-sentinel, or `make test` does it)"
    }

    /// `sentinelPassword`: the sentinel requires it (`requirepass`) from its clients.
    public init(name: String = "mymaster", sentinelPassword: String? = nil) throws {
        guard let bin = RedisServer.which("redis-sentinel") else { throw Missing() }
        self.name = name
        master = try RedisServer()
        replica = try RedisServer(args: ["--replicaof", "127.0.0.1", String(master.port)])
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sentinel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        sentinelPort = freePort()
        let config = dir.appendingPathComponent("sentinel.conf")
        try """
            port \(sentinelPort)
            bind 127.0.0.1
            dir \(dir.path)
            logfile \(dir.appendingPathComponent("sentinel.log").path)
            sentinel monitor \(name) 127.0.0.1 \(master.port) 1
            sentinel down-after-milliseconds \(name) 1000
            sentinel failover-timeout \(name) 4000
            sentinel parallel-syncs \(name) 1
            \(sentinelPassword.map { "requirepass \($0)" } ?? "")
            """.write(to: config, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = [config.path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        sentinel = p
        // Ready once the sentinel names the master and has seen the replica.
        let ok = eventually(timeout: 15) {
            guard let c = try? RedisConnection(host: "127.0.0.1", port: sentinelPort, timeout: 0.2, readTimeout: 1),
                  sentinelPassword.map({ (try? c.command("AUTH", $0)) != nil }) ?? true,
                  case .array(let replicas)? = try? c.command("SENTINEL", "replicas", name),
                  case .array(let fields)? = replicas.first else { return false }
            let info = Dictionary(stride(from: 0, to: fields.count - 1, by: 2).map { (fields[$0].text ?? "", fields[$0 + 1].text ?? "") }) { a, _ in a }
            return info["flags"] == "slave" && info["master-link-status"] == "ok"
        }
        guard ok else {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw StartError(description: "redis-sentinel on \(sentinelPort) did not see the replica within 15 s")
        }
    }

    deinit {
        kill(sentinel.processIdentifier, SIGKILL)
        sentinel.waitUntilExit()
        try? FileManager.default.removeItem(at: dir)
    }

    struct StartError: Error, CustomStringConvertible { var description: String }

    /// The master's port as the sentinel names it now.
    public func currentMasterPort() throws -> Int? {
        let c = try RedisConnection(host: "127.0.0.1", port: sentinelPort, timeout: 0.5, readTimeout: 2)
        guard case .array(let hp) = try c.command("SENTINEL", "get-master-addr-by-name", name), hp.count == 2 else { return nil }
        return hp[1].text.flatMap { Int($0) }
    }

    /// `SENTINEL FAILOVER`: the replica is promoted without the master failing.
    /// Retried while the sentinel has no replica it considers good yet (NOGOODSLAVE).
    public func failover() throws {
        let c = try RedisConnection(host: "127.0.0.1", port: sentinelPort, timeout: 0.5, readTimeout: 2)
        let deadline = Date().addingTimeInterval(15)
        while true {
            c.append("SENTINEL", "FAILOVER", name)
            let reply = try c.withReply { RedisConnection.copy($0) }
            guard case .error(let m) = reply else { return }
            guard m.hasPrefix("NOGOODSLAVE"), Date() < deadline else { throw StartError(description: "SENTINEL FAILOVER: \(m)") }
            usleep(200_000)
        }
    }

    /// The server now on `port`, master or replica.
    public func server(on port: Int) -> RedisServer { port == master.port ? master : replica }
}
