import Aggregation
import Pipeline
import TLS
import Transforms
#if canImport(Glibc)
import Glibc
#endif

/// Holds an aggregate exactly as the `prometheus` sink does and every `interval`
/// sends the current value of every series through Prometheus remote write 1.0 —
/// what a Prometheus scraping the gateway at that interval would send. The keys are
/// Prometheus's own `remote_write` keys, so a user pastes what they have.
public struct RemoteWriteConfig: StageConfig {
    public static let type = "remote_write"
    public static let role = StageRole.sink
    public static let summary = "Aggregates as the prometheus sink does and pushes every series each interval by Prometheus remote write."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = nil
    public static let example = """
        url: "http://127.0.0.1:9090/api/v1/write"
        interval: 15s
        external_labels: {cluster: eu-1}
        """

    public enum Auth: Sendable, Equatable {
        case none
        case basic(username: String, password: Secret)
        case authorization(type: String, credentials: Secret)
        case sigv4(SigV4Settings)
    }

    /// A secret given inline or as a file read again before every send (so a rotated file is used).
    public enum Secret: Sendable, Equatable {
        case inline(String)
        case file(String)

        func read() -> String? {
            switch self {
            case .inline(let s): return s
            case .file(let path):
                guard let bytes = readWholeFile(path) else { return nil }
                return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
    }

    public struct SigV4Settings: Sendable, Equatable {
        var region: String
        var accessKey: String
        var secretKey: String
    }

    public var url: String
    var endpoint: HTTPEndpoint
    public var interval: Duration
    public var remoteTimeout: Duration
    public var headers: [(String, String)] = []
    public var auth = Auth.none
    public var tls = TLSClientSettings()
    public var externalLabels: [(String, String)] = []
    public var relabel: [RelabelRule] = []
    public var maxSamplesPerSend: Int
    public var minBackoff: Duration
    public var maxBackoff: Duration
    public var retryOn429: Bool
    public var sendNativeHistograms: Bool
    public var sendMetadata: Bool
    /// The aggregate: summaries, limits, expiry, native histograms, durability — as on `prometheus`.
    public var aggregate: AggregateOptions
    public var exclusiveResources: [(key: String, resource: String)] { aggregate.exclusiveResources }

    public init(options o: OptionReader) {
        url = o.string("url", default: "", doc:
            "The remote-write endpoint, http:// or https:// (e.g. Mimir's /api/v1/push, Prometheus's /api/v1/write).")
        endpoint = HTTPEndpoint(url) ?? HTTPEndpoint("http://invalid")!
        if HTTPEndpoint(url) == nil, o.mode == .decode { o.fail("url", "expected http://HOST[:PORT]/PATH or https://…, got `\(url)`") }
        _ = o.string("name", default: "", doc: "Prometheus's remote_write name; accepted, the stage's id names it in meta-metrics.")
        interval = o.duration("interval", default: .seconds(15), positive: true, doc:
            "How often every series is sent (what a Prometheus scrape_interval would be); a send still running delays the next.")
        remoteTimeout = o.duration("remote_timeout", default: .seconds(30), positive: true, doc: "Time-out for connecting and for each request.")
        for (name, value) in o.stringMap("headers", doc: "Extra HTTP headers on every request (X-Scope-OrgID for Mimir tenants, …).") {
            let reserved = ["host", "content-length", "content-type", "content-encoding", "authorization", "x-prometheus-remote-write-version"]
            if reserved.contains(name.lowercased()) {
                o.fail("headers", "`\(name)` is set by the sink and cannot be given")
            } else {
                headers.append((name, value))
            }
        }
        var auths: [Auth] = []
        let basic = o.section("basic_auth", doc: "HTTP basic auth: username, password or password_file.")
        let user = basic.string("username", default: "", doc: "User name.")
        let password = Self.secret(basic, "password", "password_file", what: "the password")
        basic.finishReading(); o.merge(basic)
        if !user.isEmpty || password != nil { auths.append(.basic(username: user, password: password ?? .inline(""))) }
        let authz = o.section("authorization", doc: "Authorization header: type (default Bearer), credentials or credentials_file.")
        let type = authz.string("type", default: "Bearer", doc: "The scheme (Basic is refused: use basic_auth).")
        if type.lowercased() == "basic" { authz.fail("type", "use basic_auth for Basic") }
        if let credentials = Self.secret(authz, "credentials", "credentials_file", what: "the credentials") {
            auths.append(.authorization(type: type, credentials: credentials))
        }
        authz.finishReading(); o.merge(authz)
        let sig = o.section("sigv4", doc:
            "AWS Signature V4 (Amazon Managed Prometheus, service aps): region, access_key, secret_key; without keys AWS_ACCESS_KEY_ID, "
            + "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment at each send. profile and role_arn are refused (not built).")
        let region = sig.string("region", default: "", doc: "The AWS region (empty: AWS_REGION, AWS_DEFAULT_REGION).")
        let accessKey = sig.string("access_key", default: "", doc: "Access key id (empty: from the environment).")
        let secretKey = sig.string("secret_key", default: "", doc: "Secret access key (empty: from the environment).")
        for refused in ["profile", "role_arn"] where sig.node(refused) != nil {
            sig.fail(refused, "not supported: give access_key/secret_key or the AWS_* environment variables")
        }
        _ = sig.string("profile", default: "", doc: "Refused (not built).")
        _ = sig.string("role_arn", default: "", doc: "Refused (not built).")
        if o.node("sigv4") != nil {
            let env = { (k: String) in getenv(k).map { String(cString: $0) } ?? "" }
            let r = region.isEmpty ? (env("AWS_REGION").isEmpty ? env("AWS_DEFAULT_REGION") : env("AWS_REGION")) : region
            if r.isEmpty { sig.fail("region", "needs a region (or AWS_REGION)") }
            if accessKey.isEmpty != secretKey.isEmpty { sig.fail("access_key", "give access_key and secret_key together") }
            auths.append(.sigv4(SigV4Settings(region: r, accessKey: accessKey, secretKey: secretKey)))
        }
        sig.finishReading(); o.merge(sig)
        if auths.count > 1 { o.fail("basic_auth", "give one of basic_auth, authorization and sigv4") }
        auth = auths.first ?? .none
        let t = o.section("tls_config", doc: "TLS for https:// urls: ca_file, cert_file, key_file, server_name, insecure_skip_verify.")
        func file(_ key: String, _ doc: String) -> String? {
            let path = t.string(key, default: "", doc: doc)
            guard !path.isEmpty else { return nil }
            if access(path, R_OK) != 0 { t.fail(key, "cannot read `\(path)`: \(String(cString: strerror(errno)))") }
            return path
        }
        tls.caFile = file("ca_file", "PEM bundle of the CAs that may sign the server's certificate (empty: the system trust store).")
        tls.certFile = file("cert_file", "Client certificate (PEM), for mTLS.")
        tls.keyFile = file("key_file", "The client certificate's key (PEM).")
        let serverName = t.string("server_name", default: "", doc: "The name the certificate must be for, and SNI (empty: the url's host).")
        if !serverName.isEmpty { tls.serverName = serverName }
        tls.insecureSkipVerify = t.bool("insecure_skip_verify", default: false, doc: "Skip certificate verification (tests only).")
        if tls.keyFile != nil && tls.certFile == nil { t.fail("key_file", "needs cert_file") }
        t.finishReading(); o.merge(t)
        externalLabels = o.stringMap("external_labels", doc:
            "Labels added to every series that has no label of that name (as Prometheus's global external_labels).")
        for (name, _) in externalLabels where !Self.isLabelName(name) { o.fail("external_labels", "`\(name)` is not a valid label name") }
        let readers = o.sections("write_relabel_configs", doc:
            "Relabel rules (as the relabel transform's) applied to the samples this sink takes, before they are aggregated: a rule sees a "
            + "sample's metric name as __name__, not the _bucket/_sum/_count series it becomes.")
        if o.mode == .describe { let r = OptionReader(describing: "write_relabel_configs[]"); _ = RelabelRule(options: r); o.merge(r) }
        relabel = readers.compactMap { r in let rule = RelabelRule(options: r); o.merge(r); return rule }
        let q = o.section("queue_config", doc:
            "max_samples_per_send, min_backoff, max_backoff, retry_on_http_429; Prometheus's other keys are accepted and unused.")
        maxSamplesPerSend = q.int("max_samples_per_send", default: 2000, range: 1...1_000_000, doc: "Samples (and native histograms) per request.")
        minBackoff = q.duration("min_backoff", default: .milliseconds(30), positive: true, doc: "First retry delay; doubled after each failure.")
        maxBackoff = q.duration("max_backoff", default: .seconds(5), positive: true, doc: "Longest retry delay.")
        retryOn429 = q.bool("retry_on_http_429", default: true, doc: "Retry 429 Too Many Requests (honouring Retry-After); false: drop as a 4xx.")
        for unused in ["capacity", "max_shards", "min_shards", "batch_send_deadline", "sample_age_limit"] {
            _ = q.string(unused, default: "", doc: "Accepted for compatibility; unused (every interval sends the current state, nothing queues).")
        }
        q.finishReading(); o.merge(q)
        if minBackoff > maxBackoff { o.fail("queue_config", "min_backoff is longer than max_backoff") }
        sendNativeHistograms = o.bool("send_native_histograms", default: true, doc:
            "Send families kept native (native_histograms) as native histograms too, in the request's histograms field.")
        let md = o.section("metadata_config", doc: "send: whether each family's type and help go with its series (default true).")
        sendMetadata = md.bool("send", default: true, doc: "Send metadata.")
        _ = md.string("send_interval", default: "", doc: "Accepted; metadata goes with every send.")
        _ = md.string("max_samples_per_send", default: "", doc: "Accepted; unused.")
        md.finishReading(); o.merge(md)
        let message = o.string("protobuf_message", default: "prometheus.WriteRequest", doc:
            "prometheus.WriteRequest (remote write 1.0). io.prometheus.write.v2.Request (2.0) is refused: not built.")
        if message != "prometheus.WriteRequest" {
            o.fail("protobuf_message", "only prometheus.WriteRequest (remote write 1.0) is supported, got `\(message)`")
        }
        for refused in ["proxy_url", "oauth2", "azuread", "google_iam"] {
            if o.node(refused) != nil { o.fail(refused, "not supported by this sink") }
            _ = o.string(refused, default: "", doc: "Refused (not built).")
        }
        _ = o.bool("send_exemplars", default: false, doc: "Accepted; exemplars are not sent.")
        _ = o.bool("follow_redirects", default: true, doc: "Accepted; redirects are not followed.")
        _ = o.bool("enable_http2", default: false, doc: "Accepted; HTTP/1.1 is used.")
        aggregate = AggregateOptions(options: o)
    }

    public func validate() throws {
        if url.isEmpty { throw ConfigError.invalid(key: "url", reason: "is required") }
    }

    public var needsRedelivery: Bool { aggregate.needsRedelivery }
    public var keepsShardState: Bool { aggregate.stateInRedis }

    public func makeStage(context: StageContext) throws -> Stage {
        .sink(try RemoteWriteSink(config: self, context: context))
    }

    static func secret(_ r: OptionReader, _ inline: String, _ file: String, what: String) -> Secret? {
        let value = r.string(inline, default: "", doc: "\(what.prefix(1).uppercased())\(what.dropFirst()), inline.")
        let path = r.string(file, default: "", doc: "A file holding \(what), read again before every send.")
        if !value.isEmpty && !path.isEmpty { r.fail(file, "give \(inline) or \(file), not both") }
        if !path.isEmpty {
            if access(path, R_OK) != 0 { r.fail(file, "cannot read `\(path)`: \(String(cString: strerror(errno)))") }
            return .file(path)
        }
        return value.isEmpty ? nil : .inline(value)
    }

    static func isLabelName(_ s: String) -> Bool {
        guard let first = s.utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7A) else { return false }
        return s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }
    }
}

/// The whole file, or nil when it cannot be read.
func readWholeFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n > 0 { out += chunk[0..<n] }
        if n < chunk.count { break }
    }
    return out
}
