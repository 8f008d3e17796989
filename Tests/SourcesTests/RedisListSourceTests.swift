import Foundation
import Logging
import Pipeline
import Redis
import Sources
import Testing
import TestSupport

let registry: StageRegistry = [RedisListConfig.self, CollectPayloadsSinkConfig.self]

/// Starts a redis_list → collector pipeline against `url`.
func startPipeline(url: String, key: String, options: String = "", blockTimeout: String = "200ms") throws -> PipelineRuntime {
    let spec = try PipelineSpec.load(yaml: """
        sources:
          queue: { type: redis_list, url: "\(url)", key: "q", block_timeout: \(blockTimeout) \(options) }
        sinks:
          out: { type: test_collect_payloads, inputs: [queue], key: \(key) }
        """, environment: [:], registry: registry)
    let runtime = try PipelineRuntime(spec: spec, logger: Logger(label: "test"))
    try runtime.start()
    return runtime
}

func metaValue(_ runtime: PipelineRuntime, _ name: String) -> Double {
    runtime.telemetry.collect().first { $0.name == "prom_stream_gateway_" + name }?.samples.reduce(0) { $0 + $1.value } ?? -1
}

@Suite struct RedisListSourceTests {
    @Test func pushedElements_arriveInPushOrder_withSeveralPopsInFlight() throws {
        let redis = try RedisServer()
        let key = uniqueKey()
        let values = (0..<5000).map { "v\($0)" }
        try redis.push(values, key: "q")
        let runtime = try startPipeline(url: redis.url, key: key, options: ", workers: 4, pop_count: 7, batch_size: 50")
        #expect(eventually { TestRegistry.shared.values(key).count == 5000 })
        runtime.stop(); runtime.wait()
        #expect(TestRegistry.shared.values(key).map(\.0) == values)
        #expect(try redis.llen("q") == 0)
        #expect(metaValue(runtime, "redis_popped_elements_total") == 5000)
    }

    /// Small elements are popped up to `max_pop_count` at a time (64 KiB replies), not `pop_count`:
    /// fewer commands for Redis, which shares the machine. `max_pop_count: 25` keeps the .NET gateway's pops.
    @Test(arguments: [("", 20...100), (", max_pop_count: 25", 400...500)])
    func smallElements_arePoppedManyAtATime_upToMaxPopCount(_ option: String, _ pops: ClosedRange<Int>) throws {
        let redis = try RedisServer()
        let key = uniqueKey()
        let values = (0..<10_000).map { "{\"name\":\"requests_total\",\"type\":\"counter\",\"value\":1,\"n\":\($0)}" }
        try redis.push(values, key: "q")
        let runtime = try startPipeline(url: redis.url, key: key, options: ", pop_count: 25\(option)")
        #expect(eventually { TestRegistry.shared.values(key).count == values.count })
        runtime.stop(); runtime.wait()
        #expect(TestRegistry.shared.values(key).map(\.0) == values)
        // RPOP and BLMPOP calls: 10 000 elements of ~70 bytes in pops of 400 (max_pop_count; 512 fit 64 KiB), or of 25.
        let info = try redis.client().command("INFO", "commandstats").text ?? ""
        func calls(_ command: String) -> Int {
            guard let r = info.range(of: "cmdstat_\(command):calls=") else { return 0 }
            return Int(info[r.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        #expect(pops.contains(calls("rpop") + calls("blmpop")), "\(calls("rpop")) RPOPs, \(calls("blmpop")) BLMPOPs")
    }

    @Test func elementBytes_arriveExactly_whetherEmptyHugeOrBinary_fromRPOPAndBLMPOP() throws {
        let redis = try RedisServer()
        let key = uniqueKey()
        // Larger than hiredis' 16 KiB read, so elements span reads; CR LF and NUL inside.
        let odd = ["", String(repeating: "x", count: 100_000), "a\r\n$3\r\nb\u{0}c", "é", "*1\r\n"]
        try redis.push(odd, key: "q")
        let runtime = try startPipeline(url: redis.url, key: key, options: ", pop_count: 2")
        #expect(eventually { TestRegistry.shared.values(key).count == odd.count })
        // Now the list is empty and the source waits in BLMPOP.
        Thread.sleep(forTimeInterval: 0.3)
        try redis.push(odd, key: "q")
        #expect(eventually { TestRegistry.shared.values(key).count == 2 * odd.count })
        runtime.stop(); runtime.wait()
        #expect(TestRegistry.shared.values(key).map(\.0) == odd + odd)
    }

    @Test func elementsOfEverySize_arriveExactly_thoughTheReaderIsFedInChunks() throws {
        // The connection feeds hiredis 4 KiB of each 64 KiB read at a time: chunk edges fall
        // inside elements, inside their RESP headers and between pipelined replies.
        let redis = try RedisServer()
        let key = uniqueKey()
        let values = (0..<3000).map { i in "\(i):" + String(repeating: Character(UnicodeScalar(97 + i % 26)!), count: i * 37 % 9000) }
        try redis.push(values, key: "q")
        let runtime = try startPipeline(url: redis.url, key: key, options: ", workers: 2, pop_count: 25")
        #expect(eventually { TestRegistry.shared.values(key).count == values.count })
        runtime.stop(); runtime.wait()
        #expect(TestRegistry.shared.values(key).map(\.0) == values)
    }

    @Test func emptyList_blocksInRedisInsteadOfSpinning() throws {
        let redis = try RedisServer()
        let key = uniqueKey()
        let runtime = try startPipeline(url: redis.url, key: key)
        Thread.sleep(forTimeInterval: 1.2)
        try redis.push(["late"], key: "q")
        #expect(eventually(timeout: 2) { TestRegistry.shared.values(key).count == 1 })
        runtime.stop(); runtime.wait()
        // BLMPOP with a 200 ms block: about 5 empty pops a second, plus the first RPOPs.
        let empty = metaValue(runtime, "redis_queue_empty_pops_total")
        #expect(empty >= 2 && empty < 20, "empty pops: \(empty)")
    }

    @Test func redisRestartedMidStream_reconnectsAndContinues() throws {
        let redis = try RedisServer()
        let key = uniqueKey()
        try redis.push((0..<100).map { "a\($0)" }, key: "q")
        let runtime = try startPipeline(url: redis.url, key: key, options: ", max_backoff: 200ms")
        #expect(eventually { TestRegistry.shared.values(key).count == 100 })
        #expect(runtime.health.allReady)
        redis.stop()
        #expect(eventually(timeout: 5) { !runtime.health.allReady })
        Thread.sleep(forTimeInterval: 0.5)
        try redis.restart()
        #expect(eventually(timeout: 5) { runtime.health.allReady })
        try redis.push((0..<100).map { "b\($0)" }, key: "q")
        #expect(eventually { TestRegistry.shared.values(key).count == 200 })
        runtime.stop(); runtime.wait()
        #expect(metaValue(runtime, "redis_reconnects_total") >= 1)
        #expect(runtime.phase == .stopped)
    }

    @Test func unreachableAtStartup_retriesUntilRedisAppears() throws {
        let redis = try RedisServer()
        redis.stop()
        let key = uniqueKey()
        let runtime = try startPipeline(url: redis.url, key: key, options: ", max_backoff: 200ms")
        #expect(eventually { runtime.health.snapshot.first?.detail.contains("127.0.0.1:\(redis.port)/0: connection") == true })
        #expect(!runtime.health.allReady)
        try redis.restart()
        try redis.push(["x"], key: "q")
        #expect(eventually { TestRegistry.shared.values(key).count == 1 })
        runtime.stop(); runtime.wait()
    }

    @Test func aclUser_authenticatesFromTheURL_andBadPasswordIsNotReady() throws {
        let redis = try RedisServer(args: ["--user", "default", "off", "--user", "alice", "on", ">s3cret", "~*", "&*", "+@all"])
        let admin = try redis.client()
        try admin.command("AUTH", "alice", "s3cret")
        admin.append([Array("LPUSH".utf8), Array("q".utf8), Array("hello".utf8)])
        _ = try admin.withReply { _ in 0 }

        let good = uniqueKey()
        let runtime = try startPipeline(url: "redis://alice:s3cret@127.0.0.1:\(redis.port)/0", key: good)
        #expect(eventually { TestRegistry.shared.values(good).map(\.0) == ["hello"] })
        runtime.stop(); runtime.wait()

        let bad = try startPipeline(url: "127.0.0.1:\(redis.port),user=alice,password=wrong", key: uniqueKey(), options: ", max_backoff: 100ms")
        #expect(eventually { bad.health.snapshot.first?.detail.contains("authentication failed: WRONGPASS") == true })
        #expect(!bad.health.allReady)
        let detail = bad.health.snapshot.first?.detail ?? ""
        #expect(!detail.contains("Redis replied"), "the reply is said once: \(detail)")
        bad.stop(); bad.wait()
        #expect(bad.phase == .stopped)
    }

    @Test func requirepassAndDatabase_fromTheDotNetForm() throws {
        let redis = try RedisServer(args: ["--requirepass", "pw"])
        let c = try redis.client()
        try c.command("AUTH", "pw")
        try c.command("SELECT", "3")
        try c.command("LPUSH", "q", "in-db-3")
        let key = uniqueKey()
        let runtime = try startPipeline(url: "127.0.0.1:\(redis.port),password=pw,defaultDatabase=3,abortConnect=false", key: key)
        #expect(eventually { TestRegistry.shared.values(key).map(\.0) == ["in-db-3"] })
        runtime.stop(); runtime.wait()
    }

    @Test func wrongTypeKey_isCountedAndRetriedWithoutCrashing() throws {
        let redis = try RedisServer()
        let c = try redis.client()
        try c.command("SET", "q", "not a list")
        let key = uniqueKey()
        let runtime = try startPipeline(url: redis.url, key: key)
        #expect(eventually(timeout: 3) { metaValue(runtime, "redis_errors_total") >= 1 })
        try c.command("DEL", "q")
        try redis.push(["ok"], key: "q")
        #expect(eventually(timeout: 5) { TestRegistry.shared.values(key).map(\.0) == ["ok"] })
        runtime.stop(); runtime.wait()
    }

    @Test func popsThatKeepFailing_makeTheSourceNotReadyUntilTheySucceed() throws {
        let redis = try RedisServer()
        let c = try redis.client()
        try c.command("SET", "q", "not a list")
        let key = uniqueKey()
        let runtime = try startPipeline(url: redis.url, key: key)
        #expect(eventually { runtime.health.snapshot.first?.detail.contains("WRONGTYPE") == true })
        #expect(!runtime.health.allReady)
        try c.command("DEL", "q")
        try redis.push(["ok"], key: "q")
        #expect(eventually { runtime.health.allReady && TestRegistry.shared.values(key).count == 1 })
        runtime.stop(); runtime.wait()
    }

    @Test func aclUserWithoutAccessToTheKey_isNotReady() throws {
        let redis = try RedisServer(args: ["--user", "default", "off", "--user", "bob", "on", ">pw", "~other:*", "&*", "+@all"])
        let runtime = try startPipeline(url: "redis://bob:pw@127.0.0.1:\(redis.port)/0", key: uniqueKey())
        #expect(eventually { runtime.health.snapshot.first?.detail.contains("NOPERM") == true })
        #expect(!runtime.health.allReady)
        runtime.stop(); runtime.wait()
    }

    @Test func blockedPopEndedByACleanShutdown_isNotALostReply() throws {
        let redis = try RedisServer()
        let runtime = try startPipeline(url: redis.url, key: uniqueKey(), options: ", max_backoff: 200ms", blockTimeout: "2s")
        #expect(eventually { runtime.health.allReady && metaValue(runtime, "redis_queue_empty_pops_total") >= 1 })
        let c = try redis.client()
        c.append("SHUTDOWN", "NOSAVE")
        _ = try? c.withReply { _ in 0 }
        #expect(eventually { !runtime.health.allReady })
        runtime.stop(); runtime.wait()
        #expect(metaValue(runtime, "redis_lost_pop_replies_total") == 0)
    }

    @Test func silentServer_isReportedAsATimeout() throws {
        // A listener that accepts and never answers.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let port = freePort()
        addr.sin_port = UInt16(port).bigEndian
        _ = withUnsafePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 8)
        let runtime = try startPipeline(url: "127.0.0.1:\(port)", key: uniqueKey(), options: ", read_timeout: 300ms", blockTimeout: "100ms")
        #expect(eventually { runtime.health.snapshot.first?.detail.contains("time-out") == true }, "\(runtime.health.snapshot)")
        #expect(runtime.health.snapshot.first?.detail.contains("temporarily unavailable") == false)
        runtime.stop(); runtime.wait()
    }

    @Test func stop_emitsWhatWasAlreadyPopped() throws {
        let redis = try RedisServer()
        let key = uniqueKey()
        try redis.push((0..<20000).map { "p\($0)" }, key: "q")
        let runtime = try startPipeline(url: redis.url, key: key, options: ", pop_count: 100, workers: 4")
        #expect(eventually { TestRegistry.shared.values(key).count > 0 })
        runtime.stop(); runtime.wait()
        let got = TestRegistry.shared.values(key).count
        #expect(got + (try redis.llen("q")) == 20000)
        #expect(Double(got) == metaValue(runtime, "redis_popped_elements_total"))
    }
}

@Suite struct RedisURLTests {
    static func url(_ host: String = "localhost", _ port: Int = 6379, _ change: (inout RedisURL) -> Void = { _ in }) -> RedisURL {
        var u = RedisURL(host: host, port: port)
        change(&u)
        return u
    }

    @Test(arguments: [
        ("localhost:6379", url()),
        ("redis", url("redis")),
        ("redis://10.0.0.1:7000/2", url("10.0.0.1", 7000) { $0.database = 2 }),
        ("redis://:p%40ss@h:1", url("h", 1) { $0.password = "p@ss" }),
        ("redis://u:p@h:1/0", url("h", 1) { $0.user = "u"; $0.password = "p" }),
        ("redis://h", url("h")),
        ("redis://[::1]:6380", url("::1", 6380)),
        ("rediss://u:p@cache.example:6379/3", url("cache.example") { $0.tls = true; $0.user = "u"; $0.password = "p"; $0.database = 3 }),
        ("rediss://h", url("h") { $0.tls = true }),
        ("cache:6380,password=x,defaultDatabase=4", url("cache", 6380) { $0.password = "x"; $0.database = 4 }),
        ("cache:6380, user=u ,password=x=y,abortConnect=false,connectTimeout=100",
         url("cache", 6380) { $0.user = "u"; $0.password = "x=y"; $0.ignoredKeys = ["abortConnect"]; $0.connectTimeout = .milliseconds(100) }),
        // Keys are case-insensitive, as StackExchange.Redis reads them; ssl=true's default port is 6380.
        ("my.redis.cache.windows.net,SSL=True,Password=k,SslHost=my.redis.cache.windows.net,SYNCTIMEOUT=3000",
         url("my.redis.cache.windows.net", 6380) { $0.tls = true; $0.password = "k"; $0.sslHost = "my.redis.cache.windows.net"; $0.syncTimeout = .milliseconds(3000) }),
        ("s1,s2:26380,serviceName=mymaster", url("s1", 26379) {
            $0.endpoints.append(RedisEndpoint(host: "s2", port: 26380)); $0.serviceName = "mymaster" }),
        ("a:1,b:2,a:1,keepAlive=60,sslProtocols=Tls12|Tls13,allowAdmin=true,$INFO=,name=w", url("a", 1) {
            $0.endpoints.append(RedisEndpoint(host: "b", port: 2)); $0.keepAlive = 60; $0.tlsVersions = .tls12 ... .tls13
            $0.ignoredKeys = ["allowAdmin", "$INFO"]; $0.clientName = "w" }),
    ] as [(String, RedisURL)])
    func connectionString_parses(_ text: String, _ expected: RedisURL) throws {
        #expect(try RedisURL.parse(text).get() == expected)
    }

    @Test func clientName_comesFromTheDotNetForm() throws {
        #expect(try RedisURL.parse("h:1,name=worker-7").get().clientName == "worker-7")
    }

    @Test func everyStackExchangeKey_isKnown() throws {
        for (key, _) in RedisURL.connectionStringKeys {
            let value = ["ssl": "true", "sslProtocols": "Tls12", "defaultDatabase": "1", "connectTimeout": "5", "syncTimeout": "5", "keepAlive": "5"][key] ?? "x"
            #expect(throws: Never.self) { try RedisURL.parse("h:1,\(key)=\(value)").get() }
            #expect(throws: Never.self) { try RedisURL.parse("h:1,\(key.uppercased())=\(value)").get() }
        }
    }

    @Test(arguments: [
        ("h:notaport", "bad port"), ("redis://h:1/x", "database must be"), ("h:1,defaultDatabase=-1", "defaultDatabase must"),
        (",password=x", "no host:port"), ("http://127.0.0.1:6391", "unsupported scheme `http://`"), ("tcp://h:1", "unsupported scheme"),
        ("h:1,sll=true", "unknown connection-string key `sll`; did you mean `ssl`?"), ("h:1,ssl=yes", "ssl must be true or false"),
        ("h:1,connectTimeout=0", "connectTimeout must be a positive number of milliseconds"), ("h:1,sslProtocols=Tls11", "sslProtocols: unsupported `Tls11`"),
    ])
    func badConnectionString_isRejectedNamingTheKey(_ text: String, _ message: String) {
        switch RedisURL.parse(text) {
        case .success(let u): Issue.record("accepted \(text) as \(u)")
        case .failure(let e): #expect(e.description.contains(message), "\(e)")
        }
    }
}
