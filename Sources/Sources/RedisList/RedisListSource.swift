import CHiredis
import Logging
import Pipeline

/// Drains a Redis list that senders `LPUSH` onto (SPEC §7).
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
/// connection is lost with it: plain `RPOP` cannot close that window.
///
/// **Stopping.** No new pop is sent; the replies of pops in flight are read and
/// emitted, so nothing taken from Redis is left behind.
public struct RedisListConfig: StageConfig {
    public static let type = "redis_list"
    public static let role = StageRole.source
    public static let summary = "Pops JSON payloads from the tail of a Redis list (RPOP key COUNT, pipelined; BLMPOP when empty)."
    public static let inputKind: ItemKind? = nil
    public static let outputKind: ItemKind? = .payloads

    public var url: RedisURL
    public var key: String
    public var popCount: Int
    public var workers: Int
    public var pipeline: Int
    public var batchSize: Int
    public var connectTimeout: Duration
    public var readTimeout: Duration
    public var blockTimeout: Duration
    public var emptyBackoff: Duration
    public var maxBackoff: Duration
    public var pendingInterval: Duration
    var urlError: String?

    public static let defaultKey = "prom-stream-gateway:metric-queue"

    public init(options o: OptionReader) {
        let raw = o.string("url", default: "redis://localhost:6379/0", doc: "redis://[user:password@]host:port[/db], or the .NET form host:port[,password=…][,user=…][,defaultDatabase=N].")
        switch RedisURL.parse(raw) {
        case .success(let u): url = u; urlError = nil
        case .failure(let e): url = RedisURL(); urlError = e.description
        }
        let database = o.string("database", default: "", doc: "Database number; overrides the URL's when set (Redis__MetricQueueDatabase).")
        if !database.isEmpty {
            if let n = Int(database), n >= 0 { url.database = n } else { urlError = "database must be a non-negative integer, got `\(database)`" }
        }
        key = o.string("key", default: Self.defaultKey, doc: "The list senders LPUSH onto.")
        popCount = o.int("pop_count", default: 25, range: 1...100_000, doc: "Elements per RPOP (Redis__MetricQueuePopCount).")
        workers = o.int("workers", default: 2, range: 1...64, doc: "Pop workers (Redis__MetricQueueWorkers): the `worker` label of the meta-metrics.")
        pipeline = o.int("pipeline", default: 16, range: 1...1024, doc: "RPOP requests each worker keeps in flight; workers × pipeline are pipelined on the one connection.")
        batchSize = o.int("batch_size", default: 1000, range: 1...1_000_000, doc: "Emit a batch once it holds this many elements (or when the list runs empty).")
        connectTimeout = o.duration("connect_timeout", default: .seconds(2), doc: "Time-out for establishing a connection.")
        readTimeout = o.duration("read_timeout", default: .seconds(5), doc: "Time-out for any reply; must exceed block_timeout.")
        blockTimeout = o.duration("block_timeout", default: .milliseconds(500), doc: "How long BLMPOP waits on an empty list before the source looks around (stop requests, LLEN).")
        emptyBackoff = o.duration("empty_backoff", default: .milliseconds(20), doc: "Pause after an empty pop on Redis < 7 (no BLMPOP).")
        maxBackoff = o.duration("max_backoff", default: .seconds(1), doc: "Cap of the reconnect back-off (full jitter below it); /ready follows Redis within about this long.")
        pendingInterval = o.duration("pending_interval", default: .seconds(1), doc: "How often LLEN is sampled into prom_stream_gateway_redis_queue_pending_size.")
    }

    public func validate() throws {
        if let urlError { throw ConfigError.invalid(key: "url", reason: urlError) }
        guard !key.isEmpty else { throw ConfigError.invalid(key: "key", reason: "must not be empty") }
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
        origins = (0..<config.workers).map { context.telemetry.registerOrigin(worker: String($0), queueKey: config.key) }
        emptyPops = (0..<config.workers).map { _ in MetaCounter() }
        pending.set(.nan)
        let key = config.key
        let (emptyPops, reconnects, errors, pending, popped, lostReplies) = (emptyPops, reconnects, errors, pending, popped, lostReplies)
        context.telemetry.addCollector {
            let p = Telemetry.prefix
            let q = [("queueKey", key)]
            return [
                MetaFamily(name: p + "redis_queue_empty_pops_total", help: "Pops that found the queue empty, by in-flight slot.", type: .counter,
                           samples: emptyPops.enumerated().map { MetaSample(labels: [("worker", String($0.offset)), ("queueKey", key)], value: Double($0.element.value)) }),
                MetaFamily(name: p + "redis_queue_pending_size", help: "Length of the queue (LLEN), sampled every second.", type: .gauge,
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
            do {
                try drain(connection, hasBLMPOP: hasBLMPOP, output: output, control: control)
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
        let c = try RedisConnection(host: config.url.host, port: config.url.port,
                                    timeout: config.connectTimeout.inSeconds, readTimeout: config.readTimeout.inSeconds)
        if let password = config.url.password {
            do {
                if let user = config.url.user { try c.command("AUTH", user, password) } else { try c.command("AUTH", password) }
            } catch {
                throw .reply("authentication failed (\(error)); check the user and password in the Redis URL")
            }
        }
        if config.url.database != 0 { try c.command("SELECT", String(config.url.database)) }
        let info = try c.command("INFO", "server").text ?? ""
        let version = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }?.dropFirst("redis_version:".count)
        let major = version.flatMap { Int($0.split(separator: ".").first ?? "") } ?? 0
        return (c, major >= 7)
    }

    /// Pops until stopped; throws when the connection breaks.
    private func drain(_ c: RedisConnection, hasBLMPOP: Bool, output: StageOutput, control: SourceControl) throws(RedisError) {
        let key = Array(config.key.utf8)
        let rpop: [[UInt8]] = [Array("RPOP".utf8), key, Array(String(config.popCount).utf8)]
        let blockSeconds = String(config.blockTimeout.inSeconds)
        let blmpop: [[UInt8]] = [Array("BLMPOP".utf8), Array(blockSeconds.utf8), Array("1".utf8), key, Array("RIGHT".utf8),
                                 Array("COUNT".utf8), Array(String(config.popCount).utf8)]
        let replies = PopReplies()
        var nextLLEN: UInt64 = 0

        func flush() {
            guard !replies.batch.isEmpty else { return }
            popped.add(UInt64(replies.batch.count))
            var full = PayloadBatch()
            full.reserve(payloads: config.batchSize, bytes: config.batchSize * 160)
            swap(&full, &replies.batch)   // hand the filled buffers on with a single owner
            output.emit(Batch(payloads: full))
        }

        /// Elements appended by a pop reply, or -1 for an error reply (counted and
        /// logged, rate-limited).
        func count(_ outcome: PopReplies.Outcome) throws(RedisError) -> Int {
            switch outcome {
            case .elements(let n):
                return n
            case .error(let message):
                errors.add()
                warnings.warning("Redis error popping `\(config.key)`: \(message)")
                return -1
            case .unexpected(let what):
                throw .protocolViolation("\(what) in the reply to a pop")
            }
        }

        var idle = false   // the last pop found the list empty
        while !control.isStopping {
            if monotonicNanos() >= nextLLEN {
                do {
                    if case .integer(let n) = try c.command("LLEN", config.key) { pending.set(Double(n)) }
                } catch .reply(let message) {
                    errors.add()   // e.g. WRONGTYPE; the connection itself is fine
                    warnings.warning("LLEN `\(config.key)` failed: \(message)")
                }
                nextLLEN = monotonicNanos() + UInt64(config.pendingInterval.inSeconds * 1e9)
            }
            if idle {
                // Wait in Redis until something is pushed (or the block times out).
                guard hasBLMPOP else {
                    control.sleep(seconds: config.emptyBackoff.inSeconds)
                    idle = false
                    continue
                }
                c.append(blmpop)
                let got: Int
                do {
                    got = try count(c.readPop(into: replies, blmpop: true, origin: origins[0]))
                } catch {
                    if case .connection = error { lostReplies.add() }
                    flush()
                    throw error
                }
                flush()
                if got == 0 { emptyPops[0].add() }
                if got < 0 { control.sleep(seconds: 1) }
                idle = got <= 0
                continue
            }
            // Pops in flight grow from `workers` (doubling per full reply) to
            // workers × pipeline, and stop at the first reply that is not full: a
            // backlog is drained with deep pipelining, a trickle costs few empty pops.
            var inFlight = 0, target = config.workers
            let maxInFlight = config.workers * config.pipeline
            var sawEmpty = false, sawError = false, sawShort = false
            var received = 0
            while inFlight < target { c.append(rpop); inFlight += 1 }
            while inFlight > 0 {
                let slot = received % config.workers
                received += 1
                let got: Int
                do {
                    got = try count(c.readPop(into: replies, blmpop: false, origin: origins[slot]))
                } catch {
                    lostReplies.add(UInt64(inFlight))
                    flush()   // what arrived before the break is kept
                    throw error
                }
                inFlight -= 1
                if got < 0 { sawError = true } else if got == 0 { sawEmpty = true; emptyPops[slot].add() }
                if got < config.popCount { sawShort = true }
                if replies.batch.count >= config.batchSize { flush() }
                guard !sawShort, !sawError, !control.isStopping, monotonicNanos() < nextLLEN else { continue }
                target = min(maxInFlight, target * 2)
                // Top up only once half the window has come back: the pops go out in
                // one write instead of one write (and one Redis wake-up) per reply.
                guard inFlight <= target / 2 else { continue }
                while inFlight < target { c.append(rpop); inFlight += 1 }
            }
            flush()
            if sawError { control.sleep(seconds: 1) }   // e.g. WRONGTYPE: retry, slowly
            idle = sawEmpty
        }
    }
}
