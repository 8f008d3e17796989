import Foundation
import Redis
import TLS

/// A real redis-server on a free loopback port, started for one test and stopped
/// when the test drops it. Never a shared instance. Fails loudly (throws) when
/// `redis-server` is not installed — a test that needs Redis does not skip.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    private let extraArgs: [String]
    /// Set for a TLS-only server (`init(tls:)`): how its own clients connect.
    public let tlsClient: TLSClientSettings?
    private var process: Process?
    private let dir: URL

    public struct Missing: Error, CustomStringConvertible {
        public var description = "redis-server not found: install it (apt-get install redis-server, or `make test` does it)"
    }

    /// A TLS-only server (`--port 0 --tls-port P`) with `certificates`' server
    /// certificate (or `serving`: another pair, which this harness's own client does
    /// not verify); `requireClientCertificates` is `tls-auth-clients yes` (mTLS).
    public convenience init(tls certificates: TestCertificates, requireClientCertificates: Bool = false,
                            serving: (cert: String, key: String)? = nil, args: [String] = [], maxPort: Int = 65535) throws {
        var client = TLSClientSettings(caFile: certificates.caFile)
        if requireClientCertificates { client.certFile = certificates.clientCert; client.keyFile = certificates.clientKey }
        client.insecureSkipVerify = serving != nil
        let pair = serving ?? (certificates.serverCert, certificates.serverKey)
        try self.init(args: ["--port", "0", "--tls-cert-file", pair.cert, "--tls-key-file", pair.key,
                             "--tls-ca-cert-file", certificates.caFile, "--tls-auth-clients", requireClientCertificates ? "yes" : "no"] + args,
                      tlsClient: client, maxPort: maxPort)
    }

    /// `maxPort`: a cluster node also listens on port + 10000 (its bus), so it needs a port ≤ 55535.
    public init(args: [String] = [], tlsClient: TLSClientSettings? = nil, maxPort: Int = 65535) throws {
        guard let _ = Self.which("redis-server") else { throw Missing() }
        self.extraArgs = args
        self.tlsClient = tlsClient
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("redis-\(UUID().uuidString)")
        self.dir = dir
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var lastError: Error?
        for _ in 0..<5 {
            var port = freePort()
            while port > maxPort { port = freePort() }
            do {
                process = try Self.launch(port: port, dir: dir, args: args, tls: tlsClient)
                self.port = port
                return
            } catch { lastError = error }
        }
        throw lastError!
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: dir)
    }

    public var url: String { "\(tlsClient != nil ? "rediss" : "redis")://127.0.0.1:\(port)/0" }

    private static func launch(port: Int, dir: URL, args extraArgs: [String], tls: TLSClientSettings?) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.which("redis-server")!)
        p.arguments = [tls != nil ? "--tls-port" : "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--dir", dir.path, "--logfile", dir.appendingPathComponent("redis.log").path] + extraArgs
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        ExitReaper.track(p.processIdentifier)
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if !p.isRunning { throw RedisStartError(port: port) }
            if (try? RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: port), tls: tls, timeout: 0.2, readTimeout: 1)) != nil { return p }
            usleep(20_000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        throw RedisStartError(port: port)
    }

    struct RedisStartError: Error { var port: Int }

    /// Stops the server (SIGKILL: like a crash; nothing is saved anyway).
    public func stop() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        ExitReaper.forget(p.processIdentifier)
        process = nil
    }

    /// Starts it again on the same port.
    public func restart() throws {
        stop()
        process = try Self.launch(port: port, dir: dir, args: extraArgs, tls: tlsClient)
    }

    /// A fresh client connection.
    public func client() throws -> RedisConnection {
        try RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: port), tls: tlsClient, timeout: 1, readTimeout: 5)
    }

    /// LPUSHes `values` in order (so RPOP returns them in the same order), in
    /// chunks of 1000 per command.
    public func push(_ values: [String], key: String = ShardRouting.defaultQueueKey) throws {
        let c = try client()
        var i = 0
        while i < values.count {
            let chunk = values[i..<min(values.count, i + 1000)]
            c.append([Array("LPUSH".utf8), Array(key.utf8)] + chunk.map { Array($0.utf8) })
            _ = try c.withReply { _ in 0 }
            i += chunk.count
        }
    }

    public func llen(_ key: String = ShardRouting.defaultQueueKey) throws -> Int {
        if case .integer(let n) = try client().command("LLEN", key) { return Int(n) }
        return -1
    }

    public static func which(_ tool: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin"] + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) {
            let path = dir + "/" + tool
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

/// A loopback TCP port that was free a moment ago.
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            _ = bind(fd, sa, len)
            _ = getsockname(fd, sa, &len)
        }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Polls `condition` until it holds or `timeout` passes.
@discardableResult
public func eventually(timeout: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

/// Runs a closure on a thread of its own (for producers in tests).
public final class OSThreadRunner: @unchecked Sendable {
    private let thread: Thread
    private let done = DispatchSemaphore(value: 0)
    public init(_ body: @escaping @Sendable () -> Void) {
        let done = self.done
        thread = Thread { body(); done.signal() }
        thread.start()
    }
    public func join() { done.wait() }
}

public enum RedisConnectionFactory {
    public static func connect(port: Int) throws -> RedisConnection {
        try RedisConnection(host: "127.0.0.1", port: port, timeout: 0.5, readTimeout: 2)
    }
}

extension RedisConnection {
    /// LPUSH `values`; throws on a broken connection or an error reply.
    public func lpush(_ values: [String], key: String = ShardRouting.defaultQueueKey) throws {
        append([Array("LPUSH".utf8), Array(key.utf8)] + values.map { Array($0.utf8) })
        let reply = try withReply { RedisConnection.copy($0) }
        if case .error(let message) = reply { throw RedisError.reply(message) }
    }
}
