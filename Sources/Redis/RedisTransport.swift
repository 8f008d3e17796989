import TLS

/// The connection to one Redis node: a `ClientStream` (TCP, TLS when configured)
/// whose failures are `RedisError`s. hiredis 0.14 has no TLS, so the bytes go
/// through this type and hiredis only formats commands and parses replies
/// (`RedisConnection`). Not thread-safe: one thread uses a transport at a time.
final class RedisTransport {
    private let stream: ClientStream
    let endpoint: RedisEndpoint

    /// Connects within `timeout` (TCP, then the TLS handshake when `tls` is given).
    init(endpoint: RedisEndpoint, tls: (TLSClientContext, TLSClientSettings)?, timeout: Double, readTimeout: Double,
         keepAlive: Int? = nil) throws(RedisError) {
        self.endpoint = endpoint
        do {
            stream = try ClientStream(host: endpoint.host, port: endpoint.port, tls: tls, timeout: timeout, readTimeout: readTimeout,
                                      keepAlive: keepAlive)
        } catch {
            throw .connection(error.description)
        }
    }

    var isTLS: Bool { stream.isTLS }

    /// Sends all of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws(RedisError) {
        do { try stream.write(bytes) } catch { throw .connection(error.description) }
    }

    /// Reads what is available (at least one byte); 0 means Redis closed the connection.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(RedisError) -> Int {
        do { return try stream.read(into: buffer) } catch { throw .connection(error.description) }
    }
}

@available(*, unavailable)
extension RedisTransport: Sendable {}
