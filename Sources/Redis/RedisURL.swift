import Pipeline
import TLS

/// One `host:port`.
public struct RedisEndpoint: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where and how to connect, parsed from `redis://` / `rediss://`
/// `[user:password@]host:port[/db]` or from the .NET gateway's StackExchange.Redis
/// form `host:port[,host2:port2…][,key=value…]`, whose keys are read
/// case-insensitively as StackExchange.Redis reads them (`connectionStringKeys`
/// says what each does here). Another scheme (`http://…`) and an unknown key are
/// errors, not a host named `http` or a silently ignored typo.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// Redis servers to try in order; with `serviceName`, the sentinels.
    public var endpoints: [RedisEndpoint] = [RedisEndpoint(host: "localhost", port: 6379)]
    public var user: String?
    public var password: String?
    public var database: Int = 0
    /// `CLIENT SETNAME` after connecting (`name=`).
    public var clientName: String?
    /// TLS (`rediss://`, `ssl=true`).
    public var tls = false
    /// The name the server's certificate must be for, and SNI (`sslHost=`).
    public var sslHost: String?
    /// Sentinel mode: the master's name the sentinels in `endpoints` are asked for.
    public var serviceName: String?
    /// `connectTimeout=` / `syncTimeout=` (milliseconds), `keepAlive=` (seconds).
    public var connectTimeout: Duration?
    public var syncTimeout: Duration?
    public var keepAlive: Int?
    /// `sslProtocols=` as a version range.
    public var tlsVersions: ClosedRange<TLSVersion>?
    /// Keys given that have no meaning here (logged once at info level).
    public var ignoredKeys: [String] = []

    public init(host: String = "localhost", port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0) {
        endpoints = [RedisEndpoint(host: host, port: port)]
        self.user = user; self.password = password; self.database = database
    }

    public var host: String { endpoints[0].host }
    public var port: Int { endpoints[0].port }

    /// Without the password, for logs and `/ready`.
    public var description: String {
        let scheme = tls ? "rediss://" : ""
        let hosts = endpoints.map(\.description).joined(separator: ",")
        if let serviceName { return "\(scheme)\(hosts) (sentinel master `\(serviceName)`)/\(database)" }
        return "\(scheme)\(hosts)/\(database)"
    }

    public static func parse(_ text: String) -> Result<RedisURL, ParseError> {
        let s = String(text.trimmingWhitespace)
        if s.hasPrefix("rediss://") {
            return parseURL(String(s.dropFirst("rediss://".count))).map { var u = $0; u.tls = true; return u }
        }
        if s.hasPrefix("redis://") { return parseURL(String(s.dropFirst("redis://".count))) }
        if let scheme = s.range(of: "://") {
            return .failure(ParseError("unsupported scheme `\(s[..<scheme.lowerBound])://` (use redis://, rediss:// or the "
                + "host:port,key=value form)"))
        }
        return parseDotNet(s)
    }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// What each StackExchange.Redis connection-string key does here; `nil`: accepted
    /// and logged once as having no meaning for this gateway.
    public static let connectionStringKeys: [(key: String, meaning: String?)] = [
        ("ssl", "`true`: TLS to every endpoint (default port 6380, as StackExchange.Redis)"),
        ("sslHost", "the name the server's certificate must be for, and SNI (default: the host)"),
        ("sslProtocols", "allowed TLS versions, `Tls12`, `Tls13` or `Tls12|Tls13` (TLS 1.0/1.1 are refused)"),
        ("password", "AUTH password (with `user`: ACL user)"),
        ("user", "ACL user name"),
        ("defaultDatabase", "SELECT after connecting (the YAML `database` / `Redis__MetricQueueDatabase` overrides it)"),
        ("serviceName", "Sentinel mode: the endpoints are sentinels (default port 26379) asked for this master"),
        ("connectTimeout", "milliseconds for the TCP connect and TLS handshake (`connect_timeout` when not set in YAML)"),
        ("syncTimeout", "milliseconds any reply may take (`read_timeout` when not set in YAML; must exceed `block_timeout`)"),
        ("keepAlive", "seconds: TCP keep-alive probes after this much idle time"),
        ("name", "client name, CLIENT SETNAME"),
        ("abortConnect", nil), ("allowAdmin", nil), ("asyncTimeout", nil), ("channelPrefix", nil),
        ("checkCertificateRevocation", nil), ("configChannel", nil), ("configCheckSeconds", nil),
        ("connectRetry", nil), ("heartbeatConsistencyChecks", nil), ("heartbeatInterval", nil),
        ("highPrioritySocketThreads", nil), ("includeDetailInExceptions", nil),
        ("includePerformanceCountersInExceptions", nil), ("protocol", nil), ("proxy", nil),
        ("resolveDns", nil), ("responseTimeout", nil), ("setlib", nil), ("tiebreaker", nil),
        ("tunnel", nil), ("version", nil), ("writeBuffer", nil),
    ]

    private static func parseURL(_ rest: String) -> Result<RedisURL, ParseError> {
        var url = RedisURL()
        var rest = Substring(rest)
        if let at = rest.lastIndex(of: "@") {
            let auth = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = auth.firstIndex(of: ":") {
                let user = percentDecode(auth[..<colon])
                url.user = user.isEmpty ? nil : user
                url.password = percentDecode(auth[auth.index(after: colon)...])
            } else {
                url.password = percentDecode(auth)
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0 else { return .failure(ParseError("database must be a non-negative integer, got `\(db)`")) }
                url.database = n
            }
        }
        switch endpoint(rest, defaultPort: 6379) {
        case .success(let e): url.endpoints = [e]
        case .failure(let f): return .failure(f)
        }
        return .success(url)
    }

    private static func parseDotNet(_ s: String) -> Result<RedisURL, ParseError> {
        var url = RedisURL()
        let known = Dictionary(uniqueKeysWithValues: connectionStringKeys.map { ($0.key.lowercased(), $0) })
        var hosts: [Substring] = []
        for part in s.split(separator: ",", omittingEmptySubsequences: true).map({ $0.trimmingWhitespace }) where !part.isEmpty {
            guard let eq = part.firstIndex(of: "=") else { hosts.append(part); continue }
            let rawKey = String(part[..<eq].trimmingWhitespace), value = String(part[part.index(after: eq)...].trimmingWhitespace)
            if rawKey.hasPrefix("$") { url.ignoredKeys.append(rawKey); continue }   // command renames: nothing to rename here
            guard let entry = known[rawKey.lowercased()] else {
                let hint = OptionReader.closest(to: rawKey, in: connectionStringKeys.map(\.key)).map { "; did you mean `\($0)`?" } ?? ""
                return .failure(ParseError("unknown connection-string key `\(rawKey)`\(hint)"))
            }
            func milliseconds() -> Result<Duration, ParseError> {
                guard let n = Int(value),
                        n > 0 else { return .failure(ParseError("\(entry.key) must be a positive number of milliseconds, got `\(value)`")) }
                return .success(.milliseconds(n))
            }
            switch entry.key {
            case "ssl":
                switch value.lowercased() {
                case "true": url.tls = true
                case "false": url.tls = false
                default: return .failure(ParseError("ssl must be true or false, got `\(value)`"))
                }
            case "sslHost": url.sslHost = value.isEmpty ? nil : value
            case "sslProtocols":
                switch tlsRange(value) {
                case .success(let r): url.tlsVersions = r
                case .failure(let f): return .failure(f)
                }
            case "password": url.password = value
            case "user": url.user = value.isEmpty ? nil : value
            case "defaultDatabase":
                guard let n = Int(value),
                        n >= 0 else { return .failure(ParseError("defaultDatabase must be a non-negative integer, got `\(value)`")) }
                url.database = n
            case "serviceName": url.serviceName = value.isEmpty ? nil : value
            case "connectTimeout":
                switch milliseconds() { case .success(let d): url.connectTimeout = d; case .failure(let f): return .failure(f) }
            case "syncTimeout":
                switch milliseconds() { case .success(let d): url.syncTimeout = d; case .failure(let f): return .failure(f) }
            case "keepAlive":
                guard let n = Int(value),
                        n >= 0 else { return .failure(ParseError("keepAlive must be a non-negative number of seconds, got `\(value)`")) }
                url.keepAlive = n
            case "name": url.clientName = value.isEmpty ? nil : value
            default: url.ignoredKeys.append(entry.key)
            }
        }
        guard !hosts.isEmpty else { return .failure(ParseError("no host:port in `\(s)`")) }
        let defaultPort = url.serviceName != nil ? 26379 : url.tls ? 6380 : 6379
        var endpoints: [RedisEndpoint] = []
        for h in hosts {
            switch endpoint(h, defaultPort: defaultPort) {
            case .success(let e): if !endpoints.contains(e) { endpoints.append(e) }
            case .failure(let f): return .failure(f)
            }
        }
        url.endpoints = endpoints
        return .success(url)
    }

    /// `Tls12`, `tls13`, `Tls12|Tls13` (StackExchange.Redis' SslProtocols flags).
    private static func tlsRange(_ value: String) -> Result<ClosedRange<TLSVersion>, ParseError> {
        var versions: [TLSVersion] = []
        for part in value.split(whereSeparator: { $0 == "|" || $0 == "," || $0 == " " }) {
            guard let v = TLSVersion(spelling: String(part)), v >= .tls12 else {
                return .failure(ParseError("sslProtocols: unsupported `\(part)` (use Tls12, Tls13 or Tls12|Tls13)"))
            }
            versions.append(v)
        }
        guard let lo = versions.min(), let hi = versions.max() else { return .failure(ParseError("sslProtocols must not be empty")) }
        return .success(lo...hi)
    }

    private static func endpoint(_ s: Substring, defaultPort: Int) -> Result<RedisEndpoint, ParseError> {
        var host = s, port = defaultPort
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {   // [::1]:6379
            host = s[s.index(after: s.startIndex)..<close]
            let after = s[s.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { return .failure(ParseError("bad port in `\(s)`")) }
                port = p
            }
        } else if let colon = s.lastIndex(of: ":") {
            host = s[..<colon]
            guard let p = Int(s[s.index(after: colon)...]), (1...65535).contains(p) else { return .failure(ParseError("bad port in `\(s)`")) }
            port = p
        }
        return .success(RedisEndpoint(host: host.isEmpty ? "localhost" : String(host), port: port))
    }

    private static func percentDecode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var i = s.utf8.startIndex
        let u = s.utf8
        while i < u.endIndex {
            if u[i] == UInt8(ascii: "%"), let j = u.index(i, offsetBy: 2, limitedBy: u.endIndex), j < u.endIndex,
               let v = UInt8(String(decoding: u[u.index(after: i)...j], as: UTF8.self), radix: 16) {
                bytes.append(v); i = u.index(after: j)
            } else {
                bytes.append(u[i]); i = u.index(after: i)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension StringProtocol {
    var trimmingWhitespace: Substring {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return s
    }
}
