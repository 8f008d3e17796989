import Logging
import NIOCore
import NIOHTTP1
import Web
import Aggregation
import Pipeline
import Synchronization

/// Aggregates samples and serves them for Prometheus:
/// `GET /metrics` (gzip when accepted), `GET /` → `ok`, `GET /ready` → 200 when
/// every source is connected, else 503, with a JSON body naming each source.
///
/// Consumes in source order (`wantsOrderedInput`), so a gauge ends at the value
/// pushed last, whatever `workers` the stages in front of it run.
public struct PrometheusSinkConfig: StageConfig {
    public static let type = "prometheus"
    public static let role = StageRole.sink
    public static let summary = "Aggregates counters, gauges, histograms and summaries and serves /metrics, /ready and /."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = nil
    public static let example = """
        listen: "127.0.0.1:0"
        max_series: 100000
        expire_after_by_name: { "lambda_*": 10m }
        """

    public static let defaultListen = "0.0.0.0:9091"
    public static let defaultIdleTimeout = Duration.seconds(60)

    /// HOST:PORT the HTTP server listens on.
    public var listen: String
    /// Hide the gateway's own metrics except `prom_stream_gateway_info`.
    public var disableMetaMetrics: Bool
    /// Close HTTP connections idle this long.
    public var idleTimeout: Duration
    /// The aggregate: summaries, limits, expiry, native histograms, durability.
    public var aggregate: AggregateOptions
    /// The exporter-toolkit web config (TLS, basic auth, headers); nil: plain HTTP, open.
    public var webConfigFile: String?
    public var webConfig: WebConfig?
    /// `DELETE`/`POST /api/v1/series?match[]=…` (Prometheus's `--web.enable-admin-api`).
    public var enableAdminAPI: Bool
    /// `POST /-/reload` (Prometheus's `--web.enable-lifecycle`).
    public var enableLifecycle: Bool
    /// What `/metrics` may answer in (negotiated from `Accept`).
    public var formats: Set<ExpositionFormat> = Set(ExpositionFormat.allCases)

    /// The web config as read: a reload that changes only that file rebuilds the sink.
    public var externalFingerprint: String { webConfig?.fingerprint ?? "" }

    public init(options o: OptionReader) {
        listen = o.string("listen", default: Self.defaultListen, doc: "HOST:PORT for /metrics, /ready and /.")
        if Self.parseListen(listen) == nil {
            o.fail("listen", "expected HOST:PORT with a port from 0 to 65535, got `\(listen)`")
        }
        disableMetaMetrics = o.bool("disable_meta_metrics", default: false, doc:
            "Hide every prom_stream_gateway_* metric except prom_stream_gateway_info (Metrics__DisableMetaMetrics).")
        idleTimeout = o.duration("idle_timeout", default: Self.defaultIdleTimeout, positive: true, doc: "Close HTTP connections idle this long.")
        aggregate = AggregateOptions(options: o)
        (webConfigFile, webConfig) = WebConfig.option(o, doc:
            "exporter-toolkit web config: tls_server_config (TLS, mTLS), basic_auth_users (bcrypt) on /metrics, http_server_config.headers "
            + "(`gateway run --web.config.file`, GATEWAY_WEB_CONFIG_FILE). Empty: plain HTTP, no auth.")
        enableAdminAPI = o.bool("enable_admin_api", default: false, doc:
            "Serve DELETE/POST /api/v1/series?match[]=SELECTOR, which removes the selected series from every sink of the pipeline "
            + "(`gateway run --web.enable-admin-api`, "
            + "GATEWAY_ENABLE_ADMIN_API). Off: 404.")
        enableLifecycle = o.bool("enable_lifecycle", default: false, doc:
            "Serve POST /-/reload, which re-reads the pipeline file as SIGHUP does (`gateway run --web.enable-lifecycle`, "
            + "GATEWAY_ENABLE_LIFECYCLE). Off: 404.")
        let formatNames = o.stringList("formats", default: ExpositionFormat.allCases.map(\.rawValue), doc:
            "Formats /metrics may answer in, chosen from the request's Accept as client_golang does: protobuf (delimited MetricFamily, which "
            + "carries native histograms), openmetrics (1.0.0, with exemplars), text (0.0.4). Without a match: text, or 406 when text is off.")
        formats = []
        for name in formatNames {
            if let f = ExpositionFormat(rawValue: name) { formats.insert(f) } else {
                o.fail("formats", "unknown format `\(name)` (known: \(ExpositionFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        if formatNames.isEmpty { o.fail("formats", "needs at least one format") }
    }

    /// Port 0 (any free port) is never shared.
    public var exclusiveResources: [(key: String, resource: String)] {
        guard let (_, port) = Self.parseListen(listen), port != 0 else { return aggregate.exclusiveResources }
        return [("listen", "TCP port \(port)")] + aggregate.exclusiveResources
    }

    /// Splits `HOST:PORT` (`[::1]:9091` for IPv6).
    public static func parseListen(_ s: String) -> (host: String, port: Int)? { ListenAddress.parse(s) }

    public var needsRedelivery: Bool { aggregate.needsRedelivery }
    public var keepsShardState: Bool { aggregate.stateInRedis }

    public func makeStage(context: StageContext) throws -> Stage {
        .sink(PrometheusSink(config: self, context: context))
    }
}

public final class PrometheusSink: Sink, StatefulStage, AggregateHolding, SeriesDeleting {
    public let aggregate: Aggregate
    public var store: MetricStore { aggregate.store }
    public let exposition: Exposition
    let config: PrometheusSinkConfig
    let context: StageContext
    private let server = Mutex<HTTPServer?>(nil)
    private let auth: BasicAuth?
    private let tlsFailures = MetaCounter()
    private let unauthorized = MetaCounter()
    /// `/metrics` answers, by format (`ExpositionFormat.allCases` order).
    private let scrapes = ExpositionFormat.allCases.map { _ in MetaCounter() }

    public var wantsOrderedInput: Bool { true }

    public init(config: PrometheusSinkConfig, context: StageContext) {
        self.config = config
        self.context = context
        let aggregate = Aggregate(options: config.aggregate, context: context)
        self.aggregate = aggregate
        auth = config.webConfig.flatMap { $0.users.isEmpty ? nil : BasicAuth(users: $0.users) }
        let telemetry = context.telemetry
        let disabled = config.disableMetaMetrics
        let (tlsFailures, unauthorized, web, scrapes) = (tlsFailures, unauthorized, config.webConfig, scrapes)
        let health = context.health
        self.exposition = Exposition(store: aggregate.store) {
            var families = [ProcessEndpoints.info]
            guard !disabled else { return families }
            families += aggregate.metaFamilies()
            families += ProcessEndpoints.metaFamilies(health: health)
            families.append(MetaFamily(name: Telemetry.prefix + "http_scrapes_total",
                    help: "Answers to /metrics, by the format negotiated from the request's Accept header.", type: .counter,
                                       samples: ExpositionFormat.allCases.enumerated().map { MetaSample(labels: [("format",
                                               $0.element.rawValue)], value: Double(scrapes[$0.offset].value)) }))
            if web?.tls != nil {
                families.append(MetaFamily(name: Telemetry.prefix + "http_tls_handshake_failures_total",
                        help: "HTTPS connections whose TLS handshake or session failed (a wrong CA, no client certificate, plain HTTP to "
                            + "the TLS port).", type: .counter,
                                           samples: [MetaSample(labels: [], value: Double(tlsFailures.value))]))
            }
            if web?.users.isEmpty == false {
                families.append(MetaFamily(name: Telemetry.prefix + "http_unauthorized_requests_total",
                        help: "Requests for /metrics answered 401 (missing or wrong basic-auth credentials).", type: .counter,
                                           samples: [MetaSample(labels: [], value: Double(unauthorized.value))]))
            }
            families += telemetry.collect()
            return families
        }
    }

    static let infoHelp = ProcessEndpoints.infoHelp

    /// The bound HTTP port (after `start`).
    public var port: Int { server.withLock { $0?.port ?? 0 } }

    public func start() throws {
        guard let (host, port) = PrometheusSinkConfig.parseListen(config.listen) else { return }
        try aggregate.start()
        context.peers.add(owner: context.owner, id: context.id, self)
        let c = config.idleTimeout.components
        let idle = TimeAmount.nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
        var certificates: ServerCertificates?
        if let settings = config.webConfig?.tls {
            do { certificates = try ServerCertificates(settings: settings, logger: context.logger) } catch {
                throw ConfigError.invalid(key: "web_config_file", reason: "\(config.webConfigFile ?? ""): \(error)")
            }
        }
        let tlsLog = RateLimitedLog(logger: context.logger, interval: .seconds(10))
        let tlsFailures = tlsFailures
        let s = try HTTPServer(host: host, port: port, idleTimeout: idle, tls: certificates, onTLSFailure: { reason in
            tlsFailures.add()
            tlsLog.warning("TLS handshake with a client failed: \(reason)")
        }) { [self] in route($0) }
        server.withLock { $0 = s }
        context.logger.info("serving /metrics", metadata: ["listen": "\(certificates != nil ? "https://" : "http://")\(host):\(s.port)",
                                                         "basic_auth": "\(auth != nil)"])
    }

    /// A reload: this sink (not yet started) continues the aggregate `previous` held.
    public func takeOver(from previous: any StageLifecycle) {
        guard let previous = previous as? AggregateHolding else { return }
        aggregate.takeOver(from: previous.aggregate)
    }

    public func shutdown() {
        context.peers.remove(owner: context.owner)
        aggregate.shutdown()
        server.withLock { s in s?.shutdown(); s = nil }
    }

    public func deleteSeries(matching selectors: [SeriesSelector]) -> Int { aggregate.delete(matching: selectors).count }

    public func consume(_ batch: inout Batch, worker: Int) { aggregate.consume(&batch) }

    /// With a state file, a batch is durable once a snapshot holds it (`Snapshotter`).
    public func retain(_ acknowledgement: Acknowledgement) -> Bool { aggregate.retains }

    /// The web config's headers on every answer.
    func route(_ request: HTTPRequest) -> HTTPResponse {
        var response = answer(request)
        if let headers = config.webConfig?.headers { response.headers += headers }
        return response
    }

    /// Basic auth guards `/metrics` and the admin API: `/`, `/ready` and their `/-/`
    /// aliases stay open for liveness and readiness probes, which carry no credentials.
    private func answer(_ request: HTTPRequest) -> HTTPResponse {
        if request.path == "/api/v1/series" { return adminSeries(request) }
        if request.path == "/-/reload" { return reload(request) }
        guard request.method == .GET || request.method == .HEAD else {
            return Self.methodNotAllowed(allow: "GET, HEAD")
        }
        if let a = ProcessEndpoints.answer(path: request.path, health: context.health) { return HTTPResponse(a) }
        switch request.path {
        case "/metrics":
            if let refused = authenticate(request) { return refused }
            let vary = [("Vary", "Accept, Accept-Encoding")]
            guard let format = ExpositionFormat.negotiate(accept: request.accept, enabled: config.formats) else {
                return HTTPResponse(status: .notAcceptable, contentType: "text/plain; charset=utf-8",
                                    body: Array(("none of the formats this sink serves "
                                        + "(\(config.formats.map(\.rawValue).sorted().joined(separator: ", "))) is acceptable\n").utf8),
                                    headers: vary)
            }
            scrapes[ExpositionFormat.allCases.firstIndex(of: format)!].add()
            let body = exposition.render(format)
            if request.acceptsGzip, let zipped = Gzip.compress(body) {
                return HTTPResponse(status: .ok, contentType: format.contentType, body: zipped, gzipped: true, headers: vary)
            }
            return HTTPResponse(status: .ok, contentType: format.contentType, body: body, headers: vary)
        default:
            return Self.notFound
        }
    }

    /// `POST|PUT /-/reload` (`ProcessEndpoints.reload`), behind basic auth when it is on.
    private func reload(_ request: HTTPRequest) -> HTTPResponse {
        if config.enableLifecycle, request.method == .POST || request.method == .PUT, let refused = authenticate(request) { return refused }
        return HTTPResponse(ProcessEndpoints.reload(method: request.method.rawValue, enabled: config.enableLifecycle))
    }

    static func methodNotAllowed(allow: String) -> HTTPResponse {
        HTTPResponse(status: .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: Array("method not allowed\n".utf8),
                headers: [("Allow", allow)])
    }

    static let notFound = HTTPResponse(status: .notFound, contentType: "text/plain; charset=utf-8", body: Array("not found\n".utf8))

    /// nil when the request may proceed, else the 401 to answer.
    private func authenticate(_ request: HTTPRequest) -> HTTPResponse? {
        guard let auth, !auth.allows(authorization: request.authorization) else { return nil }
        unauthorized.add()
        return HTTPResponse(status: .unauthorized, contentType: "text/plain; charset=utf-8", body: Array("Unauthorized\n".utf8),
                            headers: [("WWW-Authenticate", "Basic realm=\"prom-stream-gateway\", charset=\"UTF-8\"")])
    }

    /// `DELETE|POST /api/v1/series?match[]=…`: removes the series any selector selects
    /// and answers, as Prometheus's API does, `{"status":"success","data":…}` with how
    /// many were deleted and (up to 1000 of) which.
    private func adminSeries(_ request: HTTPRequest) -> HTTPResponse {
        guard config.enableAdminAPI else { return Self.notFound }
        guard request.method == .DELETE || request.method == .POST else {
            return Self.methodNotAllowed(allow: "DELETE, POST")
        }
        if let refused = authenticate(request) { return refused }
        func failure(_ status: HTTPResponseStatus, _ message: String) -> HTTPResponse {
            HTTPResponse(status: status, contentType: "application/json",
                         body: Array("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"\(jsonEscape(message))\"}\n".utf8))
        }
        if request.bodyTooLarge { return failure(.payloadTooLarge, "request body larger than \(HTTPHandlerLimits.maxBody) bytes") }
        let texts = request.parameters("match[]")
        guard !texts.isEmpty else { return failure(.badRequest, "no match[] parameter provided") }
        var selectors: [SeriesSelector] = []
        for t in texts {
            do { selectors.append(try SeriesSelector(parsing: t)) } catch { return failure(.badRequest, error.description) }
        }
        let (count, series) = aggregate.delete(matching: selectors)
        // Every other sink of the pipeline too (a remote_write sink's backend would keep getting the series).
        var bySink = [(context.id, count)]
        for p in context.peers.all where p.peer !== self {
            if let other = p.peer as? any SeriesDeleting { bySink.append((p.id, other.deleteSeries(matching: selectors))) }
        }
        context.logger.info("deleted series through the admin API", metadata: ["match": "\(texts)", "deleted": "\(bySink)"])
        let list = series.map { "\"\(jsonEscape($0))\"" }.joined(separator: ",")
        let sinks = bySink.map { "\"\(jsonEscape($0.0))\":\($0.1)" }.joined(separator: ",")
        let body = "{\"status\":\"success\",\"data\":{\"deleted\":\(count),\"series\":[\(list)],\"sinks\":{\(sinks)}}}\n"
        return HTTPResponse(status: .ok, contentType: "application/json", body: Array(body.utf8))
    }
}
