import Pipeline
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// Dead letters onto a Redis list: one pipelined round trip per flush,
/// `LPUSH key l1 … ln` (newest at the head) then `LTRIM key 0 max-1`. The
/// connection (on a cluster: to the node serving the key's slot) is opened on first
/// use and again after a failure, which also re-reads the slot map.
final class RedisDeadLetterWriter: DeadLetterWriter {
    private let redis: RedisOptions
    private var connection: RedisConnection?

    init(redis: RedisOptions) { self.redis = redis }

    private func connect(key: String) throws(RedisError) -> RedisConnection {
        if let connection { return connection }
        let c: RedisConnection
        if redis.cluster.isEmpty {
            c = try redis.connector.connect()
        } else {
            let cluster = RedisCluster(connector: redis.connector, seeds: redis.cluster)
            c = try cluster.connection(to: try cluster.node(forSlot: HashSlot.of(key)))
        }
        connection = c
        return c
    }

    func send(_ letters: [[UInt8]], key: String, maxLength: Int) throws {
        do throws(RedisError) {
            let c = try connect(key: key)
            var i = 0
            var sent = 0
            while i < letters.count {
                let chunk = letters[i..<min(letters.count, i + 500)]
                c.append([Array("LPUSH".utf8), Array(key.utf8)] + chunk)
                sent += 1
                i += chunk.count
            }
            c.append("LTRIM", key, "0", String(maxLength - 1))
            for _ in 0...sent {
                let reply = try c.withReply { r throws(RedisError) in RedisConnection.copy(r) }
                if case .error(let m) = reply { throw RedisError.reply(m) }
            }
        } catch {
            connection = nil
            throw error
        }
    }
}

/// `dead_letter`'s Redis: the same options as every Redis stage (url, tls, sentinel,
/// cluster, time-outs), so `validate` checks them and a reload compares them.
public struct RedisDeadLetters: DeadLetterDestination, Equatable {
    public var redis: RedisOptions

    public init(reading o: OptionReader) {
        var docs = RedisOptions.Docs()
        docs.url = "Redis for the list: redis://, rediss:// or the .NET form."
        docs.cluster = "Redis Cluster seed nodes, host:port: the list's slot is found from them."
        redis = RedisOptions(reading: o, defaultURL: "localhost:6379", docs: docs)
    }

    public func makeWriter() throws -> any DeadLetterWriter { RedisDeadLetterWriter(redis: redis) }
}
