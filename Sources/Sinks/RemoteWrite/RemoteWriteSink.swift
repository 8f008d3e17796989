import Aggregation
import Pipeline
import Synchronization
import TLS
import Transforms
#if canImport(Glibc)
import Glibc
#endif

/// The `remote_write` sink: an `Aggregate` (as the `prometheus` sink's) and a sender
/// thread that, every `interval`, encodes the whole aggregate (`WriteRequestEncoder`),
/// compresses each request with snappy and POSTs it, retrying as `SendOutcome` says.
///
/// Values are cumulative, so a resend is harmless and an outage needs no backlog:
/// a round that cannot finish before the next is due is abandoned, and the next
/// sends the state as it is then. Sending never touches ingestion: it reads the
/// store's copy-on-write snapshot. Series that disappear (expired, or deleted by the
/// admin API) get one staleness marker, after a round that completed.
public final class RemoteWriteSink: Sink, StatefulStage, AggregateHolding, SeriesDeleting {
    public let aggregate: Aggregate
    let config: RemoteWriteConfig
    let context: StageContext
    private let relabel: RelabelTransform?
    private let loop = Mutex<(thread: OSThread, control: SourceControl)?>(nil)
    private let warnings: RateLimitedLog
    /// Only the sender thread uses these.
    private struct SenderState: @unchecked Sendable {
        var client: HTTPClient
        var previous: Set<[UInt8]>?
        var notBefore: Double = 0
        var compressed: [UInt8] = []
    }
    private let sender: Mutex<SenderState>
    /// Series the admin API deleted need staleness markers: label sets are tracked from the first
    /// deletion on (always with expiry); until a tracked round completed, `baseline` holds what
    /// was there before each deletion. Not under `sender`, which a round holds while it sends.
    private struct Removals {
        var tracked = false, baseline: Set<[UInt8]>?
        /// A deletion happened: every round tracks from then on.
        var deleted: Bool { tracked || baseline != nil }
    }
    private let removals = Mutex(Removals())
    private let stats = Stats()

    final class Stats: Sendable {
        let samples = MetaCounter(), histograms = MetaCounter(), stale = MetaCounter(), requests = MetaCounter(), retries = MetaCounter()
        let rawBytes = MetaCounter(), compressedBytes = MetaCounter()
        let lastSuccess = MetaGauge(), duration = MetaGauge(), series = MetaGauge()
        let failed = Mutex<[String: UInt64]>([:])
        func fail(_ reason: String) { failed.withLock { $0[reason, default: 0] += 1 } }
    }

    public init(config: RemoteWriteConfig, context: StageContext) throws {
        self.config = config
        self.context = context
        aggregate = Aggregate(options: config.aggregate, context: context)
        relabel = config.relabel.isEmpty ? nil : RelabelTransform(rules: config.relabel, workers: 1)
        if config.endpoint.https {   // the files are read again at every connection; a start with broken ones fails here
            do { _ = try TLSClientContext(config.tls) } catch {
                throw ConfigError.invalid(key: "tls_config", reason: "\(error)")
            }
        }
        let client = HTTPClient(endpoint: config.endpoint, tls: config.endpoint.https ? config.tls : nil, timeout: config.remoteTimeout.inSeconds)
        sender = Mutex(SenderState(client: client))
        warnings = RateLimitedLog(logger: context.logger, interval: .seconds(10))
        stats.lastSuccess.set(0)
        stats.duration.set(.nan)
        let (stats, id) = (stats, context.id)
        context.addCollector {
            let p = Telemetry.prefix + "remote_write_"
            let sink = [("sink", id)]
            func counter(_ name: String, _ help: String, _ c: MetaCounter) -> MetaFamily {
                MetaFamily(name: p + name, help: help, type: .counter, samples: [MetaSample(labels: sink, value: Double(c.value))])
            }
            func gauge(_ name: String, _ help: String, _ g: MetaGauge) -> MetaFamily {
                MetaFamily(name: p + name, help: help, type: .gauge, samples: [MetaSample(labels: sink, value: g.value)])
            }
            let failed = stats.failed.withLock { $0 }.sorted { $0.key < $1.key }
            return [
                counter("samples_sent_total", "Samples sent and accepted (2xx).", stats.samples),
                counter("histograms_sent_total", "Native histograms sent and accepted (2xx).", stats.histograms),
                counter("stale_markers_sent_total", "Staleness markers sent for series that expired.", stats.stale),
                counter("requests_total", "Requests answered 2xx.", stats.requests),
                counter("retries_total", "Requests sent again after a 5xx, a 429 or no answer.", stats.retries),
                MetaFamily(name: p + "requests_failed_total",
                           help: "Requests that failed, by reason: 5xx, 429, connection (retried); 4xx, other (dropped); "
                           + "abandoned (the round ran out of time, its rest sent with the next).", type: .counter,
                           samples: failed.map { MetaSample(labels: sink + [("reason", $0.key)], value: Double($0.value)) }),
                MetaFamily(name: p + "bytes_total", help: "Request bodies sent, before (uncompressed) and after (compressed) snappy.", type: .counter,
                           samples: [MetaSample(labels: sink + [("stage", "uncompressed")], value: Double(stats.rawBytes.value)),
                                     MetaSample(labels: sink + [("stage", "compressed")], value: Double(stats.compressedBytes.value))]),
                gauge("last_success_timestamp_seconds", "When a round last sent every series (Unix time; 0: never).", stats.lastSuccess),
                gauge("send_duration_seconds", "How long the last round took (encode, compress, send, retries).", stats.duration),
                gauge("series", "Series (and native histograms) the last round sent.", stats.series),
            ]
        }
    }

    public var wantsOrderedInput: Bool { true }

    public func start() throws {
        try aggregate.start()
        context.peers.add(owner: context.owner, id: context.id, self)
        let control = SourceControl()
        let period = config.interval.inSeconds
        let thread = OSThread.spawn(name: "remote-write") { [self] in
            var next = Self.now() + period
            while !control.isStopping {
                control.sleep(seconds: max(0, next - Self.now()))
                if control.isStopping { break }
                round(deadline: next + period, control: control, retrying: true)
                next = max(next + period, Self.now())
            }
            // The last state out before stopping (a restart or reload sends it again anyway): one try per request.
            round(deadline: Self.now() + min(5, config.remoteTimeout.inSeconds), control: nil, retrying: false)
        }
        loop.withLock { $0 = (thread, control) }
        context.logger.info("remote write", metadata: ["url": "\(config.url)", "interval": "\(config.interval)"])
    }

    public func shutdown() {
        context.peers.remove(owner: context.owner)
        if let l = loop.withLock({ l in defer { l = nil }; return l }) {
            l.control.requestStop()
            l.thread.join()
        }
        sender.withLock { $0.client.close() }
        aggregate.shutdown()
    }

    /// The admin API: the series leave the aggregate, and the next round sends their staleness markers.
    public func deleteSeries(matching selectors: [SeriesSelector]) -> Int {
        let before = removals.withLock { $0.tracked } ? nil : aggregate.store.snapshot()
        let n = aggregate.delete(matching: selectors).count
        guard n > 0, let before else { return n }
        var encoder = encoder(tracking: true)
        encoder.encode(before, timestamp: 0) { _ in }
        let sent = encoder.sent ?? []
        removals.withLock { r in r.baseline = r.baseline.map { $0.union(sent) } ?? sent }
        return n
    }

    private func encoder(tracking: Bool) -> WriteRequestEncoder {
        WriteRequestEncoder(externalLabels: config.externalLabels, maxSamplesPerSend: config.maxSamplesPerSend, tracking: tracking,
                            sendNative: config.sendNativeHistograms, sendMetadata: config.sendMetadata)
    }

    public func takeOver(from previous: any StageLifecycle) {
        guard let previous = previous as? AggregateHolding else { return }
        aggregate.takeOver(from: previous.aggregate)
    }

    public func consume(_ batch: inout Batch, worker: Int) {
        if let relabel, batch.kind == .samples { relabel.process(&batch, worker: 0) }
        aggregate.consume(&batch)
    }

    public func retain(_ acknowledgement: Acknowledgement) -> Bool { aggregate.retains }

    static func now() -> Double { Double(wallClockNanos()) / 1e9 }

    /// Sends every series once (one round), until `deadline`.
    func round(deadline: Double, control: SourceControl?, retrying: Bool) {
        let t0 = Self.now()
        let (deletions, baseline) = removals.withLock { ($0.deleted, $0.baseline) }
        let families = aggregate.store.snapshot()
        let tracking = deletions || config.aggregate.limits.expireAfter != nil || !config.aggregate.limits.expireByName.isEmpty
        var encoder = encoder(tracking: tracking)
        let timestamp = Int64(t0 * 1000)
        var complete = true
        var series = 0, stale = 0
        sender.withLock { s in
            if s.notBefore > t0 { complete = false; return }
            let emit = { (r: WriteRequestEncoder.Request) in
                guard complete else { return }
                series += r.samples + r.histograms
                complete = self.send(r, state: &s, deadline: deadline, control: control, retrying: retrying)
            }
            encoder.encode(families, timestamp: timestamp, emit: emit)
            if let previous = baseline.map({ s.previous?.union($0) ?? $0 }) ?? s.previous, let sent = encoder.sent {
                let gone = previous.subtracting(sent)
                stale = gone.count
                encoder.stale(gone, timestamp: timestamp, emit: emit)
            }
            encoder.flush(emit)
            if complete {
                s.previous = encoder.sent
                if tracking { removals.withLock { $0.tracked = true; $0.baseline = nil } }
                stats.stale.add(UInt64(stale))
                stats.lastSuccess.set(Self.now())
            }
        }
        stats.series.set(Double(series))
        stats.duration.set(Self.now() - t0)
    }

    /// One request, retried until it is answered for good or `deadline`; false: give up the round.
    private func send(_ request: WriteRequestEncoder.Request, state s: inout SenderState, deadline: Double, control: SourceControl?,
                      retrying: Bool) -> Bool {
        Snappy.compress(request.body, into: &s.compressed)
        var headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"),
                       ("X-Prometheus-Remote-Write-Version", "0.1.0"), ("User-Agent", "prom-stream-gateway/\(GatewayVersion.current)")]
        headers += config.headers
        guard let auth = authorization(payload: s.compressed, headers: headers) else {
            stats.fail("credentials")
            warnings.warning("remote write: the credentials cannot be read (a file in basic_auth, authorization or the AWS_* environment)")
            return false
        }
        headers += auth
        var backoff = Backoff(min: config.minBackoff.inSeconds, max: config.maxBackoff.inSeconds)
        while true {
            let outcome: SendOutcome
            var body = ""
            do {
                let response = try s.client.post(headers: headers, body: s.compressed)
                outcome = SendOutcome.classify(status: response.status, retryAfter: response.header("retry-after"), retryOn429: config.retryOn429,
                                               now: Self.now())
                let firstLine = String(decoding: response.body.prefix(512), as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
                body = "HTTP \(response.status): \(firstLine)"
            } catch {
                outcome = .retry(reason: "connection", after: nil)
                body = error.description
            }
            switch outcome {
            case .sent:
                stats.requests.add()
                stats.samples.add(UInt64(request.samples))
                stats.histograms.add(UInt64(request.histograms))
                stats.rawBytes.add(UInt64(request.body.count))
                stats.compressedBytes.add(UInt64(s.compressed.count))
                return true
            case .drop(let reason):
                stats.fail(reason)
                warnings.warning("remote write: a request was refused and is dropped (\(request.samples) samples): \(body)")
                return true
            case .retry(let reason, let after):
                stats.fail(reason)
                let delay = after ?? backoff.next()
                let now = Self.now()
                if let after { s.notBefore = now + after }
                guard retrying, let control, now + delay < deadline, !control.isStopping else {
                    stats.fail("abandoned")
                    warnings.warning("remote write: \(body); the rest of this round is left to the next one")
                    return false
                }
                warnings.warning("remote write: \(body); retrying in \((delay * 1000).rounded() / 1000) s")
                stats.retries.add()
                control.sleep(seconds: delay)
                if control.isStopping { return false }
            }
        }
    }

    /// The headers `auth` adds; nil when a credential cannot be read.
    private func authorization(payload: [UInt8], headers: [(String, String)]) -> [(String, String)]? {
        switch config.auth {
        case .none: return []
        case .basic(let user, let password):
            guard let p = password.read() else { return nil }
            return [("Authorization", "Basic " + Base64.encode(Array("\(user):\(p)".utf8)))]
        case .authorization(let type, let credentials):
            guard let c = credentials.read() else { return nil }
            return [("Authorization", "\(type) \(c)")]
        case .sigv4(let settings):
            var key = settings.accessKey, secret = settings.secretKey, token: String?
            if key.isEmpty {
                guard let k = getenv("AWS_ACCESS_KEY_ID"), let sk = getenv("AWS_SECRET_ACCESS_KEY") else { return nil }
                key = String(cString: k); secret = String(cString: sk)
                token = getenv("AWS_SESSION_TOKEN").map { String(cString: $0) }
            }
            let signer = SigV4(accessKey: key, secretKey: secret, sessionToken: token, region: settings.region)
            let signed = headers.filter { $0.0.lowercased() != "user-agent" }
            return signer.sign(method: "POST", host: config.endpoint.hostHeader, target: config.endpoint.target, headers: signed, payload: payload,
                               date: SigV4.amzDate(unixSeconds: Int(Self.now())))
        }
    }
}
