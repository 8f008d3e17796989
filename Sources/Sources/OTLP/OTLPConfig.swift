import Pipeline
import Web

/// Serves OTLP/HTTP (`POST /v1/metrics`, protobuf or JSON, gzip or not) and emits
/// the points as samples: OpenTelemetry senders, delta or cumulative, aggregated
/// with the Redis senders by any sink below.
public struct OTLPConfig: StageConfig {
    public static let type = "otlp"
    public static let role = StageRole.source
    public static let summary = "Receives OpenTelemetry metrics by OTLP/HTTP (protobuf or JSON) and emits them as samples, cumulative made delta."
    public static let inputKind: ItemKind? = nil
    public static let outputKind: ItemKind? = .samples
    public static let example = """
        listen: "127.0.0.1:0"
        resource_attributes: [deployment.environment]
        stream_ttl: 1h
        """

    public static let defaultListen = "0.0.0.0:4318"

    public var listen: String
    public var webConfigFile: String?
    public var webConfig: WebConfig?
    public var maxRequestBodySize: Int
    public var resourceAttributes: [String]
    public var streamTTL: Duration
    public var maxStreams: Int
    public var threads: Int
    public var maxPendingRequests: Int
    public var idleTimeout: Duration

    public var externalFingerprint: String { webConfig?.fingerprint ?? "" }

    public init(options o: OptionReader) {
        listen = o.string("listen", default: Self.defaultListen, doc: "HOST:PORT for OTLP/HTTP (POST /v1/metrics); 4318 is OTLP/HTTP's port.")
        if ListenAddress.parse(listen) == nil { o.fail("listen", "expected HOST:PORT with a port from 0 to 65535, got `\(listen)`") }
        (webConfigFile, webConfig) = WebConfig.option(o, doc:
            "exporter-toolkit web config, as on the prometheus sink: tls_server_config (TLS, mTLS), basic_auth_users, headers.")
        maxRequestBodySize = o.int("max_request_body_size", default: 4 << 20, range: 1024...(256 << 20), doc:
            "Largest request body in bytes, before and after gzip (413 beyond).")
        resourceAttributes = o.stringList("resource_attributes", default: [], doc:
            "Resource attributes promoted to labels on every point (job comes from service.namespace/service.name; no instance).")
        streamTTL = o.duration("stream_ttl", default: .seconds(3600), positive: true, doc:
            "A cumulative stream idle this long is forgotten (its next point is a new stream's first).")
        maxStreams = o.int("max_streams", default: 100_000, range: 1...100_000_000, doc:
            "Cumulative streams tracked at most; a new stream's points beyond are rejected (stream_limit) until idle ones expire.")
        threads = o.int("threads", default: 2, range: 1...64, doc: "Threads decoding requests.")
        maxPendingRequests = o.int("max_pending_requests", default: 1024, range: 1...1_000_000, doc:
            "Requests accepted but not yet answered (waiting for the pipeline or for durability); beyond, 429 with Retry-After.")
        idleTimeout = o.duration("idle_timeout", default: .seconds(60), positive: true, doc: "Close HTTP connections idle this long.")
    }

    public var exclusiveResources: [(key: String, resource: String)] {
        guard let (_, port) = ListenAddress.parse(listen), port != 0 else { return [] }
        return [("listen", "TCP port \(port)")]
    }

    /// A sender retries an export that got no 200, and a 200 waits until the points are durable.
    public var redelivers: Bool { true }

    public func makeStage(context: StageContext) throws -> Stage {
        .source(OTLPSource(config: self, context: context))
    }
}
