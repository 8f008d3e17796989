import CoreMetrics
import Foundation
import Redis
import Synchronization

/// A swift-metrics backend that sends to prom-stream-gateway: counters, gauges,
/// meters, recorders and timers are buffered in memory and `flush()` sends them in
/// one `LPUSH` per shard (one per queue key without shards) of a JSON array — every
/// `flushInterval` from a thread of its own, and on `shutdown()`.
///
///     let metrics = try PromStreamMetrics(url: "redis://cache:6379/0")
///     MetricsSystem.bootstrap(metrics)
///     Counter(label: "jobs_total", dimensions: [("queue", "mail")]).increment()
///     Timer(label: "job_duration_seconds").recordNanoseconds(31_000_000)
///     // Lambda: metrics.flush() at the end of each invocation; a server: shutdown() at exit.
///
/// Mapping: `Counter` and `FloatingPointCounter` → counter (increments summed per
/// series between flushes); `Gauge` and `Meter` → gauge (last value); `Recorder`
/// → histogram; `Timer` → histogram of seconds, its observations counted into
/// `buckets[label]` (else `defaultBuckets`) and sent as one sample with `counts` per
/// series. Labels become metric names with every character Prometheus does not allow
/// replaced by `_`.
///
/// Never throws into the application: a failed flush is counted (`failures`), passed
/// to `onError`, and the series of each push Redis did not take are put back (counters
/// and histograms add up, the newer gauge wins), so the next flush sends them; the
/// shards Redis took are not sent again.
public final class PromStreamMetrics: MetricsFactory, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var key = ShardRouting.defaultQueueKey
        /// The draining gateways' `shards` (0: one list, `key`).
        public var shards = 0
        public var flushInterval: Duration = .seconds(10)
        /// Prometheus's default buckets, as client_golang's.
        public var defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
        /// Buckets per metric label (before renaming), for recorders and timers.
        public var buckets: [String: [Double]] = [:]
        public var maxElementBytes = 512 * 1024
        /// Called from the flushing thread with the error of a failed flush.
        public var onError: (@Sendable (any Error) -> Void)?
        public init() {}
    }

    public let configuration: Configuration
    let redis: RedisOptions
    let buffer: Mutex<MetricsBuffer>
    /// Series made so far, by number; a series is made once per (type, label, dimensions).
    private let series = Mutex<(json: [SampleJSON], index: [String: Int])>(([], [:]))
    private let sending = Mutex<Sender>(Sender())
    private let stats = Mutex<(failures: Int, sent: Int)>((0, 0))
    private let stop = NSCondition()
    private var stopped = false
    private var thread: Thread?

    /// `url`: redis://, rediss:// or the .NET connection string; connect and read
    /// time-outs 0.5 s unless the url says otherwise (a sender must not hang on Redis).
    public convenience init(url: String, configuration: Configuration = Configuration()) throws {
        let parsed = try RedisURL.parse(url).get()
        let redis = RedisOptions(url: parsed, connectTimeout: parsed.connectTimeout ?? .milliseconds(500),
                readTimeout: parsed.syncTimeout ?? .milliseconds(500))
        self.init(redis: redis, configuration: configuration)
    }

    /// `redis`: the same options the gateway's stages take (TLS, Sentinel, cluster seeds).
    public init(redis: RedisOptions, configuration: Configuration = Configuration()) {
        self.redis = redis
        self.configuration = configuration
        buffer = Mutex(MetricsBuffer())
        if configuration.flushInterval > .zero {
            let t = Thread { [weak self] in self?.flushLoop() }
            t.name = "prom-stream-metrics"
            thread = t
            t.start()
        }
    }

    /// Flushes that failed (their content was kept for the next one).
    public var failures: Int { stats.withLock { $0.failures } }
    /// Samples sent so far.
    public var sent: Int { stats.withLock { $0.sent } }
    /// Values dropped: not finite, a negative counter increment, or a sum that would not be.
    public var dropped: Int { buffer.withLock { $0.dropped } }

    /// Sends what is buffered now, in one round trip per shard (pipelined on one
    /// Redis; per node on a cluster). Returns the number of samples Redis took (0 when
    /// every push failed): a push that failed puts only its own shard's series back.
    @discardableResult
    public func flush() -> Int {
        sending.withLock { sender in
            let taken = buffer.withLock { $0.take() }
            guard !taken.isEmpty else { return 0 }
            let json = series.withLock { $0.json }
            let shards = configuration.shards
            let shardOf = { (s: Int) in shards > 0 ? ShardRouting.shard(of: json[s].name, shards: shards) : 0 }
            let pushes = taken.elements(series: json, shardOf: shardOf, maxElementBytes: configuration.maxElementBytes)
                .map { (shard: $0.key, elements: $0.value) }
            let outcome = sender.push(pushes.map { (key: shards > 0 ? ShardRouting.queueKey(configuration.key, shard: $0.shard) : configuration.key,
                                                    elements: $0.elements) }, redis: redis)
            let failedShards = Set(outcome.unconfirmed.map { pushes[$0].shard })
            let kept = taken.only { failedShards.contains(shardOf($0)) }
            let sent = taken.count - kept.count
            stats.withLock { $0.sent += sent }
            if let error = outcome.error {
                buffer.withLock { $0.restore(kept) }
                stats.withLock { $0.failures += 1 }
                configuration.onError?(error)
            }
            return sent
        }
    }

    /// Stops the flushing thread and flushes once more. Call it when the process ends.
    public func shutdown() {
        stop.lock()
        stopped = true
        stop.signal()
        stop.unlock()
        while thread?.isFinished == false { usleep(1000) }
        flush()
    }

    private func flushLoop() {
        let interval = Double(configuration.flushInterval.components.seconds) + Double(configuration.flushInterval.components.attoseconds) / 1e18
        while true {
            stop.lock()
            if !stopped { _ = stop.wait(until: Date(timeIntervalSinceNow: interval)) }
            let done = stopped
            stop.unlock()
            if done { return }
            flush()
        }
    }

    /// The number of the series (type, label, dimensions), made on first use.
    private func seriesNumber(type: String, label: String, dimensions: [(String, String)], buckets: [Double]? = nil) -> Int {
        let key = type + "\u{0}" + label + "\u{0}" + dimensions.map { $0.0 + "=" + $0.1 }.joined(separator: "\u{0}")
        return series.withLock { s in
            if let n = s.index[key] { return n }
            s.json.append(SampleJSON(type: type, label: label, dimensions: dimensions, buckets: buckets))
            s.index[key] = s.json.count - 1
            return s.json.count - 1
        }
    }

    /// A histogram series' number and the bounds its observations are counted into.
    private func histogram(_ label: String, _ dimensions: [(String, String)]) -> (number: Int, bounds: [Double]) {
        let buckets = configuration.buckets[label] ?? configuration.defaultBuckets
        let n = seriesNumber(type: "histogram", label: label, dimensions: dimensions, buckets: buckets)
        return (n, series.withLock { $0.json[n].bounds })
    }

    // MARK: MetricsFactory

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        CounterSeries(series: seriesNumber(type: "counter", label: label, dimensions: dimensions), backend: self)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> FloatingPointCounterHandler {
        CounterSeries(series: seriesNumber(type: "counter", label: label, dimensions: dimensions), backend: self)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        GaugeSeries(series: seriesNumber(type: "gauge", label: label, dimensions: dimensions), backend: self)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        aggregate
            ? HistogramSeries(series: histogram(label, dimensions), backend: self)
            : GaugeSeries(series: seriesNumber(type: "gauge", label: label, dimensions: dimensions), backend: self)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        HistogramSeries(series: histogram(label, dimensions), backend: self)
    }

    public func destroyCounter(_ handler: CounterHandler) {}
    public func destroyFloatingPointCounter(_ handler: FloatingPointCounterHandler) {}
    public func destroyMeter(_ handler: MeterHandler) {}
    public func destroyRecorder(_ handler: RecorderHandler) {}
    public func destroyTimer(_ handler: TimerHandler) {}
}

/// The connection flushes go over (on the flushing thread, or the caller's of `flush()`):
/// opened on first use, again after a failure. A url that points at a Redis Cluster node is
/// found out by its first `MOVED`: from then on the url's hosts are the cluster's seeds, as a
/// sharded gateway takes them.
struct Sender: Sendable {
    private var connection: UnsafeSendable<RedisConnection>?
    private var cluster: UnsafeSendable<RedisCluster>?

    /// Pushes each shard's elements with one LPUSH; returns the pushes Redis did not
    /// confirm (by index) and the first error. An error reply was not applied, so keeping
    /// its series is exact; a push whose reply never came (a time-out, a broken
    /// connection) may have been: kept too, so that one case is at-least-once.
    mutating func push(_ pushes: [(key: String, elements: [[UInt8]])], redis: RedisOptions) -> (unconfirmed: [Int], error: RedisError?) {
        var unconfirmed: [Int] = [], first: RedisError?
        func failed(_ i: Int, _ error: RedisError) {
            unconfirmed.append(i)
            if first == nil { first = error }
        }
        var moved: [Int] = []
        if redis.cluster.isEmpty && cluster == nil {
            do throws(RedisError) {
                let c: RedisConnection
                if let open = connection?.value { c = open } else { c = try redis.connector.connect() }
                connection = UnsafeSendable(c)
                for p in pushes { c.append([Array("LPUSH".utf8), Array(p.key.utf8)] + p.elements) }
                for i in pushes.indices {
                    do throws(RedisError) {
                        try c.reply()
                    } catch .reply(let m) where m.hasPrefix("MOVED ") || m.hasPrefix("ASK ") {
                        moved.append(i)   // a cluster node: not applied here
                    } catch .reply(let m) {
                        failed(i, .reply(m))   // not applied; the connection is fine
                    } catch {
                        connection = nil   // this and every later reply are unknown
                        for j in i..<pushes.count { failed(j, error) }
                        break
                    }
                }
            } catch {
                connection = nil
                for i in pushes.indices { failed(i, error) }
            }
            guard !moved.isEmpty else { return (unconfirmed, first) }
            connection = nil
        } else {
            moved = Array(pushes.indices)
        }
        let c = cluster?.value ?? RedisCluster(connector: redis.connector, seeds: redis.cluster.isEmpty ? redis.url.endpoints : redis.cluster)
        c.retryFor = redis.readTimeout.inSeconds
        cluster = UnsafeSendable(c)
        for i in moved {   // shards live on different nodes: one that fails leaves the others
            do throws(RedisError) {
                try c.command(key: pushes[i].key, [Array("LPUSH".utf8), Array(pushes[i].key.utf8)] + pushes[i].elements)
            } catch { failed(i, error) }   // an error reply is thrown as .reply
        }
        return (unconfirmed, first)
    }
}

/// A connection used only under `PromStreamMetrics.sending`'s lock.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
