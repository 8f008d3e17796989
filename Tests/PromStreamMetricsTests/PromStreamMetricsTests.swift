import CoreMetrics
import Foundation
import Metrics
@testable import PromStreamMetrics
import Redis
import Synchronization
import TLS
import Testing
import TestSupport

/// The buffer's decisions, as values.
@Suite struct MetricsBufferTests {
    let series = [SampleJSON(type: "counter", label: "c", dimensions: []), SampleJSON(type: "gauge", label: "g", dimensions: []),
                  SampleJSON(type: "histogram", label: "h", dimensions: [("q", "a")], buckets: [0.1, 1])]

    func text(_ b: MetricsBuffer, max: Int = 1 << 20) -> [String] {
        b.elements(series: series, shardOf: { _ in 0 }, maxElementBytes: max)[0, default: []].map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func countersSum_gaugesKeepTheLast_histogramsCountIntoTheirBuckets() {
        var b = MetricsBuffer()
        b.add(0, 1); b.add(0, 2.5); b.set(1, 7); b.set(1, 3); b.observe(2, 0.5, bounds: [0.1, 1]); b.observe(2, 2, bounds: [0.1, 1])
        b.observe(2, 0.1, bounds: [0.1, 1])   // le: 0.1 is in the first bucket
        #expect(text(b) == [#"[{"type":"counter","name":"c","value":3.5},{"type":"gauge","name":"g","value":3},"#
                            + #"{"type":"histogram","name":"h","buckets":[0.1,1],"labels":{"q":"a"},"value":2.6,"counts":[1,1,1]}]"#])
    }

    @Test func histogramBounds_areSortedAndDeduplicated() {
        let s = SampleJSON(type: "histogram", label: "h", dimensions: [], buckets: [1, .infinity, 0.5, 1, .nan])
        #expect(s.bounds == [0.5, 1])
        #expect(s.sample(3, counts: [1, 0, 2]) == #"{"type":"histogram","name":"h","buckets":[0.5,1],"value":3,"counts":[1,0,2]}"#)
    }

    @Test func nonFiniteValuesAndSumsThatWouldNotBe_areDroppedAndCounted() {
        var b = MetricsBuffer()
        b.add(0, .nan); b.set(1, .infinity); b.observe(2, .nan, bounds: [1]); b.add(0, -1)   // a counter only goes up
        b.add(0, .greatestFiniteMagnitude); b.add(0, .greatestFiniteMagnitude)
        b.observe(2, .greatestFiniteMagnitude, bounds: [1]); b.observe(2, .greatestFiniteMagnitude, bounds: [1])
        #expect(b.dropped == 6)
        #expect(b.count == 2)
        #expect(b.histograms[2] == MetricsBuffer.Buckets(counts: [0, 1], sum: .greatestFiniteMagnitude))
    }

    @Test func aFailedFlush_isRestoredUnderWhatCameSince() {
        var b = MetricsBuffer()
        b.add(0, 1); b.set(1, 1); b.observe(2, 1, bounds: [1]); b.observe(3, 5, bounds: [])
        let taken = b.take()
        #expect(b.isEmpty)
        b.add(0, 2); b.set(1, 2); b.observe(2, 2, bounds: [1]); b.observe(2, 3, bounds: [1])
        b.restore(taken)
        #expect(b.counters[0] == 3)
        #expect(b.gauges[1] == 2, "the newer gauge wins")
        #expect(b.histograms[2] == MetricsBuffer.Buckets(counts: [1, 2], sum: 6), "counts add up, nothing is capped")
        #expect(b.histograms[3] == MetricsBuffer.Buckets(counts: [1], sum: 5))
        #expect(b.dropped == 0)
    }

    @Test func aMeter_movesItsSeriesValue_acrossFlushes_andASetMovesItToo() {
        var b = MetricsBuffer()
        b.move(0, by: 3); b.move(0, by: -1)
        #expect(b.gauges[0] == 2)
        _ = b.take()
        b.move(0, by: 1)
        #expect(b.gauges[0] == 3)
        b.set(0, 10); b.move(0, by: -4)
        #expect(b.gauges[0] == 6)
        b.move(0, by: .infinity)
        #expect(b.gauges[0] == 6 && b.dropped == 1)
    }

    @Test func only_keepsTheSelectedSeriesOfEveryKind() {
        var b = MetricsBuffer()
        b.add(0, 1); b.add(1, 2); b.set(2, 3); b.set(3, 4); b.observe(4, 1, bounds: [1]); b.observe(5, 1, bounds: [1])
        let part = b.only { $0 % 2 == 1 }
        #expect(part.counters == [1: 2] && part.gauges == [3: 4] && Array(part.histograms.keys) == [5])
        #expect(b.only { _ in false }.isEmpty && b.only { _ in true }.count == b.count)
    }

    @Test func elements_splitAboveTheCap_eachAValidArray() throws {
        var b = MetricsBuffer()
        let series = (0..<300).map { SampleJSON(type: "counter", label: "c\($0)", dimensions: [("k", String(repeating: "v", count: 20))]) }
        for i in 0..<300 { b.add(i, 1) }
        let parts = b.elements(series: series, shardOf: { _ in 0 }, maxElementBytes: 4096)[0, default: []].map { String(decoding: $0, as: UTF8.self) }
        #expect(parts.count > 1)
        #expect(parts.allSatisfy { $0.utf8.count <= 4096 })
        let decoded = try parts.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [[String: Any]] }
        #expect(decoded.count == 300)
    }

    @Test(arguments: [("http.requests", "http_requests"), ("1st", "_1st"), ("a:b_c", "a:b_c"), ("ünï", "_n_"), ("", "_")])
    func labels_becomePrometheusNames(_ label: String, _ name: String) {
        #expect(SampleJSON.metricName(label) == name)
    }

    @Test func labelValues_areEscaped() {
        let s = SampleJSON(type: "counter", label: "x", dimensions: [("k.v", "a\"b\\c\n\u{1}ü")])
        #expect(s.sample(1) == #"{"type":"counter","name":"x","labels":{"k_v":"a\"b\\c\n\u0001ü"},"value":1}"#)
    }
}

/// The backend against a real redis-server and a real gateway.
@Suite(.serialized) struct PromStreamMetricsTests {
    func lpushCalls(_ redis: RedisServer) throws -> Int {
        let info = try redis.client().command("INFO", "commandstats").text ?? ""
        guard let r = info.range(of: "cmdstat_lpush:calls=") else { return 0 }
        return Int(info[r.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    /// Flushed only when a test asks, onto `shards` shards of `key`.
    static func sharded(_ shards: Int, key: String) -> PromStreamMetrics.Configuration {
        var config = PromStreamMetrics.Configuration()
        config.flushInterval = .zero
        config.shards = shards
        config.key = key
        return config
    }

    func list(_ redis: RedisServer, _ key: String) throws -> [String] {
        guard case .array(let items) = try redis.client().command("LRANGE", key, "0", "-1") else { return [] }
        return items.compactMap(\.text)
    }

    /// swift-metrics' API, bootstrapped once: every kind arrives in one LPUSH per flush.
    @Test func bootstrapped_everyKindReachesThePage_inOneRoundTrip() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        var config = PromStreamMetrics.Configuration()
        config.flushInterval = .zero
        config.buckets["swift_job_seconds"] = [0.01, 0.1, 1]
        let backend = try PromStreamMetrics(url: "redis://127.0.0.1:\(redis.port)/0", configuration: config)
        MetricsSystem.bootstrap(backend)
        let before = try lpushCalls(redis)
        for _ in 0..<100 { Counter(label: "swift_jobs_total", dimensions: [("queue", "mail")]).increment() }
        FloatingPointCounter(label: "swift_bytes_total").increment(by: 1.5)
        Gauge(label: "swift_depth").record(7)
        Gauge(label: "swift_depth").record(42)
        Meter(label: "swift_inflight").increment(by: 3)   // a handler per call, as middleware makes them: one value
        Meter(label: "swift_inflight").decrement(by: 1)
        Recorder(label: "swift_size").record(2)
        Recorder(label: "swift_last", aggregate: false).record(5)
        Recorder(label: "swift_last", aggregate: false).record(3)
        Timer(label: "swift_job_seconds").recordNanoseconds(50_000_000)
        Timer(label: "swift_job_seconds").recordNanoseconds(500_000_000)
        #expect(backend.flush() == 7, "the two timings are one histogram sample")
        #expect(try lpushCalls(redis) - before == 1)
        #expect(eventually { (try? gateway.value(#"swift_jobs_total{queue="mail"}"#)) == 100 })
        #expect(try gateway.value("swift_bytes_total") == 1.5)
        #expect(try gateway.value("swift_depth") == 42)
        #expect(try gateway.value("swift_inflight") == 2)
        #expect(try gateway.value("swift_size_count") == 1)
        #expect(try gateway.value("swift_last") == 3, "a recorder that does not aggregate is a gauge")
        #expect(try gateway.value(#"swift_job_seconds_bucket{le="0.1"}"#) == 1)
        #expect(try gateway.value("swift_job_seconds_count") == 2)
        #expect(backend.flush() == 0, "nothing new")
        Meter(label: "swift_inflight").increment(by: 1)
        #expect(backend.flush() == 1)
        #expect(eventually { (try? gateway.value("swift_inflight")) == 3 }, "a meter moves from its value before the flush")
    }

    /// The interval thread flushes without being asked; shutdown sends the rest.
    @Test func theIntervalFlushes_andShutdownSendsTheRest() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        var config = PromStreamMetrics.Configuration()
        config.flushInterval = .milliseconds(200)
        let backend = try PromStreamMetrics(url: "redis://127.0.0.1:\(redis.port)/0", configuration: config)
        let counter = backend.makeCounter(label: "swift_ticks_total", dimensions: [])
        counter.increment(by: 5)
        #expect(eventually { (try? gateway.value("swift_ticks_total")) == 5 })
        counter.increment(by: 1)
        backend.shutdown()
        #expect(eventually { (try? gateway.value("swift_ticks_total")) == 6 })
    }

    /// With shards, each series goes to the shard `gateway shard-of` names.
    @Test func shards_routeAsTheGatewaySays() throws {
        let redis = try RedisServer()
        let config = Self.sharded(4, key: "swift-sharded")
        let backend = try PromStreamMetrics(url: "redis://127.0.0.1:\(redis.port)/0", configuration: config)
        let names = ["a_total", "b_total", "c_total", "d_total", "e_total", "f_total"]
        for n in names { backend.makeCounter(label: n, dimensions: []).increment(by: 1) }
        #expect(backend.flush() == names.count)
        for n in names {
            let key = ShardRouting.queueKey("swift-sharded", shard: ShardRouting.shard(of: n, shards: 4))
            #expect(try list(redis, key).contains { $0.contains("\"name\":\"\(n)\"") }, "\(n) on \(key)")
        }
    }

    /// Redis down: counted, reported, bounded in time, kept for the next flush — which
    /// a Redis that comes up on that port then receives.
    @Test func aRedisFailure_isCountedReportedAndKept() throws {
        let redis = try RedisServer()
        redis.stop()
        var config = PromStreamMetrics.Configuration()
        config.flushInterval = .zero
        let errors = Mutex(0)
        config.onError = { _ in errors.withLock { $0 += 1 } }
        let backend = try PromStreamMetrics(url: "redis://127.0.0.1:\(redis.port)/0", configuration: config)
        backend.makeCounter(label: "swift_kept_total", dimensions: []).increment(by: 3)
        let start = Date()
        #expect(backend.flush() == 0)
        #expect(Date().timeIntervalSince(start) < 5, "bounded by the time-outs")
        #expect(backend.failures == 1)
        #expect(errors.withLock { $0 } == 1)
        try redis.restart()
        #expect(eventually { backend.flush() == 1 })
        #expect(try list(redis, ShardRouting.defaultQueueKey).contains { $0.contains(#""value":3"#) })
    }

    /// An error reply (here `WRONGTYPE`; Redis at `maxmemory` answers `OOM` alike) is a
    /// failure, and only the shard it answered is kept: the shards Redis took are not sent
    /// again (that would count them twice). On one Redis (pipelined) and on a cluster.
    @Test(arguments: [false, true])
    func anErrorReply_keepsOnlyItsShard_andTheOthersAreSentOnce(cluster: Bool) throws {
        let set = cluster ? try RedisClusterSet() : nil
        let single = cluster ? nil : try RedisServer()
        let servers = set?.servers ?? [single!]
        /// On the node that holds the key's slot (the others answer MOVED).
        func run(_ args: String...) throws -> RedisValue {
            for server in servers {
                do { return try server.client().command(contentsOf: args) } catch RedisError.reply(let m) where m.hasPrefix("MOVED") { continue }
            }
            throw RedisError.reply("no node holds \(args[1])")
        }
        var config = Self.sharded(4, key: "swift-partial")
        let errors = Mutex<[String]>([])
        config.onError = { e in errors.withLock { $0.append("\(e)") } }
        let url = try RedisURL.parse("redis://127.0.0.1:\(servers[0].port)/0").get()
        let seeds = cluster ? servers.map { RedisEndpoint(host: "127.0.0.1", port: $0.port) } : []
        let backend = PromStreamMetrics(redis: RedisOptions(url: url, cluster: seeds, connectTimeout: .seconds(2), readTimeout: .seconds(2)),
                                        configuration: config)
        let (good, bad) = ("a_total", "b_total")
        let (goodKey, badKey) = (ShardRouting.queueKey(config.key, shard: ShardRouting.shard(of: good, shards: 4)),
                                 ShardRouting.queueKey(config.key, shard: ShardRouting.shard(of: bad, shards: 4)))
        #expect(goodKey != badKey)
        _ = try run("SET", badKey, "not a list")
        backend.makeCounter(label: good, dimensions: []).increment(by: 1)
        backend.makeCounter(label: bad, dimensions: []).increment(by: 2)
        #expect(backend.flush() == 1, "the good shard's series was taken")
        #expect(backend.failures == 1 && errors.withLock { $0.count == 1 && $0[0].contains("WRONGTYPE") })
        _ = try run("DEL", badKey)
        #expect(backend.flush() == 1, "only the failed shard's series is sent again")
        func length(_ key: String) throws -> Int { if case .integer(let n) = try run("LLEN", key) { return Int(n) }; return -1 }
        #expect(try length(goodKey) == 1, "sent once, not twice")
        #expect(try length(badKey) == 1)
        #expect(backend.flush() == 0 && backend.failures == 1)
    }

    /// A url naming one node of a Redis Cluster: the first MOVED tells the backend it is a
    /// cluster, and every shard reaches its node — in that flush and the ones after.
    @Test func aUrlOfOneClusterNode_findsTheCluster() throws {
        let set = try RedisClusterSet()
        let config = Self.sharded(8, key: "swift-found")
        let backend = try PromStreamMetrics(url: "redis://127.0.0.1:\(set.servers[0].port)/0", configuration: config)
        let names = (0..<8).map { "n\($0)_total" }
        for round in 1...2 {
            for n in names { backend.makeCounter(label: n, dimensions: []).increment(by: 1) }
            #expect(backend.flush() == names.count && backend.failures == 0, "round \(round)")
        }
        var lengths: [String: Int] = [:]
        for n in names {
            let key = ShardRouting.queueKey(config.key, shard: ShardRouting.shard(of: n, shards: 8))
            for server in set.servers {
                if case .integer(let l) = try? server.client().command("LLEN", key) { lengths[key] = Int(l) }
            }
        }
        #expect(Set(lengths.values) == [2], "each shard's list holds one element per flush, on its node: \(lengths)")
        #expect(Set(lengths.keys).count > 1, "the names spread over several shards")
    }

    /// rediss:// with a private CA, as the gateway's stages take it: the samples cross TLS twice
    /// (client → Redis → gateway) and arrive exact; without the CA the flush fails, counted and kept.
    @Test func overTLS_withThePrivateCA_reachesAGatewayOnTheSameRedis() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs)
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "rediss://localhost:\(redis.port)",
                                                       "Redis__TlsCaFile": certs.caFile])
        var config = PromStreamMetrics.Configuration()
        config.flushInterval = .zero
        let url = try RedisURL.parse("rediss://localhost:\(redis.port)/0").get()
        let untrusted = PromStreamMetrics(redis: RedisOptions(url: url, tls: TLSClientSettings(caFile: certs.otherCAFile),
                                                              connectTimeout: .seconds(2), readTimeout: .seconds(2)), configuration: config)
        untrusted.makeCounter(label: "swift_tls_total", dimensions: []).increment(by: 1)
        #expect(untrusted.flush() == 0 && untrusted.failures == 1, "a server its CA did not sign")
        let backend = PromStreamMetrics(redis: RedisOptions(url: url, tls: TLSClientSettings(caFile: certs.caFile),
                                                            connectTimeout: .seconds(2), readTimeout: .seconds(2)), configuration: config)
        backend.makeCounter(label: "swift_tls_total", dimensions: [("via", "tls")]).increment(by: 2)
        backend.makeTimer(label: "swift_tls_seconds", dimensions: []).recordNanoseconds(20_000_000)
        #expect(backend.flush() == 2)
        #expect(eventually { (try? gateway.value(#"swift_tls_total{via="tls"}"#)) == 2 && (try? gateway.value("swift_tls_seconds_count")) == 1 })
    }
}
