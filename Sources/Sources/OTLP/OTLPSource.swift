import Foundation
import Logging
import NIOHTTP1
import Pipeline
import Synchronization
import Web

/// The `otlp` source: an HTTP server whose handlers decode and map each export
/// (on `threads` pool threads) and queue it; the source's own thread emits the
/// queued exports in order, each as one batch numbered in the stream
/// `otlp:<id>` (`Checkpoints`).
///
/// An export is answered 200 once its batch is durable in every sink below: at
/// once after the aggregate applied it, or after the snapshot that holds it with a
/// `state_file`. A crash before the 200 makes the sender retry (at-least-once from
/// its view: a crash between the snapshot and the answer counts that export twice).
/// A full queue or memory budget answers 429 with `Retry-After` — never an unbounded queue.
public final class OTLPSource: Source, StatefulStage {
    private let config: OTLPConfig
    private let context: StageContext
    private let origin: UInt16
    /// The stream's number, set by `start` (registering replaces the listener, so a
    /// reload's new source must not register while its predecessor still answers).
    private let stream = Mutex<UInt16>(0)
    private let table: Mutex<StreamTable>
    private let server = Mutex<HTTPServer?>(nil)
    private let auth: BasicAuth?
    private let warnings: RateLimitedLog

    private struct Queued: Sendable {
        var batch: SampleBatch
        var drops: [(Int, DropReason)]
        var sequence: UInt64
    }
    private struct Waiting: Sendable {
        var sequence: UInt64
        var respond: HTTPRespond
        var response: HTTPResponse
    }
    private struct Inbox: Sendable {
        var queued: [Queued] = []
        /// Bytes of the queued batches (not yet charged to the memory budget: the run loop emits them).
        var queuedBytes = 0
        var waiting: [Waiting] = []
        var next: UInt64 = 1
        var durable: UInt64 = 0
        var closed = false
    }
    private let inbox = Mutex(Inbox())
    private let wake = NSCondition()

    private let requests = Mutex<[String: UInt64]>([:])   // by status code
    private let points = MetaCounter()
    private let baselines = MetaCounter()

    init(config: OTLPConfig, context: StageContext) {
        self.config = config
        self.context = context
        warnings = RateLimitedLog(logger: context.logger, interval: .seconds(5))
        origin = context.telemetry.registerOrigin(labels: [("source", context.id)])
        table = Mutex(StreamTable(ttl: config.streamTTL, capacity: config.maxStreams))
        auth = config.webConfig.flatMap { $0.users.isEmpty ? nil : BasicAuth(users: $0.users) }
        context.health.set(context.id, ready: false, detail: "starting")
        context.addCollector { [weak self] in self?.metaFamilies() ?? [] }
    }

    private func metaFamilies() -> [MetaFamily] {
        let p = Telemetry.prefix, s = [("source", context.id)]
        return [
            MetaFamily(name: p + "otlp_requests_total", help: "OTLP export requests answered, by HTTP status code.", type: .counter,
                       samples: requests.withLock { $0 }.sorted { $0.key < $1.key }.map {
                           MetaSample(labels: s + [("code", $0.key)], value: Double($0.value))
                       }),
            MetaFamily(name: p + "otlp_points_received_total", help: "OTLP data points received in decodable exports.", type: .counter,
                       samples: [MetaSample(labels: s, value: Double(points.value))]),
            MetaFamily(name: p + "otlp_cumulative_baselines_total",
                       help: "First points of cumulative streams that started before the gateway (or without a start time): nothing added.",
                       type: .counter, samples: [MetaSample(labels: s, value: Double(baselines.value))]),
            MetaFamily(name: p + "otlp_streams", help: "Cumulative streams in the stream table.", type: .gauge,
                       samples: [MetaSample(labels: s, value: Double(table.withLock { $0 }.count))]),
            MetaFamily(name: p + "otlp_pending_requests", help: "Exports accepted and not yet answered (waiting for the pipeline or for durability).",
                       type: .gauge, samples: [MetaSample(labels: s, value: Double(inbox.withLock { $0.waiting.count }))]),
        ]
    }

    /// A reload that rebuilt this source keeps the cumulative streams.
    public func takeOver(from previous: any StageLifecycle) throws {
        guard let previous = previous as? OTLPSource else { return }
        let kept = previous.table.withLock { $0 }
        table.withLock { $0 = kept }
    }

    public var port: Int { server.withLock { $0?.port ?? 0 } }

    public func start() throws {
        // Numbering continues after what the sinks' restored state holds, or after
        // what the previous source of a reload emitted.
        let registration = context.checkpoints.register(stream: "otlp:\(context.id)", source: context.id) { [weak self] through in
            self?.durable(through: through)
        }
        stream.withLock { $0 = registration.stream }
        let first: UInt64 = switch registration.start {
        case .fresh: (context.checkpoints.restored(stream: "otlp:\(context.id)") ?? 0) + 1
        case .continuing(let emitted, _): emitted + 1
        }
        inbox.withLock { $0.next = first; $0.durable = first - 1 }
        guard let (host, port) = ListenAddress.parse(config.listen) else { return }
        var certificates: ServerCertificates?
        if let settings = config.webConfig?.tls {
            do { certificates = try ServerCertificates(settings: settings, logger: context.logger) } catch {
                throw ConfigError.invalid(key: "web_config_file", reason: "\(config.webConfigFile ?? ""): \(error)")
            }
        }
        let c = config.idleTimeout.components
        let tlsLog = RateLimitedLog(logger: context.logger, interval: .seconds(10))
        let s = try HTTPServer(host: host, port: port, idleTimeout: .nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000),
                               tls: certificates, threads: config.threads, maxBody: config.maxRequestBodySize,
                               bodyBudget: BodyBudget(limit: context.memoryBudget.limit),
                               onTLSFailure: { tlsLog.warning("TLS handshake with an OTLP sender failed: \($0)") }) { [weak self] request, respond in
            guard let self else { return respond(HTTPResponse(status: .serviceUnavailable, contentType: "text/plain", body: [])) }
            self.handle(request, respond)
        }
        server.withLock { $0 = s }
        let url = "\(certificates != nil ? "https" : "http")://\(host):\(s.port)/v1/metrics"
        context.health.set(context.id, ready: true, detail: "listening on \(url)")
        context.logger.info("serving OTLP/HTTP", metadata: ["listen": "\(url)", "basic_auth": "\(auth != nil)"])
    }

    public func run(worker: Int, output: StageOutput, control: SourceControl) {
        var lastSweep = monotonicNanos()
        while true {
            wake.lock()
            var taken: [Queued] = []
            while true {
                taken = inbox.withLock { s in defer { s.queued = []; s.queuedBytes = 0 }; return s.queued }
                if !taken.isEmpty || control.isStopping { break }
                _ = wake.wait(until: Date(timeIntervalSinceNow: 0.2))
                if control.isStopping { taken = inbox.withLock { s in defer { s.queued = []; s.queuedBytes = 0 }; return s.queued }; break }
            }
            wake.unlock()
            let stream = self.stream.withLock { $0 }
            // Consecutive exports go on as one batch (their numbers are contiguous) of up to
            // about 2 000 samples: the stages below pay per batch, not per export.
            var i = 0
            while i < taken.count {
                var samples = taken[i].batch
                var drops = taken[i].drops
                let first = taken[i].sequence
                var through = first
                i += 1
                while i < taken.count && samples.count + taken[i].batch.count <= 2000 {
                    let base = samples.count
                    samples.append(contentsOf: taken[i].batch)
                    drops += taken[i].drops.map { ($0.0 + base, $0.1) }
                    through = taken[i].sequence
                    i += 1
                }
                var batch = Batch(samples: samples)
                batch.acknowledgement = Acknowledgement(stream: stream, first: first, through: through)
                for (index, reason) in drops { batch.drop(sample: index, reason: reason) }
                output.emit(batch)
            }
            if monotonicNanos() - lastSweep > 60_000_000_000 {
                table.withLock { $0 }.sweep()
                lastSweep = monotonicNanos()
            }
            if control.isStopping && taken.isEmpty { return }
        }
    }

    /// Stops accepting, answers what becomes durable within 10 s, then closes.
    public func shutdown() {
        inbox.withLock { $0.closed = true }
        let deadline = monotonicNanos() + 10_000_000_000
        while inbox.withLock({ !$0.waiting.isEmpty }) && monotonicNanos() < deadline { usleep(20_000) }
        let left = inbox.withLock { s in defer { s.waiting = [] }; return s.waiting }
        for w in left { answer(w.respond, Self.unavailable(OTLPEncoding.protobuf, "the gateway is stopping", retryAfter: false)) }
        server.withLock { s in s?.shutdown(); s = nil }
        context.health.remove(context.id)
    }

    private func durable(through position: UInt64) {
        let ready = inbox.withLock { s -> [Waiting] in
            s.durable = max(s.durable, position)
            let n = s.waiting.prefix { $0.sequence <= position }.count
            defer { s.waiting.removeFirst(n) }
            return Array(s.waiting.prefix(n))
        }
        for w in ready { answer(w.respond, w.response) }
    }

    private func answer(_ respond: HTTPRespond, _ response: HTTPResponse) {
        var response = response
        if let headers = config.webConfig?.headers { response.headers += headers }
        requests.withLock { $0[String(response.status.code), default: 0] += 1 }
        respond(response)
    }

    private func handle(_ request: HTTPRequest, _ respond: @escaping HTTPRespond) {
        switch OTLPRequestCheck.check(request, auth: auth, limit: config.maxRequestBodySize) {
        case .refuse(let response): return answer(respond, response)
        case .decode(let encoding, let body):
            let export: OTLPExport
            do {
                export = try encoding == .protobuf ? body.withUnsafeBytes { b throws(OTLPProtobuf.Malformed) in try OTLPProtobuf.decode(b) }
                                                   : OTLPJSON.decode(body)
            } catch {
                warnings.warning("an OTLP export is malformed: \(error)")
                return answer(respond, HTTPResponse(status: .badRequest, contentType: encoding.contentType,
                                                    body: encoding.status(code: 3, message: "malformed export: \(error)")))
            }
            points.add(UInt64(export.pointCount))
            accept(export, encoding: encoding, respond: respond)
        }
    }

    private func accept(_ export: OTLPExport, encoding: OTLPEncoding, respond: @escaping HTTPRespond) {
        // Room first: the stream table must not advance for an export answered 429 (its retry would add nothing).
        let estimate = export.pointCount * 256
        let budget = context.memoryBudget
        let admission = inbox.withLock { s in
            OTLPAdmission(closed: s.closed, waiting: s.waiting.count, maxWaiting: config.maxPendingRequests,
                          inFlight: budget.inFlight + s.queuedBytes, bytes: estimate, limit: budget.limit)
        }
        switch admission {
        case .stopping: return answer(respond, Self.unavailable(encoding, "the gateway is stopping", retryAfter: false))
        case .full: return answer(respond, Self.tooMany(encoding))
        case .accept: break
        }
        let mapping = OTLPMapping(promoted: config.resourceAttributes, table: table.withLock { $0 })
        let result = mapping.map(export, origin: origin)
        baselines.add(UInt64(result.baselines))
        if result.rejected > 0 { warnings.warning("OTLP points rejected: \(result.rejected) (\(result.firstRejection ?? ""))") }
        let response = HTTPResponse(status: .ok, contentType: encoding.contentType,
                                    body: encoding.success(rejected: result.rejected, message: result.firstRejection))
        guard !result.samples.records.isEmpty else { return answer(respond, response) }
        let accepted = inbox.withLock { s -> Bool in
            guard !s.closed else { return false }
            let n = s.next
            s.next += 1
            s.waiting.append(Waiting(sequence: n, respond: respond, response: response))
            s.queued.append(Queued(batch: result.samples, drops: result.drops, sequence: n))
            s.queuedBytes += estimate
            return true
        }
        guard accepted else { return answer(respond, Self.unavailable(encoding, "the gateway is stopping", retryAfter: false)) }
        wake.lock(); wake.signal(); wake.unlock()
    }

    static func tooMany(_ e: OTLPEncoding) -> HTTPResponse {
        HTTPResponse(status: .tooManyRequests, contentType: e.contentType,
                     body: e.status(code: 8, message: "the gateway's pipeline is full; retry later"),
                     headers: [("Retry-After", "1")])
    }

    static func unavailable(_ e: OTLPEncoding, _ message: String, retryAfter: Bool) -> HTTPResponse {
        HTTPResponse(status: .serviceUnavailable, contentType: e.contentType, body: e.status(code: 14, message: message),
                     headers: retryAfter ? [("Retry-After", "1")] : [])
    }
}
