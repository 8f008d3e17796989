import Pipeline
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// Redis Cluster as one client sees it: the slot map, one connection per node,
/// and commands routed by their key's slot (`HashSlot`).
///
/// - **Slot map** from `CLUSTER SLOTS`, asked of any node known (seeds first);
///   a server without cluster support is one node holding every slot, so the
///   same code drives a single Redis.
/// - **MOVED** (the slot lives elsewhere now): refresh the map, retry there.
///   **ASK** (the slot is migrating and the key has moved): `ASKING`, then the
///   command, on the node named, once. **TRYAGAIN** (a multi-key command while the
///   slot's keys are split by a migration) and **CLUSTERDOWN** (no quorum, a
///   failover in progress): back off and retry. A broken connection: drop it,
///   refresh the map (a replica may have been promoted), retry.
/// - Retries stop after `retryFor`; the last error is thrown.
///
/// Commands retried after a broken connection may run twice: callers use it for
/// idempotent commands and scripts (the pops, whose replies must not be repeated,
/// handle their errors themselves — see `redirect(_:)`).
///
/// Not thread-safe: one thread uses it at a time.
public final class RedisCluster {
    public let connector: RedisConnector
    let seeds: [RedisEndpoint]
    /// Node index per slot (-1: none known).
    private var slots = [Int16](repeating: -1, count: HashSlot.count)
    private(set) var nodes: [RedisEndpoint] = []
    private var connections: [RedisEndpoint: RedisConnection] = [:]
    public var retryFor: Double = 10
    /// Every connection's `elementLimit` (bulk strings longer reach the reader cut).
    public var elementLimit: Int?

    public init(connector: RedisConnector, seeds: [RedisEndpoint]) {
        self.connector = connector
        self.seeds = seeds
    }

    /// What a command's error reply asks of the client.
    public enum Redirect: Equatable {
        case moved(slot: Int, to: RedisEndpoint)
        case ask(slot: Int, to: RedisEndpoint)
        /// TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, READONLY: wait and retry.
        case retry
    }

    /// The redirect an error reply asks for (nil: a real error).
    public static func redirect(_ message: String) -> Redirect? {
        let parts = message.split(separator: " ")
        if parts.count >= 3, parts[0] == "MOVED" || parts[0] == "ASK", let slot = Int(parts[1]),
           let endpoint = endpoint(String(parts[2])) {
            return parts[0] == "MOVED" ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
        }
        for p in ["TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "READONLY", "UNBLOCKED"] where message.hasPrefix(p) { return .retry }
        return nil
    }

    static func endpoint(_ text: String) -> RedisEndpoint? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...].prefix { $0 != "@" }) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        return RedisEndpoint(host: host, port: port)
    }

    /// Reads the slot map from the first node that answers.
    public func refresh() throws(RedisError) {
        var failures: [String] = []
        for endpoint in Array(Set(nodes + seeds)).sorted(by: { seeds.contains($0) && !seeds.contains($1) }) {
            do throws(RedisError) {
                let c = try connection(to: endpoint)
                let reply: RedisValue
                do throws(RedisError) { reply = try c.command("CLUSTER", "SLOTS") } catch .reply(let m) where m.contains("cluster support disabled") {
                    nodes = [endpoint]
                    for i in slots.indices { slots[i] = 0 }
                    return
                }
                guard case .array(let ranges) = reply else { throw RedisError.protocolViolation("CLUSTER SLOTS did not answer a list") }
                var map = [Int16](repeating: -1, count: HashSlot.count)
                var known: [RedisEndpoint] = []
                for r in ranges {
                    guard case .array(let f) = r, f.count >= 3, case .integer(let lo) = f[0], case .integer(let hi) = f[1],
                          case .array(let master) = f[2], master.count >= 2, case .integer(let port) = master[1] else { continue }
                    var host = master[0].text ?? ""
                    if host.isEmpty || host == "?" { host = endpoint.host }   // "the node you asked"
                    let e = RedisEndpoint(host: host, port: Int(port))
                    let index = known.firstIndex(of: e) ?? { known.append(e); return known.count - 1 }()
                    for s in Int(lo)...Int(min(hi, Int64(HashSlot.count - 1))) { map[s] = Int16(index) }
                }
                guard !known.isEmpty else { throw RedisError.reply("CLUSTERDOWN the cluster has no slots assigned") }
                slots = map
                nodes = known
                for (e, _) in connections where !known.contains(e) && !seeds.contains(e) { connections[e] = nil }
                return
            } catch {
                drop(endpoint)
                failures.append("\(endpoint): \(error)")
            }
        }
        throw .connection("no cluster node answered CLUSTER SLOTS: " + failures.joined(separator: "; "))
    }

    /// The master holding `slot`, by the map (refreshed first when unknown).
    public func node(forSlot slot: Int) throws(RedisError) -> RedisEndpoint {
        if nodes.isEmpty || slots[slot] < 0 { try refresh() }
        guard slots[slot] >= 0 else { throw .reply("CLUSTERDOWN slot \(slot) is not served") }
        return nodes[Int(slots[slot])]
    }

    /// The open connection to `endpoint`, or a new one.
    public func connection(to endpoint: RedisEndpoint) throws(RedisError) -> RedisConnection {
        if let c = connections[endpoint] { return c }
        let c = try connector.open(endpoint)
        c.elementLimit = elementLimit
        connections[endpoint] = c
        return c
    }

    /// Runs `body` with every connection reading replies whole (a large value it knows is not an element).
    public func withoutElementLimit<R>(_ body: () throws(RedisError) -> R) throws(RedisError) -> R {
        let limit = elementLimit
        func set(_ l: Int?) { elementLimit = l; for c in connections.values { c.elementLimit = l } }
        set(nil)
        defer { set(limit) }
        return try body()
    }

    /// Forgets a connection (broken, or its node is gone).
    public func drop(_ endpoint: RedisEndpoint) { connections[endpoint] = nil }

    /// A redirect reply: MOVED updates the map for that slot at once (then the
    /// whole map is re-read), the others leave it.
    public func follow(_ r: Redirect) {
        if case .moved(let slot, let to) = r {
            let index = nodes.firstIndex(of: to) ?? { nodes.append(to); return nodes.count - 1 }()
            slots[slot] = Int16(index)
            try? refresh()
        }
    }

    /// Runs `args` on the node serving `key`'s slot, following redirects; error
    /// replies other than redirects come back as `.error` values, not thrown.
    @discardableResult
    public func run(key: String, _ args: [[UInt8]]) throws(RedisError) -> RedisValue {
        let slot = HashSlot.of(key)
        let deadline = monotonicNanos() + UInt64(retryFor * 1e9)
        var asking: RedisEndpoint?
        var pause = 0.01
        while true {
            var endpoint: RedisEndpoint?
            do throws(RedisError) {
                let target: RedisEndpoint
                if let a = asking { target = a } else { target = try node(forSlot: slot) }
                endpoint = target
                let c = try connection(to: target)
                if asking != nil { c.append("ASKING") }
                c.append(args)
                if asking != nil { _ = try c.withReply { r throws(RedisError) in RedisConnection.copy(r) } }
                let value = try c.withReply { r throws(RedisError) in RedisConnection.copy(r) }
                asking = nil
                guard case .error(let message) = value, let redirect = Self.redirect(message) else { return value }
                switch redirect {
                case .ask(_, let to): asking = to; continue
                case .moved: follow(redirect); continue
                case .retry: if monotonicNanos() > deadline { return value }
                }
            } catch {
                if let endpoint { drop(endpoint) }
                asking = nil
                if monotonicNanos() > deadline { throw error }
                try? refresh()
            }
            usleep(UInt32(pause * 1e6))
            pause = min(pause * 2, 0.5)
        }
    }

    @discardableResult
    public func run(key: String, _ args: String...) throws(RedisError) -> RedisValue {
        try run(key: key, args.map { Array($0.utf8) })
    }

    /// `run`, with error replies thrown.
    @discardableResult
    public func command(key: String, _ args: [[UInt8]]) throws(RedisError) -> RedisValue {
        let v = try run(key: key, args)
        if case .error(let m) = v { throw .reply(m) }
        return v
    }

    @discardableResult
    public func command(key: String, _ args: String...) throws(RedisError) -> RedisValue {
        try command(key: key, args.map { Array($0.utf8) })
    }

    /// A script by SHA, loading it on the node first when the node does not know it.
    @discardableResult
    public func script(_ s: RedisScript, keys: [String], args: [[UInt8]]) throws(RedisError) -> RedisValue {
        let call = [Array("EVALSHA".utf8), Array(s.sha.utf8), Array(String(keys.count).utf8)] + keys.map { Array($0.utf8) } + args
        let v = try run(key: keys[0], call)
        if case .error(let m) = v, m.hasPrefix("NOSCRIPT") {
            return try run(key: keys[0], [Array("EVAL".utf8), Array(s.source.utf8),
                    Array(String(keys.count).utf8)] + keys.map { Array($0.utf8) } + args)
        }
        return v
    }
}

@available(*, unavailable)
extension RedisCluster: Sendable {}

/// A Lua script and its SHA-1 (what `SCRIPT LOAD` answers; computed here so any
/// node can be sent `EVALSHA`, with `EVAL` when it does not know the script yet).
public struct RedisScript: Sendable {
    public let source: String
    public let sha: String
    public init(_ source: String) {
        self.source = source
        self.sha = SHA1.hex(Array(source.utf8))
    }
}
