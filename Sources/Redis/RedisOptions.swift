import Pipeline
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// Where a stage's Redis is and how to reach it — `url` (and `database`), `tls`,
/// `sentinel`, `cluster`, `connect_timeout`, `read_timeout` — read the same way by
/// every stage that talks to Redis (the `redis_list` source and sink, `dead_letter`),
/// so `validate` checks all of them and a reload compares all of them.
public struct RedisOptions: Sendable, Equatable {
    public static let defaultURL = "redis://localhost:6379/0"
    public static let defaultConnectTimeout = Duration.seconds(2)
    public static let defaultReadTimeout = Duration.seconds(5)

    public var url: RedisURL
    /// Used when the url asks for TLS (`rediss://`, `ssl=true`).
    public var tls: TLSClientSettings
    /// From the `sentinel:` block; `serviceName=` in the url is read by `RedisConnector`.
    public var sentinel: SentinelSettings?
    /// Redis Cluster seeds (empty: not a cluster, unless the stage says its url's hosts are seeds).
    public var cluster: [RedisEndpoint]
    public var connectTimeout: Duration
    public var readTimeout: Duration

    public init(url: RedisURL, tls: TLSClientSettings = TLSClientSettings(), sentinel: SentinelSettings? = nil, cluster: [RedisEndpoint] = [],
                connectTimeout: Duration = defaultConnectTimeout, readTimeout: Duration = defaultReadTimeout) {
        self.url = url; self.tls = tls; self.sentinel = sentinel; self.cluster = cluster
        self.connectTimeout = connectTimeout; self.readTimeout = readTimeout
    }

    /// What differs between stages in the options' documentation.
    public struct Docs: Sendable {
        public var url = "redis://[user:password@]host:port[/db], rediss://… (TLS), or the .NET form host:port[,host2:port2][,ssl=true]"
            + "[,password=…][,serviceName=…]… (docs/security.md lists every key)."
        public var cluster = "Redis Cluster seed nodes, host:port (a list, or one comma-separated string); the slot map is read from them and "
            + "MOVED, ASK, TRYAGAIN, CLUSTERDOWN and failovers are followed."
        public var readTimeout = "Time-out for any reply (default: syncTimeout= of the url, else 5s)."
        public init() {}
    }

    /// Reads (or, describing, documents) the options from a stage's mapping; errors name their keys.
    public init(reading o: OptionReader, defaultURL: String = defaultURL, docs: Docs = Docs()) {
        switch RedisURL.parse(o.string("url", default: defaultURL, doc: docs.url)) {
        case .success(let u): url = u
        case .failure(let e): url = RedisURL(); o.fail("url", e.description)
        }
        let database = o.string("database", default: "", doc: "Database number; overrides the URL's when set.")
        if !database.isEmpty {
            if let n = Int(database), n >= 0 { url.database = n } else { o.fail("database", "must be a non-negative integer, got `\(database)`") }
        }
        tls = Self.readTLS(o, url: url)
        sentinel = Self.readSentinel(o, url: url)
        cluster = Self.seeds(o, doc: docs.cluster)
        connectTimeout = o.duration("connect_timeout", default: url.connectTimeout ?? Self.defaultConnectTimeout, positive: true,
                                    doc: "Time-out for establishing a connection, TLS handshake included (default: connectTimeout= of the url, "
                                        + "else 2s).")
        readTimeout = o.duration("read_timeout", default: url.syncTimeout ?? Self.defaultReadTimeout, positive: true, doc: docs.readTimeout)
        if !cluster.isEmpty && url.database != 0 { o.fail("database", "Redis Cluster has only database 0") }
        if !cluster.isEmpty && sentinel != nil { o.fail("cluster", "a Redis Cluster is not behind Sentinel; give cluster or sentinel") }
    }

    /// How to reach the master (the cluster's seeds are the stage's business).
    public var connector: RedisConnector {
        RedisConnector(url: url, tls: tls, sentinel: sentinel, connectTimeout: connectTimeout.inSeconds, readTimeout: readTimeout.inSeconds)
    }

    static func readTLS(_ o: OptionReader, url: RedisURL) -> TLSClientSettings {
        let t = o.section("tls", doc: "TLS settings; TLS itself is turned on by rediss:// or ssl=true in the url.")
        func file(_ key: String, _ doc: String) -> String? {
            let path = t.string(key, default: "", doc: doc)
            guard !path.isEmpty else { return nil }
            if access(path, R_OK) != 0 { t.fail(key, "cannot read `\(path)`: \(String(cString: strerror(errno)))") }
            return path
        }
        var tls = TLSClientSettings(
            caFile: file("ca_file",
                    "PEM bundle of the CAs that may sign the server's certificate (empty: the system trust store; Redis__TlsCaFile)."),
            certFile: file("cert_file", "Client certificate chain (PEM) for servers that require one, mTLS (Redis__TlsCertFile)."),
            keyFile: file("key_file", "The client certificate's private key (PEM; empty: in cert_file; Redis__TlsKeyFile)."))
        let serverName = t.string("server_name", default: "", doc:
            "The name the server's certificate must be for, and SNI (empty: sslHost=, else the host connected to).")
        if !serverName.isEmpty { tls.serverName = serverName }
        tls.insecureSkipVerify = t.bool("insecure_skip_verify", default: false, doc:
            "Skip certificate and host-name verification (logged as a warning; for tests only).")
        if tls.keyFile != nil && tls.certFile == nil { t.fail("key_file", "needs cert_file") }
        t.finishReading()
        o.merge(t)
        let given = tls.caFile != nil || tls.certFile != nil || !serverName.isEmpty || tls.insecureSkipVerify
        if given && !url.tls { o.fail("tls", "TLS settings are given but the url does not ask for TLS (use rediss:// or ssl=true)") }
        return tls
    }

    static func readSentinel(_ o: OptionReader, url: RedisURL) -> SentinelSettings? {
        let sn = o.section("sentinel", doc: "Redis Sentinel: ask these sentinels for the master (or serviceName= in the url).")
        let master = sn.string("master", default: "", doc: "The master's name the sentinels know it by.")
        let addresses = sn.stringList("addresses", default: [], doc: "Sentinels, host:port (default port 26379).")
        let user = sn.string("user", default: "", doc: "ACL user for the sentinels.")
        let password = sn.string("password", default: "", doc: "Password for the sentinels (empty: none).")
        sn.finishReading()
        o.merge(sn)
        guard !master.isEmpty || !addresses.isEmpty else { return nil }
        var endpoints: [RedisEndpoint] = []
        for a in addresses {
            switch RedisURL.parse("\(a),serviceName=\(master.isEmpty ? "x" : master)") {
            case .success(let u): endpoints += u.endpoints
            case .failure(let e): o.fail("sentinel.addresses", e.description)
            }
        }
        if master.isEmpty { o.fail("sentinel.master", "must be set with sentinel.addresses") }
        if endpoints.isEmpty { o.fail("sentinel.addresses", "must list at least one sentinel") }
        if url.serviceName != nil { o.fail("sentinel", "the url already names a sentinel master (serviceName=); give the sentinels in one place") }
        return SentinelSettings(master: master, addresses: endpoints, user: user.isEmpty ? nil : user, password: password.isEmpty ? nil : password)
    }

    /// `cluster:` as a list of host:port, or one comma-separated string.
    public static func seeds(_ o: OptionReader, doc: String) -> [RedisEndpoint] {
        var out: [RedisEndpoint] = []
        for entry in o.stringList("cluster", default: [], doc: doc) {
            for seed in entry.split(separator: ",").map({ String($0.filter { $0 != " " }) }) where !seed.isEmpty {
                switch RedisURL.parse(seed) {
                case .success(let u) where u.endpoints.count == 1 && !seed.contains("://"): out.append(u.endpoints[0])
                case .success: o.fail("cluster", "expected host:port, got `\(seed)`")
                case .failure(let e): o.fail("cluster", "`\(seed)`: \(e.description)")
                }
            }
        }
        return out
    }
}
