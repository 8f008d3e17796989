import Logging
import Pipeline
import Redis
import Synchronization

/// Re-routes samples onto a sharded queue, for senders that cannot change the key
/// they push to: `redis_list` source on `K` → `json_decode` → this sink with
/// `shards: N`, which writes each sample as compact JSON onto `K:{crc32(name) mod N}`
/// — one `LPUSH` per shard per batch, pipelined. Stateless: any number may run.
///
/// **Delivery.** A batch is consumed once Redis acknowledged its pushes, so behind
/// a reliable source the elements leave the processing list only after their
/// samples are on the shards. A connection that breaks during a push is retried
/// (on the new master, after MOVED): a push whose reply was lost may then be
/// applied twice — at least once, the one place the sharded path is not exact.
/// A push that keeps failing past `read_timeout` drops its samples as
/// `redis_unavailable`, counted and logged.
public struct RedisListSinkConfig: StageConfig {
    public static let type = "redis_list"
    public static let role = StageRole.sink
    public static let summary = "Pushes samples as compact JSON onto a sharded queue key:{crc32(name) mod shards} (LPUSH; Redis Cluster or "
        + "one Redis): the router for senders that push to one key."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = nil
    public static let example = """
        url: "redis://localhost:6379/0"
        key: prom-stream-gateway:metric-queue
        shards: 8
        """

    /// Where the sharded queue is: url, tls, sentinel, cluster seeds, time-outs (as every Redis stage reads them).
    public var redis: RedisOptions
    public var key: String
    public var shards: Int

    public init(options o: OptionReader) {
        var docs = RedisOptions.Docs()
        docs.url = "Where the sharded queue is: redis://…, rediss://… or the .NET connection-string form (its hosts are cluster seeds)."
        docs.cluster = "Redis Cluster seed nodes, host:port (a list, or one comma-separated string; default: the url's hosts)."
        docs.readTimeout = "Time-out for a reply; also how long a failing push is retried before its samples are dropped."
        redis = RedisOptions(reading: o, docs: docs)
        key = o.string("key", default: ShardRouting.defaultQueueKey, doc: "The sharded queue's key K; samples go to K:{shard}.")
        if key.isEmpty { o.fail("key", "must not be empty") }
        shards = o.int("shards", default: 0, range: 0...16384, doc: "Shards of the queue, as the draining gateways' `shards` (required).")
        if shards == 0 { o.fail("shards", "must be set (1 or more), as on the gateways draining K:{0} … K:{shards-1}") }
        if redis.sentinel != nil { o.fail("sentinel", "a sharded queue is on a Redis Cluster or one Redis, not behind Sentinel") }
        if HashSlot.hasTag(key) { o.fail("key", ShardRouting.taggedKeyRefusal) }
    }

    public func makeStage(context: StageContext) throws -> Stage {
        .sink(RedisListSink(config: self, context: context))
    }
}

extension DropReason {
    /// The router could not push the sample within `read_timeout`.
    public static let redisUnavailable = DropReason("redis_unavailable")
    /// The router cannot write the value as JSON (NaN, ±Inf).
    public static let unencodable = DropReason("unencodable")
}

public final class RedisListSink: Sink {
    let config: RedisListSinkConfig
    let context: StageContext
    let keys: [String]
    /// One client per worker (the runtime gives each worker its own slot).
    private let clients: WorkerSlots<RedisCluster?>
    let pushed = MetaCounter(), failures = MetaCounter()
    private let warnings: RateLimitedLog

    public var wantsOrderedInput: Bool { true }

    public init(config: RedisListSinkConfig, context: StageContext) {
        self.config = config
        self.context = context
        keys = (0..<config.shards).map { ShardRouting.queueKey(config.key, shard: $0) }
        clients = WorkerSlots(count: context.workers) { _ in nil }
        warnings = RateLimitedLog(logger: context.logger, interval: .seconds(5))
        let (pushed, failures, key) = (pushed, failures, config.key)
        context.addCollector {
            [MetaFamily(name: Telemetry.prefix + "routed_samples_total",
                    help: "Samples the redis_list sink pushed onto their shard, by outcome.", type: .counter,
                        samples: [MetaSample(labels: [("queueKey", key), ("outcome", "pushed")], value: Double(pushed.value)),
                                  MetaSample(labels: [("queueKey", key), ("outcome", "failed")], value: Double(failures.value))])]
        }
    }

    public func consume(_ batch: inout Batch, worker: Int) {
        guard batch.kind == .samples else { return }
        var perShard = [[[UInt8]]](repeating: [], count: config.shards)
        var members = [[Int]](repeating: [], count: config.shards)
        let s = batch.samples
        var unencodable: [Int] = []
        s.bytes.withUnsafeBytes { arena in
            for i in s.records.indices where !s.records[i].isDropped {
                let r = s.records[i]
                guard let json = Self.json(r, s, arena) else { unencodable.append(i); continue }
                let shard = ShardRouting.shard(ofName: arena[span: r.name], shards: config.shards)
                perShard[shard].append(json)
                members[shard].append(i)
            }
        }
        for i in unencodable { batch.drop(sample: i, reason: .unencodable) }
        var failed: [Int] = []
        clients.with(worker) { slot in
            if slot == nil {
                let c = RedisCluster(connector: config.redis.connector,
                        seeds: config.redis.cluster.isEmpty ? config.redis.url.endpoints : config.redis.cluster)
                c.retryFor = config.redis.readTimeout.inSeconds
                slot = c
            }
            let cluster = slot!
            for shard in perShard.indices where !perShard[shard].isEmpty {
                let args = [Array("LPUSH".utf8), Array(keys[shard].utf8)] + perShard[shard]
                do throws(RedisError) {
                    let r = try cluster.run(key: keys[shard], args)
                    if case .error(let m) = r {
                        warnings.warning("pushing onto `\(keys[shard])` fails: \(m)")
                        failed += members[shard]
                    } else {
                        pushed.add(UInt64(members[shard].count))
                    }
                } catch {
                    warnings.warning("pushing onto `\(keys[shard])` fails: \(error)")
                    failed += members[shard]
                }
            }
        }
        failures.add(UInt64(failed.count))
        for i in failed { batch.drop(sample: i, reason: .redisUnavailable) }
    }

    /// The sample as the compact JSON the decoder reads; nil for a value JSON cannot carry
    /// (exponential buckets, as an OTLP sender's, have no JSON form; explicit ones are `counts`).
    public static func json(_ r: SampleRecord, _ s: SampleBatch, _ arena: UnsafeRawBufferPointer) -> [UInt8]? {
        guard r.value.isFinite, r.shape != .exponential else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(96)
        func text(_ span: ByteSpan) { string(arena[span: span], into: &out) }
        func add(_ s: String) { out.append(contentsOf: s.utf8) }
        func number(_ v: Double) { add(v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : "\(v)") }
        add("{\"type\":\"\(r.type.name)\",\"name\":")
        text(r.name)
        add(",\"value\":")
        number(r.value)
        if r.labelCount > 0 {
            add(",\"labels\":{")
            for (n, l) in r.labelRange.enumerated() {
                if n > 0 { add(",") }
                text(s.labels[l].name); add(":"); text(s.labels[l].value)
            }
            add("}")
        }
        if r.help.count > 0 { add(",\"help\":"); text(r.help) }
        let lists = r.shape == .binned   // bins: the total, then the counts the JSON carries
            ? [("buckets", r.buckets), ("counts", NumberSpan(start: r.bins.start + 1, count: max(1, r.bins.count) - 1))]
            : [("buckets", r.buckets), ("quantiles", r.quantiles), ("epsilons", r.epsilons)]
        for (field, span) in lists where span.count > 0 {
            add(",\"\(field)\":[")
            for (n, v) in s.numbers(span).enumerated() {
                guard v.isFinite else { return nil }
                if n > 0 { add(",") }
                number(v)
            }
            add("]")
        }
        if let e = s.exemplar(of: r) {
            guard e.value.isFinite else { return nil }
            add(",\"exemplar\":{\"labels\":{")
            for (n, l) in e.labelRange.enumerated() {
                if n > 0 { add(",") }
                text(s.labels[l].name); add(":"); text(s.labels[l].value)
            }
            add("},\"value\":"); number(e.value)
            if e.timestamp.isFinite { add(",\"timestamp\":\(e.timestamp)") }
            add("}")
        }
        add("}")
        return out
    }

    /// A JSON string literal of UTF-8 bytes.
    static func string(_ b: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for c in b {
            switch c {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 15)]]
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
