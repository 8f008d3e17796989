import Logging
import NIOCore
import NIOHTTP1
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
    public static let defaultSummaryMaxAge = Duration.seconds(600)
    public static let defaultSummaryAgeBuckets = 5
    public static let defaultIdleTimeout = Duration.seconds(60)

    /// HOST:PORT the HTTP server listens on.
    public var listen: String
    /// Hide the gateway's own metrics except `prom_stream_gateway_info`.
    public var disableMetaMetrics: Bool
    /// Summary quantile window and its age buckets.
    public var summaryMaxAge: Duration
    public var summaryAgeBuckets: Int
    /// Close HTTP connections idle this long.
    public var idleTimeout: Duration
    /// Series caps and expiry.
    public var limits = SeriesLimits()
    /// Where the aggregate survives restarts (nil: it does not).
    public var stateFile: String?
    /// `state: redis`: per-shard state next to a group-mode source's shards.
    public var stateInRedis = false
    public var snapshotInterval: Duration
    public static let defaultSnapshotInterval = Duration.seconds(5)
    /// The exporter-toolkit web config (TLS, basic auth, headers); nil: plain HTTP, open.
    public var webConfigFile: String?
    public var webConfig: WebConfig?
    /// `DELETE`/`POST /api/v1/series?match[]=…` (Prometheus's `--web.enable-admin-api`).
    public var enableAdminAPI: Bool
    /// `POST /-/reload` (Prometheus's `--web.enable-lifecycle`).
    public var enableLifecycle: Bool
    /// What `/metrics` may answer in (negotiated from `Accept`).
    public var formats: Set<ExpositionFormat> = Set(ExpositionFormat.allCases)
    /// Histogram names (globs, first match wins) also kept as native histograms.
    public var nativeHistograms: [(pattern: String, options: NativeHistogramOptions)] = []

    /// The web config as read: a reload that changes only that file rebuilds the sink.
    public var externalFingerprint: String {
        guard let w = webConfig else { return "" }
        let users = w.users.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
        return "\(String(describing: w.tls))\u{0}\(users)\u{0}\(w.headers.map { "\($0.0):\($0.1)" })"
    }

    public init(options o: OptionReader) {
        listen = o.string("listen", default: Self.defaultListen, doc: "HOST:PORT for /metrics, /ready and /.")
        if Self.parseListen(listen) == nil {
            o.fail("listen", "expected HOST:PORT with a port from 0 to 65535, got `\(listen)`")
        }
        disableMetaMetrics = o.bool("disable_meta_metrics", default: false, doc:
            "Hide every prom_stream_gateway_* metric except prom_stream_gateway_info (Metrics__DisableMetaMetrics).")
        summaryMaxAge = o.duration("summary_max_age", default: Self.defaultSummaryMaxAge, positive: true, doc:
            "Sliding window over which summary quantiles are computed.")
        summaryAgeBuckets = o.int("summary_age_buckets", default: Self.defaultSummaryAgeBuckets, range: 1...1000, doc:
            "Buckets the summary window is divided into; one expires at a time.")
        idleTimeout = o.duration("idle_timeout", default: Self.defaultIdleTimeout, positive: true, doc: "Close HTTP connections idle this long.")
        limits.maxSeries = o.int("max_series", default: 0, range: 0...Int.max, doc:
            "Most series overall (0: no limit); samples that would create more are dropped as `series_limit`.")
        limits.maxSeriesPerMetric = o.int("max_series_per_metric", default: 0, range: 0...Int.max, doc:
            "Most series per metric name (0: no limit), also `series_limit`.")
        let state = o.optionalString("state_file", doc:
            "File the aggregate is kept in across restarts and crashes (written every snapshot_interval and at shutdown, atomically); with a "
            + "reliable redis_list in front, exactly-once (Metrics__StateFile). Unset: nothing survives a restart.")
        stateFile = state?.isEmpty == true ? nil : state
        let where_ = o.string("state", default: "", doc:
            "redis: keep the aggregate per shard in Redis (key:{s}:state) for a group-mode redis_list source (shards, group) — what lets another "
            + "gateway of the group continue a shard exactly. Empty: state_file, or nothing.")
        switch where_ {
        case "": stateInRedis = false
        case "redis": stateInRedis = true
        default: stateInRedis = false; o.fail("state", "expected redis or nothing, got `\(where_)`")
        }
        if stateInRedis && stateFile != nil { o.fail("state", "give state: redis or state_file, not both") }
        snapshotInterval = o.duration("snapshot_interval", default: Self.defaultSnapshotInterval, positive: true, doc:
            "How often the state file is written (Metrics__SnapshotInterval); elements are removed from the processing list only once a snapshot "
            + "holds them.")
        let web = o.string("web_config_file", default: "", doc:
            "exporter-toolkit web config: tls_server_config (TLS, mTLS), basic_auth_users (bcrypt) on /metrics, http_server_config.headers "
            + "(`gateway run --web.config.file`, GATEWAY_WEB_CONFIG_FILE). Empty: plain HTTP, no auth.")
        if !web.isEmpty {
            webConfigFile = web
            switch WebConfig.load(path: web) {
            case .success(let c): webConfig = c
            case .failure(let problems):
                for p in problems.list { o.fail("web_config_file", "\(web)\(p.line.map { ":\($0)" } ?? ""): \(p.message)") }
            }
        }
        enableAdminAPI = o.bool("enable_admin_api", default: false, doc:
            "Serve DELETE/POST /api/v1/series?match[]=SELECTOR, which removes the selected series (`gateway run --web.enable-admin-api`, "
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
        for (pattern, r) in o.namedSections("native_histograms", doc:
            "Histogram-name glob (`*`, `?`; first match wins) to native-histogram options {schema: -4…8 (default 3) or bucket_factor (> 1, "
            + "client_golang's), zero_threshold (default 2^-128), max_buckets (default 160; 0: no limit)}: such histograms are also kept as native "
            + "histograms (served in protobuf), and their samples may come without `buckets`. E.g. {\"*_seconds\": {schema: 3}}.") {
            var n = NativeHistogramOptions()
            n.schema = r.int("schema", default: NativeHistogramOptions.defaultSchema, range: -4...8, doc:
                "Resolution: bucket boundaries are powers of 2^(2^-schema).")
            let factor = r.double("bucket_factor", default: 0, doc:
                "Instead of schema, client_golang's NativeHistogramBucketFactor: the largest growth from one bucket to the next (> 1, e.g. 1.1 → "
                + "schema 3).")
            if factor != 0 {
                if r.node("schema") != nil { r.fail("bucket_factor", "give schema or bucket_factor, not both") }
                if let schema = NativeHistogramOptions.schema(bucketFactor: factor) { n.schema = schema } else { r.fail("bucket_factor", "must be a number > 1, got \(factor)") }
            }
            n.zeroThreshold = r.double("zero_threshold", default: NativeHistogramOptions.defaultZeroThreshold, doc:
                "Observations within ±this count in the zero bucket.")
            if !(n.zeroThreshold >= 0 && n.zeroThreshold.isFinite) { r.fail("zero_threshold", "must be a finite number >= 0") }
            n.maxBuckets = r.int("max_buckets", default: NativeHistogramOptions.defaultMaxBuckets, range: 0...1_000_000, doc:
                "Populated buckets per series before the resolution halves (0: no limit — then a sender spreading values over the whole double "
                + "range can grow one series to ~2 100 × 2^schema buckets per sign).")
            r.finishReading()
            o.merge(r)
            nativeHistograms.append((pattern, n))
        }
        let expire = o.duration("expire_after", default: .zero, doc:
            "Remove series not updated for this long (0: never, as the .NET gateway). An expired counter restarts from zero.")
        limits.expireAfter = expire > .zero ? expire : nil
        for (pattern, text) in o.stringMap("expire_after_by_name", doc:
            "Metric-name glob (`*`, `?`) to expiry, first match wins, e.g. {\"lambda_*\": 10m}; overrides expire_after.") {
            if let d = OptionReader.parseDuration(text) { limits.expireByName.append((pattern, d)) } else {
                o.fail("expire_after_by_name", "expected a duration for `\(pattern)`, got `\(text)`")
            }
        }
    }

    /// Port 0 (any free port) is never shared.
    public var exclusiveResources: [(key: String, resource: String)] {
        guard let (_, port) = Self.parseListen(listen), port != 0 else { return [] }
        return [("listen", "TCP port \(port)")]
    }

    /// Splits `HOST:PORT` (`[::1]:9091` for IPv6).
    public static func parseListen(_ s: String) -> (host: String, port: Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    public var needsRedelivery: Bool { stateFile != nil || stateInRedis }
    public var keepsShardState: Bool { stateInRedis }

    public func makeStage(context: StageContext) throws -> Stage {
        .sink(PrometheusSink(config: self, context: context))
    }
}

public final class PrometheusSink: Sink, StatefulStage {
    public let store: MetricStore
    public let exposition: Exposition
    let config: PrometheusSinkConfig
    let context: StageContext
    /// The apply lock: the series-key buffer and what was applied (consume is
    /// serialised anyway; a snapshot takes it to see no half-applied batch).
    private struct ApplyState { var scratch: [UInt8] = []; var applied = Snapshotter.Applied() }
    private let applying = Mutex(ApplyState())
    let snapshotter: Snapshotter?
    let sharded: ShardedState?
    private let server = Mutex<HTTPServer?>(nil)
    private let sweeper = Mutex<(thread: OSThread, control: SourceControl)?>(nil)
    private let expired = MetaCounter()
    private let auth: BasicAuth?
    private let tlsFailures = MetaCounter()
    private let unauthorized = MetaCounter()
    /// `/metrics` answers, by format (`ExpositionFormat.allCases` order).
    private let scrapes = ExpositionFormat.allCases.map { _ in MetaCounter() }

    public var wantsOrderedInput: Bool { true }

    public init(config: PrometheusSinkConfig, context: StageContext) {
        self.config = config
        self.context = context
        let store = MetricStore(summaryMaxAge: config.summaryMaxAge, summaryAgeBuckets: config.summaryAgeBuckets, limits: config.limits,
                                nativeHistograms: config.nativeHistograms)
        self.store = store
        auth = config.webConfig.flatMap { $0.users.isEmpty ? nil : BasicAuth(users: $0.users) }
        snapshotter = config.stateFile.map { Snapshotter(path: $0, interval: config.snapshotInterval, store: store, context: context) }
        sharded = config.stateInRedis ? ShardedState(store: store, context: context, interval: config.snapshotInterval) : nil
        let telemetry = context.telemetry
        let disabled = config.disableMetaMetrics
        let expiredCounter = expired
        let (tlsFailures, unauthorized, web, scrapes) = (tlsFailures, unauthorized, config.webConfig, scrapes)
        let (health, maxSeries) = (context.health, config.limits.maxSeries)
        self.exposition = Exposition(store: store) {
            var families = [MetaFamily(name: Telemetry.prefix + "info", help: Self.infoHelp, type: .gauge,
                                       samples: [MetaSample(labels: [("version", GatewayVersion.current)], value: 1)])]
            guard !disabled else { return families }
            families.append(MetaFamily(name: Telemetry.prefix + "series", help: "Series held by the aggregator, by metric type.", type: .gauge,
                                       samples: MetricType.allCases.map { MetaSample(labels: [("type", $0.name)], value: Double(store.seriesCount($0))) }))
            families.append(MetaFamily(name: Telemetry.prefix + "series_expired_total", help: "Series removed by expire_after.", type: .counter,
                                       samples: [MetaSample(labels: [], value: Double(expiredCounter.value))]))
            families.append(MetaFamily(name: Telemetry.prefix + "config_last_reload_successful", help: "Whether the last reload of the pipeline file (SIGHUP, POST /-/reload) succeeded.", type: .gauge,
                                       samples: [MetaSample(labels: [], value: ReloadSignal.lastSuccessful.load(ordering: .acquiring) ? 1 : 0)]))
            families.append(MetaFamily(name: Telemetry.prefix + "config_last_reload_success_timestamp_seconds", help: "When the pipeline was last (re)loaded successfully (Unix time).", type: .gauge,
                                       samples: [MetaSample(labels: [], value: Double(ReloadSignal.lastSuccessSeconds.load(ordering: .acquiring)))]))
            families.append(MetaFamily(name: Telemetry.prefix + "ready", help: "1 when samples can flow from the source (connected, pops succeed), else 0: what /ready answers, per source.", type: .gauge,
                                       samples: health.snapshot.map { MetaSample(labels: [("source", $0.id)], value: $0.ready ? 1 : 0) }))
            families.append(MetaFamily(name: Telemetry.prefix + "http_scrapes_total", help: "Answers to /metrics, by the format negotiated from the request's Accept header.", type: .counter,
                                       samples: ExpositionFormat.allCases.enumerated().map { MetaSample(labels: [("format", $0.element.rawValue)], value: Double(scrapes[$0.offset].value)) }))
            if maxSeries > 0 {
                families.append(MetaFamily(name: Telemetry.prefix + "series_limit", help: "max_series: samples that would create more series are dropped as series_limit.", type: .gauge,
                                           samples: [MetaSample(labels: [], value: Double(maxSeries))]))
            }
            if web?.tls != nil {
                families.append(MetaFamily(name: Telemetry.prefix + "http_tls_handshake_failures_total", help: "HTTPS connections whose TLS handshake or session failed (a wrong CA, no client certificate, plain HTTP to the TLS port).", type: .counter,
                                           samples: [MetaSample(labels: [], value: Double(tlsFailures.value))]))
            }
            if web?.users.isEmpty == false {
                families.append(MetaFamily(name: Telemetry.prefix + "http_unauthorized_requests_total", help: "Requests for /metrics answered 401 (missing or wrong basic-auth credentials).", type: .counter,
                                           samples: [MetaSample(labels: [], value: Double(unauthorized.value))]))
            }
            families += telemetry.collect()
            return families
        }
        sharded?.bind { [unowned self] body in applying.withLock { a in body(a.applied.positions) } }
    }

    static let infoHelp = "prom-stream-gateway drains samples that short-lived workloads LPUSH as JSON onto a Redis list, aggregates counters, gauges, histograms and summaries, and serves them here for Prometheus to scrape. Always 1; the version label says which build runs."

    /// The bound HTTP port (after `start`).
    public var port: Int { server.withLock { $0?.port ?? 0 } }

    public func start() throws {
        guard let (host, port) = PrometheusSinkConfig.parseListen(config.listen) else { return }
        let handed = adopted.withLock { a in defer { a = nil }; return a }
        if let handed {
            if let snapshotter {
                snapshotter.adopt(handed) { [self] in takeSnapshot() }
            } else {
                store.restore(handed)
            }
            context.logger.info("kept the aggregate across the reload", metadata: ["series": "\(handed.seriesCount)"])
        } else if let snapshotter {
            snapshotter.load()
        }
        snapshotter?.startLoop { [self] in takeSnapshot() }
        if let sharded {
            context.checkpoints.shards.setHolder(sharded)
            sharded.startLoop()
        }
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
        if config.limits.expireAfter != nil || !config.limits.expireByName.isEmpty {
            let control = SourceControl()
            let shortest = ([config.limits.expireAfter].compactMap { $0 } + config.limits.expireByName.map(\.after)).min() ?? .seconds(1)
            let period = min(1.0, max(0.01, shortest.inSeconds / 4))
            let thread = OSThread.spawn(name: "expiry") { [store, expired] in
                while !control.isStopping {
                    expired.add(UInt64(store.sweep()))
                    control.sleep(seconds: period)
                }
            }
            sweeper.withLock { $0 = (thread, control) }
        }
    }

    /// A reload hands the previous sink's aggregate to this one (before `start`).
    private let adopted = Mutex<StoreState?>(nil)

    /// After the previous pipeline stopped (its final snapshot written): its
    /// aggregate and the stream positions it holds, for the sink that replaces it.
    func handOver() -> StoreState {
        let (captured, applied) = applying.withLock { a in (store.captureFamilies(), a.applied) }
        var state = MetricStore.state(of: captured)
        if let snapshotter {
            state.positions = snapshotter.positions(applied)
        } else {
            state.positions = applied.positions.compactMap { stream, through in
                context.checkpoints.streamName(stream).map { ($0, through) }
            }.sorted { $0.stream < $1.stream }
        }
        return state
    }

    /// A reload: this sink (not yet started) continues `previous` (stopped, its
    /// final snapshot written): its aggregate, whatever options changed, as a
    /// restart with its state file would, and the stream positions its state file
    /// records. The runtime's `Checkpoints` already hold the live positions.
    public func takeOver(from previous: any StageLifecycle) {
        guard let previous = previous as? PrometheusSink else { return }
        adopted.withLock { $0 = previous.handOver() }
        if let sharded, let before = previous.sharded { sharded.adopt(before) }
    }

    /// The store and the positions it holds: copied under the apply lock (cheap,
    /// copy-on-write), laid out for the file after it.
    func takeSnapshot() -> (StoreState, Snapshotter.Applied) {
        let t0 = monotonicNanos()
        let (captured, applied) = applying.withLock { a in (store.captureFamilies(), a.applied) }
        snapshotter?.recordCapture(seconds: Double(monotonicNanos() - t0) / 1e9)
        return (MetricStore.state(of: captured), applied)
    }

    public func shutdown() {
        snapshotter?.stop { [self] in takeSnapshot() }
        if let sharded {
            sharded.stop()
            context.checkpoints.shards.removeHolder(sharded)
        }
        if let s = sweeper.withLock({ s in defer { s = nil }; return s }) {
            s.control.requestStop()
            s.thread.join()
        }
        server.withLock { s in s?.shutdown(); s = nil }
    }

    public func consume(_ batch: inout Batch, worker: Int) {
        guard batch.kind == .samples || sharded != nil else { return }
        applying.withLock { a in
            if let sharded, !sharded.admit(&batch) { return }
            guard batch.kind == .samples else { return }
            store.apply(&batch, scratch: &a.scratch)
            a.applied.changes &+= 1
            if let ack = batch.acknowledgement, ack.through >= ack.first {
                a.applied.positions[ack.stream] = max(a.applied.positions[ack.stream] ?? 0, ack.through)
            }
        }
        FaultInjection.point("after_apply")
    }

    /// With a state file, a batch is durable once a snapshot holds it (`Snapshotter`).
    public func retain(_ acknowledgement: Acknowledgement) -> Bool {
        snapshotter != nil || sharded != nil
    }

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
        switch request.path {
        case "/metrics":
            if let refused = authenticate(request) { return refused }
            let vary = [("Vary", "Accept, Accept-Encoding")]
            guard let format = ExpositionFormat.negotiate(accept: request.accept, enabled: config.formats) else {
                return HTTPResponse(status: .notAcceptable, contentType: "text/plain; charset=utf-8",
                                    body: Array("none of the formats this sink serves (\(config.formats.map(\.rawValue).sorted().joined(separator: ", "))) is acceptable\n".utf8),
                                    headers: vary)
            }
            scrapes[ExpositionFormat.allCases.firstIndex(of: format)!].add()
            let body = exposition.render(format)
            if request.acceptsGzip, let zipped = Gzip.compress(body) {
                return HTTPResponse(status: .ok, contentType: format.contentType, body: zipped, gzipped: true, headers: vary)
            }
            return HTTPResponse(status: .ok, contentType: format.contentType, body: body, headers: vary)
        case "/", "/-/healthy":
            return HTTPResponse(status: .ok, contentType: "text/plain; charset=utf-8", body: Array("ok".utf8))
        case "/ready", "/-/ready":
            let entries = context.health.snapshot
            let ready = entries.allSatisfy(\.ready)
            let sources = entries.map { "\"\(jsonEscape($0.id))\":{\"ready\":\($0.ready),\"detail\":\"\(jsonEscape($0.detail))\"}" }
            let body = "{\"ready\":\(ready),\"sources\":{\(sources.joined(separator: ","))}}\n"
            return HTTPResponse(status: ready ? .ok : .serviceUnavailable, contentType: "application/json", body: Array(body.utf8))
        default:
            return Self.notFound
        }
    }

    /// `POST|PUT /-/reload`: the file is checked at once (400 with its errors when it
    /// does not validate, as the running pipeline stays); when it does, 200 and the
    /// pipeline is replaced right after — this answer cannot wait for that, since
    /// the reload restarts the server that sends it.
    private func reload(_ request: HTTPRequest) -> HTTPResponse {
        guard config.enableLifecycle else { return Self.notFound }
        guard request.method == .POST || request.method == .PUT else {
            return Self.methodNotAllowed(allow: "POST, PUT")
        }
        if let refused = authenticate(request) { return refused }
        switch ReloadSignal.request() {
        case .accepted(let what):
            return HTTPResponse(status: .ok, contentType: "text/plain; charset=utf-8", body: Array("\(what)\n".utf8))
        case .refused(let errors):
            return HTTPResponse(status: .badRequest, contentType: "text/plain; charset=utf-8",
                                body: Array(("the pipeline file does not validate; the running pipeline stays:\n" + errors.joined(separator: "\n") + "\n").utf8))
        case .unavailable:
            return HTTPResponse(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8", body: Array("reloading is not available\n".utf8))
        }
    }

    static func methodNotAllowed(allow: String) -> HTTPResponse {
        HTTPResponse(status: .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: Array("method not allowed\n".utf8), headers: [("Allow", allow)])
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
        let (count, series) = applying.withLock { _ in store.delete(matching: selectors) }
        context.logger.info("deleted series through the admin API", metadata: ["match": "\(texts)", "deleted": "\(count)"])
        let list = series.map { "\"\(jsonEscape($0))\"" }.joined(separator: ",")
        let body = "{\"status\":\"success\",\"data\":{\"deleted\":\(count),\"series\":[\(list)]}}\n"
        return HTTPResponse(status: .ok, contentType: "application/json", body: Array(body.utf8))
    }
}
