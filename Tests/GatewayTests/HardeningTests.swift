import Foundation
import Synchronization
import Testing
import TestSupport

/// Outages and shutdown, against real redis-servers and the gateway binary.
@Suite struct HardeningTests {
    /// Parses `key=value` fields of the gateway's last `stopped` log line.
    func stoppedFields(_ log: String) -> [String: Int] {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("stopped") && $0.contains("popped=") }) else { return [:] }
        var out: [String: Int] = [:]
        for part in line.split(separator: " ") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2, let v = Int(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }

    @Test func sigterm_during1MillionBacklog_appliesEverythingPoppedAndExitsZeroWithin5s() throws {
        let redis = try RedisServer()
        let (status, output) = try runCommand(GatewayProcess.binary, ["loadgen", "--redis", "127.0.0.1:\(redis.port)", "--count", "1000000", "--quiet"])
        #expect(status == 0, "\(output)")
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "LOG_LEVEL": "info"])
        #expect(eventually { ((try? redis.llen()) ?? 1_000_000) < 900_000 })
        let (exit, seconds) = gateway.terminate()
        #expect(exit == 0)
        #expect(seconds < 5, "took \(seconds) s to drain and stop")
        let f = stoppedFields(gateway.log)
        let popped = try #require(f["popped"]), processed = try #require(f["processed"]), dropped = try #require(f["dropped"])
        #expect(popped == processed + dropped, "popped \(popped), processed \(processed), dropped \(dropped)")
        #expect(popped + (try redis.llen()) == 1_000_000)
        #expect(popped < 1_000_000, "the gateway should have been stopped mid-backlog")
    }

    @Test func redisKilledAndRestartedRepeatedly_losesNothingAcknowledgedButTheInFlightPops() throws {
        let redis = try RedisServer(args: ["--appendonly", "yes", "--appendfsync", "always"])
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        let stop = Atomic<Bool>(false)
        let acked = Atomic<Int>(0), attempted = Atomic<Int>(0)
        let port = redis.port
        let producer = OSThreadRunner {
            let sample = #"{"type":"counter","name":"acked_total","value":1}"#
            while !stop.load(ordering: .relaxed) {
                guard let c = try? RedisConnectionFactory.connect(port: port) else { usleep(50_000); continue }
                while !stop.load(ordering: .relaxed) {
                    attempted.add(20, ordering: .relaxed)
                    guard (try? c.lpush(Array(repeating: sample, count: 20))) != nil else { break }
                    acked.add(20, ordering: .relaxed)
                    usleep(2_000)
                }
            }
        }
        var outages = 0
        var slowestNotReady = 0.0, slowestReady = 0.0
        for _ in 0..<4 {
            Thread.sleep(forTimeInterval: 1.0)
            redis.stop()
            outages += 1
            let down = Date()
            #expect(eventually(timeout: 5) { (try? httpGet(port: gateway.port, path: "/ready", timeout: 1).status) == 503 })
            slowestNotReady = max(slowestNotReady, Date().timeIntervalSince(down))
            #expect(try httpGet(port: gateway.port, path: "/metrics").status == 200)
            Thread.sleep(forTimeInterval: 0.3)
            try redis.restart()
            let up = Date()
            #expect(eventually(timeout: 5) { (try? httpGet(port: gateway.port, path: "/ready", timeout: 1).status) == 200 })
            slowestReady = max(slowestReady, Date().timeIntervalSince(up))
        }
        stop.store(true, ordering: .relaxed)
        producer.join()
        #expect(eventually(timeout: 15) { (try? redis.llen()) == 0 })
        let a = acked.load(ordering: .relaxed), t = attempted.load(ordering: .relaxed)
        func lost() -> Int { Int((try? gateway.value(#"prom_stream_gateway_redis_lost_pop_replies_total{queueKey="prom-stream-gateway:metric-queue"}"#)) ?? 0) }
        func appliedNow() -> Int { Int((try? gateway.value("acked_total")) ?? 0) }
        // What was popped reaches the sink soon after the list is empty: wait for it, generously.
        _ = eventually(timeout: 10) { appliedNow() >= a - lost() * 400 }
        let applied = appliedNow(), lostReplies = lost()
        print("outages=\(outages) acked=\(a) attempted=\(t) applied=\(applied) lost_pop_replies=\(lostReplies) missing=\(max(0, a - applied)) ready_lag<=\(String(format: "%.2f", slowestReady))s not_ready_lag<=\(String(format: "%.2f", slowestNotReady))s")
        #expect(applied <= t, "applied more than was ever pushed: a duplicate")
        // Only elements whose pop reply died with the connection may be missing (≤ max_pop_count, 400, per lost reply).
        #expect(applied >= a - lostReplies * 400, "lost \(a - applied) acknowledged samples beyond \(lostReplies) lost pop replies")
        #expect(gateway.process.isRunning)
        #expect(gateway.terminate().status == 0)
    }

    @Test func slowRedis_timesOutReconnectsAndKeepsServing() throws {
        let redis = try RedisServer(args: ["--enable-debug-command", "yes"])
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("slow-\(UUID().uuidString).yaml")
        try """
        sources:
          queue: { type: redis_list, url: "\(redis.url)", read_timeout: 1s, block_timeout: 200ms, max_backoff: 200ms }
        transforms:
          decode: { type: json_decode, inputs: [queue] }
        sinks:
          prometheus: { type: prometheus, inputs: [decode], listen: "${GATEWAY_LISTEN}" }
        """.write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let gateway = try GatewayProcess(args: ["--config", config.path])
        let admin = try redis.client()
        admin.append([Array("DEBUG".utf8), Array("SLEEP".utf8), Array("2.5".utf8)])
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try httpGet(port: gateway.port, path: "/metrics").status == 200)   // serving while Redis is stuck
        _ = try admin.withReply { _ in 0 }
        try redis.push([#"{"type":"gauge","name":"after_sleep","value":1}"#])
        #expect(eventually(timeout: 10) { (try? gateway.value("after_sleep")) == 1 })
        #expect(gateway.log.contains("lost Redis connection"))
        #expect(gateway.process.isRunning)
        #expect(gateway.terminate().status == 0)
    }
}
