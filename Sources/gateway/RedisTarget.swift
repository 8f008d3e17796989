import Foundation
import Sources
import TLS

/// The command-line tools' way to Redis (`loadgen`, `processing`): a URL or .NET
/// connection string, with TLS trust and client certificate from the same
/// environment variables the default pipeline reads.
func redisConnector(_ text: String, readTimeout: Double) throws -> RedisConnector {
    let env = ProcessInfo.processInfo.environment
    func path(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
    let tls = TLSClientSettings(caFile: path("Redis__TlsCaFile"), certFile: path("Redis__TlsCertFile"), keyFile: path("Redis__TlsKeyFile"))
    return RedisConnector(url: try RedisURL.parse(text).get(), tls: tls, connectTimeout: 2, readTimeout: readTimeout)
}
