import Pipeline
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// Dead letters onto a Redis list: one pipelined round trip per flush,
/// `LPUSH key l1 … ln` (newest at the head) then `LTRIM key 0 max-1`. The
/// connection is opened on first use and again after a failure.
final class RedisDeadLetterWriter: DeadLetterWriter {
    private let connector: RedisConnector
    private var connection: RedisConnection?

    init(connector: RedisConnector) { self.connector = connector }

    func send(_ letters: [[UInt8]], key: String, maxLength: Int) throws {
        do throws(RedisError) {
            if connection == nil { connection = try connector.connect() }
            let c = connection!
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

/// The factory the gateway hands the runtime: a writer per `dead_letter` config,
/// with TLS trust and client certificate from `Redis__TlsCaFile`,
/// `Redis__TlsCertFile`, `Redis__TlsKeyFile` (as the command-line tools).
public let redisDeadLetterWriters: DeadLetterWriterFactory = { config in
    let url: RedisURL
    switch RedisURL.parse(config.url) {
    case .success(let u): url = u
    case .failure(let e): throw ConfigError.invalid(key: "dead_letter.url", reason: e.description)
    }
    func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
    let tls = TLSClientSettings(caFile: env("Redis__TlsCaFile"), certFile: env("Redis__TlsCertFile"), keyFile: env("Redis__TlsKeyFile"))
    return RedisDeadLetterWriter(connector: RedisConnector(url: url, tls: tls, connectTimeout: 2, readTimeout: 5))
}
