import CHiredis
import Logging
import Pipeline

/// Drains a Redis list that senders `LPUSH` onto.
///
/// **Popping.** One connection, `workers × pipeline` `RPOP key pop_count` requests
/// in flight (pipelined). Redis executes the requests of one connection in order and
/// replies in order, so elements leave this stage in push order however many pops
/// are in flight — several independent connections could not promise that. Request
/// `n` belongs to worker `n mod workers`, the `worker` label of the meta-metrics and
/// the counterpart of the .NET gateway's worker loops. The defaults (25 × 2 × 16)
/// keep the .NET settings' meaning and still move 400 elements per round trip.
/// Elements are parsed straight into a batch of up to `batch_size` elements
/// (`PopReplies`: no `redisReply` per element). Pops are topped up half a window at
/// a time, so one write carries many of them.
///
/// **Empty list.** When a pop comes back empty the source neither spins nor sleeps
/// blindly: on Redis ≥ 7 it blocks in `BLMPOP block_timeout RIGHT key COUNT
/// pop_count`, which returns as soon as something is pushed; on Redis 6.2 it backs
/// off for `empty_backoff`.
///
/// **Outages.** A refused or broken connection (also at start-up) is retried
/// forever with capped exponential back-off and full jitter; it is logged once per
/// outage, `/ready` is 503 meanwhile, and reconnects are counted. A bad password is
/// an outage with a clear message, not a crash. A pop whose reply is lost with the
/// connection is lost with it: plain `RPOP` cannot close that window. A blocked
/// `BLMPOP` ended by Redis closing the connection (a clean shutdown or restart) is
/// not counted as lost: Redis writes a served blocked pop's reply in the same
/// event-loop pass that pops, so a close that brings no reply brought no elements.
///
/// **Ready** means samples can flow: connected, and pops succeed. Pops that keep
/// failing (`WRONGTYPE`, an ACL user without access to the key: `NOPERM`) for
/// longer than `popFailureGrace` make `/ready` 503 with Redis's error, logged once
/// per episode.
///
/// **Stopping.** No new pop is sent; the replies of pops in flight are read and
/// emitted, so nothing taken from Redis is left behind.
public struct RedisListConfig: StageConfig {
    public static let type = "redis_list"
    public static let role = StageRole.source
    public static let summary = "Pops JSON payloads from the tail of a Redis list (RPOP key COUNT, pipelined; BLMPOP when empty)."
    public static let inputKind: ItemKind? = nil
    public static let outputKind: ItemKind? = .payloads
    public static let example = """
        url: "redis://localhost:6379/0"
        key: prom-stream-gateway:metric-queue
        pop_count: 25
        """

    public static let defaultKey = "prom-stream-gateway:metric-queue"
    public static let defaultURL = "redis://localhost:6379/0"
    public static let defaultPopCount = 25
    public static let defaultPopSlots = 2
    public static let defaultPipeline = 16
    public static let defaultBatchSize = 1000
    public static let defaultConnectTimeout = Duration.seconds(2)
    public static let defaultReadTimeout = Duration.seconds(5)
    public static let defaultBlockTimeout = Duration.milliseconds(500)
    public static let defaultEmptyBackoff = Duration.milliseconds(20)
    public static let defaultMaxBackoff = Duration.seconds(1)
    public static let defaultPendingInterval = Duration.seconds(1)
    /// How long pops may keep failing before the source reports not ready.
    public static let popFailureGrace = Duration.seconds(2)

    public var url: RedisURL
    public var key: String
    public var popCount: Int
    /// Pop slots, not threads: the one connection's in-flight pops are numbered
    /// round-robin over them (the `worker` label; the .NET gateway's workers).
    public var workers: Int
    public var pipeline: Int
    public var batchSize: Int
    public var connectTimeout: Duration
    public var readTimeout: Duration
    public var blockTimeout: Duration
    public var emptyBackoff: Duration
    public var maxBackoff: Duration
    public var pendingInterval: Duration

    public init(options o: OptionReader) {
        let raw = o.string("url", default: Self.defaultURL, doc: "redis://[user:password@]host:port[/db], or the .NET form host:port[,password=…][,user=…][,defaultDatabase=N][,name=…] (Redis__ConnectionString).")
        switch RedisURL.parse(raw) {
        case .success(let u): url = u
        case .failure(let e): url = RedisURL(); o.fail("url", e.description)
        }
        let database = o.string("database", default: "", doc: "Database number; overrides the URL's when set (Redis__MetricQueueDatabase).")
        if !database.isEmpty {
            if let n = Int(database), n >= 0 { url.database = n } else { o.fail("database", "must be a non-negative integer, got `\(database)`") }
        }
        key = o.string("key", default: Self.defaultKey, doc: "The list senders LPUSH onto (Redis__MetricQueueKey).")
        if key.isEmpty { o.fail("key", "must not be empty") }
        popCount = o.int("pop_count", default: Self.defaultPopCount, range: 1...100_000, doc: "Elements per RPOP (Redis__MetricQueuePopCount).")
        workers = o.int("workers", default: Self.defaultPopSlots, range: 1...64, doc: "Pop slots, not threads (Redis__MetricQueueWorkers): the one connection keeps up to workers × pipeline RPOPs in flight, numbered round-robin over the slots; the `worker` label of the meta-metrics.")
        pipeline = o.int("pipeline", default: Self.defaultPipeline, range: 1...1024, doc: "RPOP requests each slot keeps in flight; workers × pipeline are pipelined on the one connection.")
        batchSize = o.int("batch_size", default: Self.defaultBatchSize, range: 1...1_000_000, doc: "Emit a batch once it holds this many elements (or when the list runs empty).")
        connectTimeout = o.duration("connect_timeout", default: Self.defaultConnectTimeout, positive: true, doc: "Time-out for establishing a connection.")
        readTimeout = o.duration("read_timeout", default: Self.defaultReadTimeout, positive: true, doc: "Time-out for any reply; must exceed block_timeout.")
        blockTimeout = o.duration("block_timeout", default: Self.defaultBlockTimeout, positive: true, doc: "How long BLMPOP waits on an empty list before the source looks around (stop requests, LLEN).")
        emptyBackoff = o.duration("empty_backoff", default: Self.defaultEmptyBackoff, doc: "Pause after an empty pop on Redis < 7 (no BLMPOP).")
        maxBackoff = o.duration("max_backoff", default: Self.defaultMaxBackoff, positive: true, doc: "Cap of the reconnect back-off (full jitter below it); /ready follows Redis within about this long.")
        pendingInterval = o.duration("pending_interval", default: Self.defaultPendingInterval, positive: true, doc: "How often LLEN is sampled into prom_stream_gateway_redis_queue_pending_size.")
    }

    public func validate() throws {
        guard readTimeout > blockTimeout else {
            throw ConfigError.invalid(key: "read_timeout", reason: "must be longer than block_timeout (\(OptionReader.format(blockTimeout)))")
        }
    }

    public func makeStage(context: StageContext) throws -> Stage {
        .source(RedisListSource(config: self, context: context))
    }
}

public final class RedisListSource: Source {
    let config: RedisListConfig
    let context: StageContext
    let origins: [UInt16]
    let emptyPops: [MetaCounter]
    let reconnects = MetaCounter()
    let errors = MetaCounter()
    let pending = MetaGauge()
    let popped = MetaCounter()
    let lostReplies = MetaCounter()
    private let warnings: RateLimitedLog

    public init(config: RedisListConfig, context: StageContext) {
        self.config = config
        self.context = context
        self.warnings = RateLimitedLog(logger: context.logger, interval: .seconds(5))
        origins = (0..<config.workers).map { context.telemetry.registerOrigin(labels: [("worker", String($0)), ("queueKey", config.key)]) }
        emptyPops = (0..<config.workers).map { _ in MetaCounter() }
        pending.set(.nan)
        let key = config.key
        let (emptyPops, reconnects, errors, pending, popped, lostReplies) = (emptyPops, reconnects, errors, pending, popped, lostReplies)
        let interval = OptionReader.format(config.pendingInterval)
        context.telemetry.addCollector {
            let p = Telemetry.prefix
            let q = [("queueKey", key)]
            return [
                MetaFamily(name: p + "redis_queue_empty_pops_total", help: "Pops that found the queue empty, by pop slot.", type: .counter,
                           samples: emptyPops.enumerated().map { MetaSample(labels: [("worker", String($0.offset)), ("queueKey", key)], value: Double($0.element.value)) }),
                MetaFamily(name: p + "redis_queue_pending_size", help: "Length of the queue (LLEN), sampled every \(interval).", type: .gauge,
                           samples: [MetaSample(labels: q, value: pending.value)]),
                MetaFamily(name: p + "redis_reconnects_total", help: "Connections to Redis re-established after an outage.", type: .counter,
                           samples: [MetaSample(labels: q, value: Double(reconnects.value))]),
                MetaFamily(name: p + "redis_errors_total", help: "Failed Redis commands and connection attempts.", type: .counter,
                           samples: [MetaSample(labels: q, value: Double(errors.value))]),
                MetaFamily(name: p + "redis_popped_elements_total", help: "Queue elements popped from Redis.", type: .counter,
                           samples: [MetaSample(labels: q, value: Double(popped.value))]),
                MetaFamily(name: p + "redis_lost_pop_replies_total", help: "Pops in flight when a connection broke: Redis may have removed their elements, whose replies never arrived.", type: .counter,
                           samples: [MetaSample(labels: q, value: Double(lostReplies.value))]),
            ]
        }
        context.health.set(context.id, ready: false, detail: "connecting to \(config.url)")
    }

    public func run(worker: Int, output: StageOutput, control: SourceControl) {
        var attempt = 0
        var outageLogged = false
        var everConnected = false
        while !control.isStopping {
            let connection: RedisConnection
            let hasBLMPOP: Bool
            do {
                (connection, hasBLMPOP) = try connect()
            } catch {
                errors.add()
                context.health.set(context.id, ready: false, detail: "\(config.url): \(error)")
                if !outageLogged {
                    context.logger.error("cannot reach Redis; retrying with back-off", metadata: ["redis": "\(config.url)", "error": "\(error)"])
                    outageLogged = true
                }
                attempt += 1
                let cap = min(config.maxBackoff.inSeconds, 0.05 * Double(1 << min(attempt, 16)))
                control.sleep(seconds: Double.random(in: cap / 2...cap))   // jitter
                continue
            }
            if everConnected { reconnects.add() }
            everConnected = true
            attempt = 0
            context.health.set(context.id, ready: true, detail: "connected to \(config.url)")
            context.logger.info(outageLogged ? "reconnected to Redis" : "connected to Redis",
                                metadata: ["redis": "\(config.url)", "key": "\(config.key)", "blmpop": "\(hasBLMPOP)"])
            outageLogged = false
            var session = Session(connection: connection, hasBLMPOP: hasBLMPOP, config: config)
            do {
                try drain(&session, output: output, control: control)
                return   // stopped
            } catch {
                errors.add()
                context.health.set(context.id, ready: false, detail: "\(config.url): \(error)")
                context.logger.error("lost Redis connection; reconnecting", metadata: ["redis": "\(config.url)", "error": "\(error)"])
                outageLogged = true
            }
        }
        context.health.set(context.id, ready: false, detail: "stopped")
    }

    private func connect() throws(RedisError) -> (RedisConnection, Bool) {
        let c = try RedisConnection.open(config.url, timeout: config.connectTimeout.inSeconds, readTimeout: config.readTimeout.inSeconds)
        let info = try c.command("INFO", "server").text ?? ""
        let version = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }?.dropFirst("redis_version:".count)
        let major = version.flatMap { Int($0.split(separator: ".").first ?? "") } ?? 0
        return (c, major >= 7)
    }

    /// One connection's state while it drains.
    private struct Session {
        let connection: RedisConnection
        let hasBLMPOP: Bool
        let replies = PopReplies()
        let rpop: [[UInt8]]
        let blmpop: [[UInt8]]
        var nextLLEN: UInt64 = 0
        /// When pops started failing (nil: they succeed), and whether that was logged.
        var failingSince: UInt64?
        var failureReported = false

        init(connection: RedisConnection, hasBLMPOP: Bool, config: RedisListConfig) {
            self.connection = connection
            self.hasBLMPOP = hasBLMPOP
            let key = Array(config.key.utf8), count = Array(String(config.popCount).utf8)
            rpop = [Array("RPOP".utf8), key, count]
            blmpop = [Array("BLMPOP".utf8), Array(String(config.blockTimeout.inSeconds).utf8), Array("1".utf8), key,
                      Array("RIGHT".utf8), Array("COUNT".utf8), count]
        }
    }

    /// Pops until stopped; throws when the connection breaks.
    private func drain(_ s: inout Session, output: StageOutput, control: SourceControl) throws(RedisError) {
        var idle = false   // the last pop found the list empty
        while !control.isStopping {
            if monotonicNanos() >= s.nextLLEN { sampleLength(&s) }
            idle = idle ? try waitForElements(&s, output: output, control: control)
                        : try drainBacklog(&s, output: output, control: control)
        }
    }

    private func sampleLength(_ s: inout Session) {
        do {
            if case .integer(let n) = try s.connection.command("LLEN", config.key) { pending.set(Double(n)) }
        } catch {
            errors.add()   // e.g. WRONGTYPE; the connection itself is checked by the pops
            warnings.warning("LLEN `\(config.key)` failed: \(error)")
        }
        s.nextLLEN = monotonicNanos() + UInt64(config.pendingInterval.inSeconds * 1e9)
    }

    /// Hands the elements collected so far on as one batch.
    private func flush(_ s: Session, output: StageOutput) {
        guard !s.replies.batch.isEmpty else { return }
        popped.add(UInt64(s.replies.batch.count))
        var full = PayloadBatch()
        full.reserve(payloads: config.batchSize, bytes: config.batchSize * 160)
        swap(&full, &s.replies.batch)   // hand the filled buffers on with a single owner
        output.emit(Batch(payloads: full))
    }

    /// Elements appended by a pop reply, or -1 for an error reply (which feeds the
    /// readiness episode).
    private func count(_ outcome: PopReplies.Outcome, _ s: inout Session) throws(RedisError) -> Int {
        switch outcome {
        case .elements(let n):
            popSucceeded(&s)
            return n
        case .error(let message):
            errors.add()
            popFailed(&s, message)
            return -1
        case .unexpected(let what):
            throw .protocolViolation("\(what) in the reply to a pop")
        }
    }

    private func popFailed(_ s: inout Session, _ message: String) {
        let now = monotonicNanos()
        if s.failingSince == nil { s.failingSince = now }
        let grace = UInt64(RedisListConfig.popFailureGrace.inSeconds * 1e9)
        guard now - s.failingSince! >= grace else { return }
        context.health.set(context.id, ready: false, detail: "popping `\(config.key)` fails: \(message)")
        if !s.failureReported {
            context.logger.error("pops keep failing; not ready until they succeed", metadata: ["key": "\(config.key)", "error": "\(message)"])
            s.failureReported = true
        }
    }

    private func popSucceeded(_ s: inout Session) {
        guard s.failingSince != nil else { return }
        if s.failureReported { context.logger.info("pops succeed again", metadata: ["key": "\(config.key)"]) }
        s.failingSince = nil
        s.failureReported = false
        context.health.set(context.id, ready: true, detail: "connected to \(config.url)")
    }

    /// The list is empty: wait in Redis until something is pushed (BLMPOP, or a
    /// pause on Redis < 7). Returns whether the list is still empty.
    private func waitForElements(_ s: inout Session, output: StageOutput, control: SourceControl) throws(RedisError) -> Bool {
        guard s.hasBLMPOP else {
            control.sleep(seconds: config.emptyBackoff.inSeconds)
            return false
        }
        s.connection.append(s.blmpop)
        let got: Int
        do {
            got = try count(s.connection.readPop(into: s.replies, blmpop: true, origin: origins[0]), &s)
        } catch {
            if case .connection = error { lostReplies.add() }   // not `.closed`: see the type's doc
            flush(s, output: output)
            throw error
        }
        flush(s, output: output)
        if got == 0 { emptyPops[0].add() }
        if got < 0 { control.sleep(seconds: 1) }   // e.g. WRONGTYPE: retry, slowly
        return got <= 0
    }

    /// Pops with RPOPs pipelined until a reply comes back short. Pops in flight
    /// grow from `workers` (doubling per full reply) to workers × pipeline: a
    /// backlog is drained with deep pipelining, a trickle costs few empty pops.
    /// Returns whether the list ran empty.
    private func drainBacklog(_ s: inout Session, output: StageOutput, control: SourceControl) throws(RedisError) -> Bool {
        var inFlight = 0, target = config.workers
        let maxInFlight = config.workers * config.pipeline
        var sawEmpty = false, sawError = false, sawShort = false
        var received = 0
        while inFlight < target { s.connection.append(s.rpop); inFlight += 1 }
        while inFlight > 0 {
            let slot = received % config.workers
            received += 1
            let got: Int
            do {
                got = try count(s.connection.readPop(into: s.replies, blmpop: false, origin: origins[slot]), &s)
            } catch {
                lostReplies.add(UInt64(inFlight))
                flush(s, output: output)   // what arrived before the break is kept
                throw error
            }
            inFlight -= 1
            if got < 0 { sawError = true } else if got == 0 { sawEmpty = true; emptyPops[slot].add() }
            if got < config.popCount { sawShort = true }
            if s.replies.batch.count >= config.batchSize { flush(s, output: output) }
            guard !sawShort, !sawError, !control.isStopping, monotonicNanos() < s.nextLLEN else { continue }
            target = min(maxInFlight, target * 2)
            // Top up only once half the window has come back: the pops go out in
            // one write instead of one write (and one Redis wake-up) per reply.
            guard inFlight <= target / 2 else { continue }
            while inFlight < target { s.connection.append(s.rpop); inFlight += 1 }
        }
        flush(s, output: output)
        if sawError { control.sleep(seconds: 1) }   // e.g. WRONGTYPE: retry, slowly
        return sawEmpty
    }
}
