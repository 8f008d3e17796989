import Pipeline
import TLS

/// Asks Redis Sentinel for a master (`SENTINEL get-master-addr-by-name`).
public struct SentinelSettings: Sendable, Equatable {
    public var master: String
    public var addresses: [RedisEndpoint]
    /// AUTH for the sentinels (nil: none; with the URL form, the URL's password is
    /// tried and a sentinel without a password is accepted).
    public var user: String?
    public var password: String?
    public init(master: String, addresses: [RedisEndpoint], user: String? = nil, password: String? = nil) {
        self.master = master; self.addresses = addresses; self.user = user; self.password = password
    }
}

/// Everything needed to reach the master: the parsed URL, TLS, Sentinel and the
/// time-outs. `connect()` finds the master, connects and sets the connection up
/// (AUTH, SELECT, CLIENT SETNAME) — on every reconnect, so a failover is followed
/// by asking again.
///
/// **Which server.** With Sentinel: the master a sentinel names (sentinels tried
/// in turn), confirmed with `ROLE`. With several endpoints: the first whose
/// `ROLE` is master. With one: that one, without `ROLE` (an ACL user may lack it).
public struct RedisConnector: Sendable {
    public var url: RedisURL
    /// TLS settings; used when `url.tls`.
    public var tls: TLSClientSettings
    public var sentinel: SentinelSettings?
    public var connectTimeout: Double
    public var readTimeout: Double

    public init(url: RedisURL, tls: TLSClientSettings = TLSClientSettings(), sentinel: SentinelSettings? = nil, connectTimeout: Double,
            readTimeout: Double) {
        self.url = url
        self.tls = tls
        if let versions = url.tlsVersions {
            self.tls.minVersion = versions.lowerBound
            self.tls.maxVersion = versions.upperBound
        }
        if self.tls.serverName == nil { self.tls.serverName = url.sslHost }
        self.sentinel = sentinel ?? url.serviceName.map { SentinelSettings(master: $0, addresses: url.endpoints, user: url.user,
                password: url.password) }
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
    }

    /// Where connections go, for logs and `/ready` (no password).
    public var description: String {
        if let sentinel {
            return "\(url.tls ? "rediss://" : "")master `\(sentinel.master)` via sentinels "
                + "\(sentinel.addresses.map(\.description).joined(separator: ","))/\(url.database)"
        }
        return url.description
    }

    /// Connects to the master and sets the connection up.
    public func connect() throws(RedisError) -> RedisConnection {
        if let sentinel {
            let endpoint = try askSentinels(sentinel)
            let c = try open(endpoint)
            if let role = try role(c), role != "master" {
                throw .connection("\(endpoint), named master `\(sentinel.master)` by the sentinels, is a \(role) (a failover in progress?)")
            }
            return c
        }
        if url.endpoints.count == 1 { return try open(url.endpoints[0]) }
        var failures: [String] = []
        for endpoint in url.endpoints {
            do {
                let c = try open(endpoint)
                let role = try role(c)
                if role == nil || role == "master" { return c }
                failures.append("\(endpoint) is a \(role!)")
            } catch {
                failures.append("\(endpoint): \(error)")
            }
        }
        throw .connection("no master among the endpoints: " + failures.joined(separator: "; "))
    }

    /// Connects to one server and authenticates, selects and names the connection.
    public func open(_ endpoint: RedisEndpoint) throws(RedisError) -> RedisConnection {
        let c = try RedisConnection(endpoint: endpoint, tls: url.tls ? tls : nil, timeout: connectTimeout, readTimeout: readTimeout,
                keepAlive: url.keepAlive)
        do throws(RedisError) {
            var sent = false
            if let password = url.password {
                sent = true
                do throws(RedisError) {
                    if let user = url.user { try c.command("AUTH", user, password) } else { try c.command("AUTH", password) }
                } catch .reply(let message) {
                    throw RedisError.authentication(message)
                }
            }
            if url.database != 0 { sent = true; try c.command("SELECT", String(url.database)) }
            if let name = url.clientName { sent = true; try c.command("CLIENT", "SETNAME", name) }
            if !sent { try c.command("PING") }   // a first reply, so that a wrong port or protocol shows here
        } catch .closed where !url.tls {
            throw .connection("\(endpoint) closed the connection without answering (is it a TLS port? use rediss:// or ssl=true)")
        } catch .connection(let m) where !url.tls && m.contains("reset by peer") {
            throw .connection("\(m) before the first reply (is \(endpoint) a TLS port? use rediss:// or ssl=true)")
        }
        return c
    }

    /// The first element of `ROLE` (`master`, `slave`, `sentinel`), or nil when
    /// this user may not run it.
    private func role(_ c: RedisConnection) throws(RedisError) -> String? {
        do throws(RedisError) {
            guard case .array(let items) = try c.command("ROLE"), let first = items.first?.text else {
                throw RedisError.protocolViolation("ROLE did not answer a list")
            }
            return first
        } catch .reply(let message) where message.hasPrefix("NOPERM") {
            return nil
        }
    }

    private func askSentinels(_ s: SentinelSettings) throws(RedisError) -> RedisEndpoint {
        var failures: [String] = []
        for address in s.addresses {
            do throws(RedisError) {
                if let master = try ask(address, s) { return master }
                failures.append("sentinel \(address) does not know master `\(s.master)`")
            } catch {
                failures.append("sentinel \(address): \(error)")
            }
        }
        throw .connection("no sentinel gave the address of master `\(s.master)`: " + failures.joined(separator: "; "))
    }

    /// One sentinel's answer: the master's address, or nil when it does not know the name.
    private func ask(_ address: RedisEndpoint, _ s: SentinelSettings) throws(RedisError) -> RedisEndpoint? {
        let c = try RedisConnection(endpoint: address, tls: url.tls ? tls : nil, timeout: connectTimeout, readTimeout: readTimeout)
        if let password = s.password {
            c.append([Array("AUTH".utf8)] + (s.user.map { [Array($0.utf8)] } ?? []) + [Array(password.utf8)])
            let reply = try c.withReply { r throws(RedisError) in RedisConnection.copy(r) }
            // The URL form's password is the master's; a sentinel may have none.
            if case .error(let message) = reply, !message.contains("without any password configured"), !message.contains("no password is set") {
                throw .authentication(message)
            }
        }
        switch try c.command("SENTINEL", "get-master-addr-by-name", s.master) {
        case .array(let hp) where hp.count == 2:
            guard let host = hp[0].text, let port = hp[1].text.flatMap({ Int($0) }) else {
                throw .protocolViolation("sentinel \(address) answered \(hp) for the master's address")
            }
            return RedisEndpoint(host: host, port: port)
        default:
            return nil
        }
    }
}
