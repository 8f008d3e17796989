import Foundation
import Pipeline
import Redis
import Yams

/// The command-line tools' way to Redis (`loadgen`, `processing`, `dead-letters`): a URL
/// or .NET connection string, with TLS trust and client certificate from the
/// environment variables the default pipeline reads — read by `RedisOptions`, as every
/// stage reads its Redis, so a bad file or URL is refused with the same message.
func redisConnector(_ text: String, readTimeout: Double) throws -> RedisConnector {
    let env = ProcessInfo.processInfo.environment
    var tls: [(Node, Node)] = []
    for (key, name) in [("ca_file", "Redis__TlsCaFile"), ("cert_file", "Redis__TlsCertFile"), ("key_file", "Redis__TlsKeyFile")] {
        if let v = env[name], !v.isEmpty { tls.append((Node(key), Node(v))) }
    }
    var pairs: [(Node, Node)] = [(Node("url"), Node(text)), (Node("read_timeout"), Node("\(Int(readTimeout * 1000))ms"))]
    if !tls.isEmpty { pairs.append((Node("tls"), Node(tls))) }
    let reader = OptionReader(mapping: Node.Mapping(pairs), path: "redis", line: nil)
    let options = RedisOptions(reading: reader)
    reader.finishReading()
    if let error = reader.errors.first { throw error }
    return options.connector
}
