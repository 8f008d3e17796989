import CHiredis
import Logging
import Pipeline
import Redis
import Synchronization
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// Drains a Redis list that senders `LPUSH` onto.
///
/// **Popping.** One connection, `workers × pipeline` `RPOP key pop_count` requests
/// in flight (pipelined). Redis executes the requests of one connection in order and
/// replies in order, so elements leave this stage in push order however many pops
/// are in flight — several independent connections could not promise that. Request
/// `n` belongs to worker `n mod workers`, the `worker` label of the meta-metrics and
/// the counterpart of the .NET gateway's worker loops. `pop_count` is the least a pop
/// takes: small elements are popped up to `max_pop_count` at a time (`ReadSizing`),
/// which spares Redis, on the same machine, most of its per-command work.
/// Elements are parsed straight into a batch of up to `batch_size` elements
/// (`PopReplies`: no `redisReply` per element). Pops are topped up half a window at
/// a time, so one write carries many of them.
///
/// **Empty list.** When a pop comes back empty the source neither spins nor sleeps
/// blindly: on Redis ≥ 7 it blocks in `BLMPOP block_timeout RIGHT key COUNT
/// count`, which returns as soon as something is pushed; on Redis 6.2 it backs
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
/// **Reliable** (`reliable: true`): elements move atomically onto this instance's
/// processing list (`ReliableQueue`) and leave it only when every sink they reach
/// has made them durable (`Checkpoints`). Each emitted batch carries the sequence
/// numbers of its elements. On every (re)connect the source trims what the
/// restored state already holds and re-emits, in order, the elements of the
/// processing list it has not emitted — after a crash, those the snapshot does not
/// contain; after a broken connection, those whose pop reply was lost. So nothing
/// popped is lost and nothing is applied twice (the argument is in docs/durability.md).
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

    public static let defaultKey = ShardRouting.defaultQueueKey
    public static let defaultPopCount = 25
    public static let defaultMaxPopCount = 400
    public static let defaultPopSlots = 2
    public static let defaultPipeline = 16
    public static let defaultBatchSize = 1000
    public static let defaultMaxElementBytes = 16 << 20
    public static let defaultBlockTimeout = Duration.milliseconds(500)
    public static let defaultEmptyBackoff = Duration.milliseconds(20)
    public static let defaultMaxBackoff = Duration.seconds(1)
    public static let defaultPendingInterval = Duration.seconds(1)
    /// How long pops may keep failing before the source reports not ready.
    public static let popFailureGrace = Duration.seconds(2)
    /// Elements a reliable pop takes at least: a script call costs Redis far more
    /// than an `RPOP`, and at 25 per call the reliable drain measured 0.79× the plain
    /// one; at 100, 0.89× (`make bench-durable`).
    public static let minimumReliablePopCount = 100

    /// Elements per pop: `pop_count`, or at least `minimumReliablePopCount` when reliable.
    public var effectivePopCount: Int { reliable ? max(popCount, Self.minimumReliablePopCount) : popCount }

    /// Where Redis is: url, tls, sentinel, cluster seeds, time-outs (read as every Redis stage reads them).
    public var redis: RedisOptions
    public var key: String
    public var popCount: Int
    /// Elements per pop at most when they are small (`ReadSizing`); below `popCount` it is `popCount`.
    public var maxPopCount: Int
    /// Pop slots, not threads: the one connection's in-flight pops are numbered
    /// round-robin over them (the `worker` label; the .NET gateway's workers).
    public var workers: Int
    public var pipeline: Int
    public var batchSize: Int
    /// Elements longer are never held: read as a stand-in, the rest skipped (`ElementCut`).
    public var maxElementBytes: Int
    public var blockTimeout: Duration
    public var emptyBackoff: Duration
    public var maxBackoff: Duration
    public var pendingInterval: Duration
    /// Pop into a processing list and trim it after the sinks acknowledge.
    public var reliable: Bool
    /// Names this gateway's processing list; stable across restarts.
    public var instance: String
    /// Sharded queue `key:{0}` … `key:{shards-1}` (0: one list, `key`).
    public var shards: Int = 0
    /// Gateways sharing the shards by leases (empty: this one owns every shard).
    public var group: String = ""
    public var leaseTTL: Duration = Self.defaultLeaseTTL
    public static let defaultLeaseTTL = Duration.seconds(6)

    /// The default `instance`: `$HOSTNAME`, else the host name.
    public static var defaultInstance: String {
        if let h = getenv("HOSTNAME").map({ String(cString: $0) }), !h.isEmpty { return h }
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count - 1)
        let name = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "gateway" : name
    }

    public init(options o: OptionReader) {
        var docs = RedisOptions.Docs()
        docs.url = "redis://[user:password@]host:port[/db], rediss://… (TLS), or the .NET form host:port[,host2:port2][,ssl=true]"
            + "[,password=…][,serviceName=…]… (Redis__ConnectionString; docs/security.md lists every key)."
        docs.cluster = "Redis Cluster seed nodes, host:port (a list, or one comma-separated string); the slot map is read from them and MOVED, "
            + "ASK, TRYAGAIN, CLUSTERDOWN and failovers are followed. Keys get hash tags so that a queue and its processing list share a slot: "
            + "{key}:processing:<instance>. With shards set, the url's hosts are seeds too and the server tells whether it is a cluster."
        docs.readTimeout = "Time-out for any reply; must exceed block_timeout (default: syncTimeout= of the url, else 5s)."
        redis = RedisOptions(reading: o, docs: docs)
        key = o.string("key", default: Self.defaultKey, doc: "The list senders LPUSH onto (Redis__MetricQueueKey).")
        if key.isEmpty { o.fail("key", "must not be empty") }
        popCount = o.int("pop_count", default: Self.defaultPopCount, range: 1...100_000, doc:
            "Elements per RPOP (Redis__MetricQueuePopCount); small elements are popped up to max_pop_count at a time.")
        maxPopCount = o.int("max_pop_count", default: Self.defaultMaxPopCount, range: 1...100_000, doc:
            "Elements per RPOP at most while a pop's reply stays under 64 KiB (Redis__MetricQueueMaxPopCount); "
            + "at or below pop_count, every pop takes pop_count.")
        workers = o.int("workers", default: Self.defaultPopSlots, range: 1...64, doc:
            "Pop slots, not threads (Redis__MetricQueueWorkers): the one connection keeps up to workers × pipeline RPOPs in flight, numbered "
            + "round-robin over the slots; the `worker` label of the meta-metrics.")
        pipeline = o.int("pipeline", default: Self.defaultPipeline, range: 1...1024, doc:
            "RPOP requests each slot keeps in flight; workers × pipeline are pipelined on the one connection.")
        batchSize = o.int("batch_size", default: Self.defaultBatchSize, range: 1...1_000_000, doc:
            "Emit a batch once it holds this many elements (or when the list runs empty).")
        maxElementBytes = o.byteSize("max_element_bytes", default: Self.defaultMaxElementBytes, doc:
            "Elements longer than this are not read into memory: only their first 64 KiB, the rest is skipped as it arrives, and json_decode "
            + "drops them as `payload_too_large` (a sender's 500 MB element costs nothing; a json_decode below with a larger max_payload_bytes is "
            + "refused). At least 64KiB.")
        if maxElementBytes < OversizedElement.kept { o.fail("max_element_bytes", "must be at least 64KiB") }
        blockTimeout = o.duration("block_timeout", default: Self.defaultBlockTimeout, positive: true, doc:
            "How long BLMPOP waits on an empty list before the source looks around (stop requests, LLEN).")
        emptyBackoff = o.duration("empty_backoff", default: Self.defaultEmptyBackoff, doc: "Pause after an empty pop on Redis < 7 (no BLMPOP).")
        maxBackoff = o.duration("max_backoff", default: Self.defaultMaxBackoff, positive: true, doc:
            "Cap of the reconnect back-off (full jitter below it); /ready follows Redis within about this long.")
        pendingInterval = o.duration("pending_interval", default: Self.defaultPendingInterval, positive: true, doc:
            "How often LLEN is sampled into prom_stream_gateway_redis_queue_pending_size.")
        reliable = o.bool("reliable", default: false, doc:
            "Pop atomically into the processing list `<key>:processing:<instance>` and remove elements only once every sink has made them durable "
            + "(exactly-once with the prometheus sink's state_file; Redis ≥ 6.2). Reliable pops take at least 100 elements each.")
        let name = o.string("instance", default: "", doc:
            "Names this gateway's processing list (empty: $HOSTNAME, else the host name). Keep it stable across restarts — a restarted gateway "
            + "finds its unacknowledged elements under it — and distinct per gateway on one queue (Gateway__Instance).")
        instance = name.isEmpty ? Self.defaultInstance : name
        shards = o.int("shards", default: 0, range: 0...16384, doc:
            "Drain the sharded queue key:{0} … key:{shards-1}; senders push a sample onto shard crc32(name) mod shards (IEEE CRC-32; `gateway "
            + "shard-of NAME --shards N`). Sharded queues are always reliable, with one processing list per shard (key:{s}:processing). 0: the one "
            + "list key.")
        group = o.string("group", default: "", doc:
            "With shards: gateways with the same group split the shards by leases in Redis (key:{s}:owner), rebalance when members come and go, "
            + "and hand a shard's state (key:{s}:state, the prometheus sink's state: redis) over exactly. Empty: this gateway drains every shard.")
        leaseTTL = o.duration("lease_ttl", default: Self.defaultLeaseTTL, positive: true, doc:
            "How long a shard lease lives unless renewed (renewed every third of it); a gateway that dies is replaced within about this long.")
        if shards > 0 { reliable = true }
        if !group.isEmpty && shards == 0 { o.fail("group", "needs shards") }
        if shards > 0 && redis.sentinel != nil { o.fail("shards", "a sharded queue is on a Redis Cluster or one Redis, not behind Sentinel") }
        if shards > 0 && HashSlot.hasTag(key) { o.fail("key", ShardRouting.taggedKeyRefusal) }
    }

    public func validate() throws {
        guard redis.readTimeout > blockTimeout else {
            throw ConfigError.invalid(key: "read_timeout", reason: "must be longer than block_timeout (\(OptionReader.format(blockTimeout)))")
        }
    }

    public var redelivers: Bool { reliable }
    public var needsShardState: Bool { !group.isEmpty }
    public var elementLimit: (key: String, bytes: Int)? { ("max_element_bytes", maxElementBytes) }

    /// How this source reaches its master.
    public var connector: RedisConnector { redis.connector }

    public func makeStage(context: StageContext) throws -> Stage {
        shards > 0 ? .source(ShardedListSource(config: self, context: context)) : .source(RedisListSource(config: self, context: context))
    }
}

public final class RedisListSource: Source {
    let config: RedisListConfig
    let context: StageContext
    let origins: [UInt16]
    let connector: RedisConnector
    let emptyPops: [MetaCounter]
    let reconnects = MetaCounter()
    let errors = MetaCounter()
    let pending = MetaGauge()
    let popped = MetaCounter()
    let lostReplies = MetaCounter()
    let replayed = MetaCounter()
    let processingSize = MetaGauge()
    private let warnings: RateLimitedLog
    let queue: ReliableQueue
    /// The reliable stream (nil unless `reliable`).
    let stream: UInt16?
    /// What the sinks made durable (written by `Checkpoints`' listener).
    private let durableThrough = DurablePosition()
    /// Sequence bookkeeping; touched by the source thread only (a lock for Sendable).
    private struct Sequence { var connected = false; var emittedThrough: UInt64 = 0 }
    private let sequence = Mutex(Sequence())

    public init(config: RedisListConfig, context: StageContext) {
        self.config = config
        self.context = context
        self.warnings = RateLimitedLog(logger: context.logger, interval: .seconds(5))
        origins = (0..<config.workers).map { context.telemetry.registerOrigin(labels: [("worker", String($0)), ("queueKey", config.key)]) }
        emptyPops = (0..<config.workers).map { _ in MetaCounter() }
        pending.set(.nan)
        var start = StreamStart.fresh
        queue = ReliableQueue(key: config.key, instance: config.instance, hashTagged: !config.redis.cluster.isEmpty)
        if config.reliable {
            let durable = durableThrough
            let registration = context.checkpoints.register(stream: "redis_list:\(queue.processing)", source: context.id) { through in
                durable.value.store(through, ordering: .releasing)
            }
            stream = registration.stream
            start = registration.start
        } else {
            stream = nil
        }
        processingSize.set(.nan)
        let key = config.key
        let (emptyPops, reconnects, errors, pending, popped, lostReplies) = (emptyPops, reconnects, errors, pending, popped, lostReplies)
        let (replayed, processingSize, reliable) = (replayed, processingSize, config.reliable)
        let interval = OptionReader.format(config.pendingInterval)
        context.addCollector {
            let p = Telemetry.prefix
            let q = [("queueKey", key)]
            return [
                MetaFamily(name: p + "redis_queue_empty_pops_total", help: "Pops that found the queue empty, by pop slot.", type: .counter,
                           samples: emptyPops.enumerated().map { MetaSample(labels: [("worker", String($0.offset)), ("queueKey", key)],
                                   value: Double($0.element.value)) }),
                MetaFamily(name: p + "redis_queue_pending_size",
                        help: "Elements waiting on the queue (LLEN; summed over the shards this gateway owns when sharded), sampled every "
                            + "\(interval).", type: .gauge,
                           samples: [MetaSample(labels: q, value: pending.value)]),
                MetaFamily(name: p + "redis_reconnects_total", help: "Connections to Redis re-established after an outage.", type: .counter,
                           samples: [MetaSample(labels: q, value: Double(reconnects.value))]),
            ] + Self.drainFamilies(key: key, popped: popped, errors: errors, lostReplies: lostReplies,
                    replayed: reliable ? replayed : nil) + (reliable ? [
                MetaFamily(name: p + "processing_list_size",
                        help: "Length of this gateway's processing list: popped elements not yet durable in every sink.", type: .gauge,
                           samples: [MetaSample(labels: q, value: processingSize.value)]),
            ] : [])
        }
        connector = config.connector
        // A reload rebuilt this source: continue its predecessor's numbering, as a
        // reconnect would — what it emitted is applied in the sinks, not emitted again.
        if case .continuing(let emitted, let durable) = start {
            sequence.withLock { $0 = Sequence(connected: true, emittedThrough: emitted) }
            durableThrough.value.store(durable, ordering: .releasing)
        }
        context.health.set(context.id, ready: false, detail: "connecting to \(connector.description)")
        if !config.redis.url.ignoredKeys.isEmpty {
            context.logger.info("connection-string keys with no meaning for this gateway are ignored",
                    metadata: ["keys": "\(config.redis.url.ignoredKeys.joined(separator: ","))"])
        }
        if config.redis.url.tls && config.redis.tls.insecureSkipVerify {
            context.logger.warning("tls.insecure_skip_verify is on: the Redis server's certificate and name are not verified")
        }
    }

    /// The families every Redis source reports: elements popped, errors, replies lost
    /// with a connection, and (reliable) elements re-emitted.
    static func drainFamilies(key: String, popped: MetaCounter, errors: MetaCounter, lostReplies: MetaCounter,
            replayed: MetaCounter?) -> [MetaFamily] {
        let p = Telemetry.prefix, q = [("queueKey", key)]
        return [
            MetaFamily(name: p + "redis_errors_total", help: "Failed Redis commands and connection attempts.", type: .counter,
                       samples: [MetaSample(labels: q, value: Double(errors.value))]),
            MetaFamily(name: p + "redis_popped_elements_total", help: "Queue elements popped from Redis.", type: .counter,
                       samples: [MetaSample(labels: q, value: Double(popped.value))]),
            MetaFamily(name: p + "redis_lost_pop_replies_total",
                    help: "Pops in flight when a connection broke: Redis may have removed their elements, whose replies never arrived "
                        + "(with reliable: true they are re-read from the processing list).", type: .counter,
                       samples: [MetaSample(labels: q, value: Double(lostReplies.value))]),
        ] + (replayed.map { r in [
            MetaFamily(name: p + "replayed_elements_total",
                    help: "Processing-list elements emitted again after a restart or a broken connection.", type: .counter,
                       samples: [MetaSample(labels: q, value: Double(r.value))]),
        ] } ?? [])
    }

    public func run(worker: Int, output: StageOutput, control: SourceControl) {
        var outage = Outage()
        while !control.isStopping {
            let connection: RedisConnection
            let hasBLMPOP: Bool
            do {
                (connection, hasBLMPOP) = try connect()
            } catch {
                errors.add()
                context.health.set(context.id, ready: false, detail: "\(connector.description): \(error)")
                let (delay, starts) = outage.failed(maxBackoff: config.maxBackoff.inSeconds)
                if starts {
                    context.logger.error("cannot reach Redis; retrying with back-off", metadata: ["redis": "\(connector.description)",
                            "error": "\(error)"])
                }
                control.sleep(seconds: delay)
                continue
            }
            let (endsOutage, reconnect) = outage.answered()
            if reconnect { reconnects.add() }
            let server = "\(connection.isTLS ? "rediss://" : "")\(connection.endpoint)/\(config.redis.url.database)"
            context.health.set(context.id, ready: true, detail: "connected to \(server)")
            context.logger.info(endsOutage ? "reconnected to Redis" : "connected to Redis",
                                metadata: ["redis": "\(server)", "key": "\(config.key)", "blmpop": "\(hasBLMPOP)"])
            var session = Session(connection: connection, hasBLMPOP: hasBLMPOP, config: config)
            do {
                if config.reliable { try recover(&session, output: output, control: control) }
                try drain(&session, output: output, control: control)
                return   // stopped
            } catch {
                errors.add()
                context.health.set(context.id, ready: false, detail: "\(connection.endpoint): \(error)")
                context.logger.error("lost Redis connection; reconnecting", metadata: ["redis": "\(connection.endpoint)", "error": "\(error)"])
                outage.broke()
            }
        }
        context.health.set(context.id, ready: false, detail: "stopped")
    }

    private func connect() throws(RedisError) -> (RedisConnection, Bool) {
        let c: RedisConnection
        if config.redis.cluster.isEmpty {
            c = try connector.connect()
        } else {
            // The node serving the queue's slot; a MOVED or ASK later reconnects here.
            let map = RedisCluster(connector: connector, seeds: config.redis.cluster)
            try map.refresh()
            c = try connector.open(try map.node(forSlot: HashSlot.of(config.key)))
        }
        c.elementLimit = config.maxElementBytes
        let info = try c.command("INFO", "server").text ?? ""
        let version = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }?.dropFirst("redis_version:".count)
        let parts = version.map { $0.split(separator: ".").compactMap { Int($0) } } ?? []
        let major = parts.first ?? 0, minor = parts.count > 1 ? parts[1] : 0
        if config.reliable && (major, minor) < (6, 2) {
            throw .protocolViolation("reliable: true needs Redis 6.2 or later (RPOP with a count, BLMOVE); this one is \(version ?? "unknown")")
        }
        // With reliable pops the idle wait is BLMOVE (6.2), otherwise BLMPOP (7.0).
        return (c, config.reliable ? true : major >= 7)
    }

    /// Reliable mode, on every (re)connect: trim what the sinks' restored state
    /// already holds, then re-emit in order whatever the processing list holds
    /// beyond what this source emitted.
    private func recover(_ s: inout Session, output: StageOutput, control: SourceControl) throws(RedisError) {
        guard let stream else { return }
        s.popSHA = try s.connection.command("SCRIPT", "LOAD", ReliableQueue.popScript).text ?? ""
        s.trimSHA = try s.connection.command("SCRIPT", "LOAD", ReliableQueue.trimScript).text ?? ""
        let acked = UInt64(try s.connection.command("GET", queue.acked).text ?? "0") ?? 0
        guard case .integer(let length) = try s.connection.command("LLEN", queue.processing) else {
            throw .protocolViolation("LLEN \(queue.processing) did not answer an integer")
        }
        var seq = sequence.withLock { $0 }
        let start = seq.connected ? seq.emittedThrough : context.checkpoints.restored(stream: "redis_list:\(queue.processing)") ?? 0
        let plan = Recovery(acked: acked, length: length, emitted: start,
                            durable: seq.connected ? durableThrough.value.load(ordering: .acquiring) : nil, raiseToAcked: !seq.connected)
        var emitted = plan.emitted
        if plan.stateBehindAcked {
            context.logger.warning("the restored state ends before what Redis already acknowledged; elements up to \(acked) are not in it",
                                   metadata: ["processing": "\(queue.processing)", "state": "\(start)", "acked": "\(acked)"])
        }
        if let renumbered = plan.renumberAckedTo {
            context.logger.warning("Redis holds less than the state says was popped; renumbering the processing list",
                                   metadata: ["processing": "\(queue.processing)", "state": "\(emitted)", "redis": "\(plan.held)"])
            try s.connection.command("SET", queue.acked, String(renumbered))
        }
        if let through = plan.trimThrough { try trim(&s, through: through) }
        s.trimmedThrough = max(s.trimmedThrough, acked)
        if plan.missing > 0 {
            context.logger.info("re-emitting processing-list elements not yet emitted", metadata: ["processing": "\(queue.processing)",
                    "count": "\(plan.missing)"])
        }
        // Each page is this source's own count once emitted (and charged to the memory budget), so a break between
        // pages re-reads none of it. A stop (SIGTERM, a reload) ends the replay at a page: the rest stays in the list.
        let left = try ReplayPages.replay(missing: plan.missing, share: context.memoryBudget.readShare, batchSize: config.batchSize,
                                          origin: origins[0], stopping: { control.isStopping }, read: { page throws(RedisError) in
            try s.connection.command("LRANGE", queue.processing, String(page.lowerBound), String(page.upperBound))
        }, emit: { batch in
            var b = Batch(payloads: batch)
            b.acknowledgement = Acknowledgement(stream: stream, first: emitted + 1, through: emitted + UInt64(batch.count))
            replayed.add(UInt64(batch.count))
            popped.add(UInt64(batch.count))
            emitted += UInt64(batch.count)
            seq.connected = true
            seq.emittedThrough = emitted
            sequence.withLock { $0 = seq }
            output.emit(b)
            FaultInjection.point("after_replay_page")
        })
        if left > 0 {
            context.logger.info("stopping during the replay; the rest stays in the processing list",
                                metadata: ["processing": "\(queue.processing)", "left": "\(left)"])
        }
        seq.connected = true
        seq.emittedThrough = emitted
        sequence.withLock { $0 = seq }
    }

    /// Removes the processing list's elements through `through` (durable in every sink).
    private func trim(_ s: inout Session, through: UInt64) throws(RedisError) {
        try s.connection.command("EVALSHA", s.trimSHA, "2", queue.processing, queue.acked, String(through))
        s.trimmedThrough = through
    }

    /// Trims when the sinks made more durable since the last trim.
    private func trimIfDurable(_ s: inout Session) throws(RedisError) {
        guard stream != nil else { return }
        let durable = durableThrough.value.load(ordering: .acquiring)
        if durable > s.trimmedThrough { try trim(&s, through: durable) }
    }

    /// One connection's state while it drains.
    private struct Session {
        let connection: RedisConnection
        let hasBLMPOP: Bool
        let reliable: Bool
        let replies = PopReplies()
        var nextLLEN: UInt64 = 0
        /// When pops started failing (nil: they succeed), and whether that was logged.
        var failingSince: UInt64?
        var failureReported = false
        /// The server answered as a replica (after a failover): reconnect to the master.
        var demoted: String?
        /// Reliable mode: the scripts as loaded on this connection, and how far the
        /// processing list has been trimmed.
        var popSHA = "", trimSHA = ""
        var trimmedThrough: UInt64 = 0
        /// What the backlog path pipelines and what the idle wait sends (`commands`),
        /// for pops of `popCount` elements (`ReadSizing`).
        var popCommand: [[UInt8]] = [], waitCommand: [[UInt8]] = []
        var popCount = 0
        var elementSize = ElementSize()

        init(connection: RedisConnection, hasBLMPOP: Bool, config: RedisListConfig) {
            self.connection = connection
            self.hasBLMPOP = hasBLMPOP
            self.reliable = config.reliable
        }
    }

    /// RPOP and BLMPOP; reliable: the pop script and BLMOVE onto the processing list.
    private func commands(popSHA: String, count popCount: Int) -> (pop: [[UInt8]], wait: [[UInt8]]) {
        let key = Array(config.key.utf8), count = Array(String(popCount).utf8)
        let block = Array(String(config.blockTimeout.inSeconds).utf8)
        guard config.reliable else {
            return ([Array("RPOP".utf8), key, count],
                    [Array("BLMPOP".utf8), block, Array("1".utf8), key, Array("RIGHT".utf8), Array("COUNT".utf8), count])
        }
        let processing = Array(queue.processing.utf8)
        return ([Array("EVALSHA".utf8), Array(popSHA.utf8), Array("2".utf8), key, processing, count],
                [Array("BLMOVE".utf8), key, processing, Array("RIGHT".utf8), Array("LEFT".utf8), block])
    }

    /// Pops until stopped; throws when the connection breaks.
    private func drain(_ s: inout Session, output: StageOutput, control: SourceControl) throws(RedisError) {
        var idle = false   // the last pop found the list empty
        while !control.isStopping {
            let count = sizing(s).count
            if count != s.popCount {
                (s.popCommand, s.waitCommand) = commands(popSHA: s.popSHA, count: count)
                s.popCount = count
            }
            try trimIfDurable(&s)
            if monotonicNanos() >= s.nextLLEN { sampleLength(&s) }
            idle = idle ? try waitForElements(&s, output: output, control: control)
                        : try drainBacklog(&s, output: output, control: control)
        }
    }

    /// Pops sized to the memory budget's read share and the elements seen so far.
    private func sizing(_ s: Session) -> ReadSizing {
        ReadSizing.plan(averageElementBytes: s.elementSize.average, share: context.memoryBudget.readShare,
                        popCount: config.effectivePopCount, maxPopCount: config.maxPopCount, maxInFlight: config.workers * config.pipeline)
    }

    private func sampleLength(_ s: inout Session) {
        do {
            if case .integer(let n) = try s.connection.command("LLEN", config.key) { pending.set(Double(n)) }
            if config.reliable, case .integer(let n) = try s.connection.command("LLEN", queue.processing) { processingSize.set(Double(n)) }
        } catch {
            errors.add()   // e.g. WRONGTYPE; the connection itself is checked by the pops
            warnings.warning("LLEN `\(config.key)` failed: \(error)")
        }
        s.nextLLEN = monotonicNanos() + UInt64(config.pendingInterval.inSeconds * 1e9)
    }

    /// Hands the elements collected so far on as one batch (numbered, when reliable).
    private func flush(_ s: Session, output: StageOutput) {
        guard !s.replies.batch.isEmpty else { return }
        let n = UInt64(s.replies.batch.count)
        popped.add(n)
        var full = BatchBuffers.take(payloads: config.batchSize, bytes: BatchBuffers.bytes(elements: config.batchSize,
                average: s.elementSize.average, share: context.memoryBudget.readShare))
        swap(&full, &s.replies.batch)   // hand the filled buffers on with a single owner
        var batch = Batch(payloads: full)
        if let stream {
            let first = sequence.withLock { q in defer { q.emittedThrough += n }; return q.emittedThrough + 1 }
            batch.acknowledgement = Acknowledgement(stream: stream, first: first, through: first + n - 1)
        }
        output.emit(batch)
        FaultInjection.point("after_pop")
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
            if message.hasPrefix("READONLY") || message.hasPrefix("UNBLOCKED") || RedisCluster.redirect(message) != nil {
                s.demoted = message   // a failover: the remaining replies are read, then the master is found again
                return -1
            }
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
        context.health.set(context.id, ready: true, detail: "connected to \(s.connection.endpoint)")
    }

    /// The list is empty: wait in Redis until something is pushed (BLMPOP, or a
    /// pause on Redis < 7). Returns whether the list is still empty.
    private func waitForElements(_ s: inout Session, output: StageOutput, control: SourceControl) throws(RedisError) -> Bool {
        guard s.hasBLMPOP else {
            control.sleep(seconds: config.emptyBackoff.inSeconds)
            return false
        }
        s.connection.append(s.waitCommand)
        let got: Int, before = s.replies.batch.bytes.count
        do {
            got = try count(s.connection.readPop(into: s.replies, blmpop: !s.reliable, origin: origins[0]), &s)
            s.elementSize.observe(bytes: s.replies.batch.bytes.count - before, elements: got)
        } catch {
            if case .connection = error { lostReplies.add() }   // not `.closed`: see the type's doc
            flush(s, output: output)
            throw error
        }
        flush(s, output: output)
        if let m = s.demoted { throw .notMaster(m) }
        if got == 0 { emptyPops[0].add() }
        if got < 0 { control.sleep(seconds: 1) }   // e.g. WRONGTYPE: retry, slowly
        return got <= 0
    }

    /// Pops with RPOPs pipelined until a reply comes back short. Pops in flight
    /// grow from `workers` (doubling per full reply) to workers × pipeline: a
    /// backlog is drained with deep pipelining, a trickle costs few empty pops.
    /// Returns whether the list ran empty.
    private func drainBacklog(_ s: inout Session, output: StageOutput, control: SourceControl) throws(RedisError) -> Bool {
        let share = context.memoryBudget.readShare
        var plan = sizing(s)
        var inFlight = 0, target = min(config.workers, plan.inFlight)
        var sawEmpty = false, sawError = false, sawShort = false
        var received = 0
        while inFlight < target { s.connection.append(s.popCommand); inFlight += 1 }
        while inFlight > 0 {
            let slot = received % config.workers
            received += 1
            let got: Int, before = s.replies.batch.bytes.count
            do {
                got = try count(s.connection.readPop(into: s.replies, blmpop: false, origin: origins[slot]), &s)
                s.elementSize.observe(bytes: s.replies.batch.bytes.count - before, elements: got)
                plan = sizing(s)
            } catch {
                lostReplies.add(UInt64(inFlight))
                flush(s, output: output)   // what arrived before the break is kept
                throw error
            }
            inFlight -= 1
            if got < 0 { sawError = true } else if got == 0 { sawEmpty = true; emptyPops[slot].add() }
            if got < s.popCount { sawShort = true }
            if s.replies.batch.count >= config.batchSize || s.replies.batch.bytes.count >= share / 2 { flush(s, output: output) }
            // A new pop size waits for the next round: the replies in flight are read first.
            guard !sawShort, !sawError, !control.isStopping, monotonicNanos() < s.nextLLEN, plan.count == s.popCount else { continue }
            target = min(plan.inFlight, target * 2)
            // Top up only once half the window has come back: the pops go out in
            // one write instead of one write (and one Redis wake-up) per reply.
            guard inFlight <= target / 2 else { continue }
            while inFlight < target { s.connection.append(s.popCommand); inFlight += 1 }
        }
        flush(s, output: output)
        if let m = s.demoted { throw .notMaster(m) }
        if sawError { control.sleep(seconds: 1) }   // e.g. WRONGTYPE: retry, slowly
        return sawEmpty
    }
}
