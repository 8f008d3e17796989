import Foundation
import Pipeline
@testable import Aggregation
import Redis
import Sources
import Synchronization
import Testing
import TestSupport

/// Exactly-once from the queue into aggregates that survive crashes: `gateway run`
/// with `Metrics__StateFile` against a real Redis, killed with SIGKILL at each
/// crash point and at random moments.
@Suite struct DurabilityTests {
    static let key = RedisListConfig.defaultKey

    func environment(_ redis: RedisServer, _ dir: URL, fault: String? = nil) -> [String: String] {
        var env = ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Metrics__StateFile": dir.appendingPathComponent("state").path,
                   "Metrics__SnapshotInterval": "300ms", "Gateway__Instance": "test"]
        if let fault { env["PSG_FAULT"] = fault }
        return env
    }

    func tempDir() throws -> URL { try makeTemporaryDirectory("state") }

    /// Runs `gateway run` until the fault point kills it; returns its status.
    func runUntilKilled(_ env: [String: String]) throws -> (reason: Process.TerminationReason, status: Int32) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: GatewayProcess.binary)
        p.arguments = ["run", "--listen", "127.0.0.1:0"]
        var e = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        for (k, v) in env { e[k] = v }
        p.environment = e
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(30)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); return (.exit, -1) }
        return (p.terminationReason, p.terminationStatus)
    }

    func counters(_ n: Int, value: Int = 1) -> [String] {
        (0..<n).map { i in #"{"type":"counter","name":"c_total","value":\#(value),"labels":{"k":"\#(i % 7)"}}"# }
    }

    func total(_ gateway: GatewayProcess, _ name: String) throws -> Double {
        try gateway.metrics().split(separator: "\n").filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            .compactMap { Double($0.split(separator: " ").last!) }.reduce(0, +)
    }

    @Test(arguments: ["after_pop", "after_apply", "snapshot_mid_write", "snapshot_after_segment", "snapshot_before_rename",
                      "snapshot_after_rename"])
    func crashAtEachPoint_losesNothingAndCountsNothingTwice(_ point: String) throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try redis.push(counters(300))
        let crashed = try runUntilKilled(environment(redis, dir, fault: point))
        #expect(crashed.reason == .uncaughtSignal && crashed.status == SIGKILL, "the fault point \(point) was reached")
        try redis.push(counters(200))
        let gateway = try GatewayProcess(environment: environment(redis, dir))
        #expect(eventually(timeout: 20) { (try? total(gateway, "c_total")) == 500 }, "\((try? gateway.metrics()) ?? "")")
        // Once a snapshot holds everything, the processing list is empty.
        #expect(eventually(timeout: 10) { (try? redis.llen(Self.key + ":processing:test")) == 0 })
        #expect(try total(gateway, "c_total") == 500)
        #expect(gateway.terminate().status == 0)
        // A graceful stop wrote a final snapshot: a restart continues from it.
        let again = try GatewayProcess(environment: environment(redis, dir))
        #expect(eventually { (try? total(again, "c_total")) == 500 })
    }

    /// A processing list replayed page by page (one element, then `batch_size`), killed after the
    /// second page, then restarted: every element counted once.
    @Test func crashBetweenReplayPages_losesNothingAndCountsNothingTwice() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try redis.push(counters(3000), key: Self.key + ":processing:test")
        let crashed = try runUntilKilled(environment(redis, dir, fault: "after_replay_page:2"))
        #expect(crashed.reason == .uncaughtSignal && crashed.status == SIGKILL, "the fault point was reached")
        try redis.push(counters(200))
        let gateway = try GatewayProcess(environment: environment(redis, dir))
        #expect(eventually(timeout: 20) { (try? total(gateway, "c_total")) == 3200 }, "\((try? gateway.metrics()) ?? "")")
        #expect(eventually(timeout: 10) { (try? redis.llen(Self.key + ":processing:test")) == 0 })
        #expect(try total(gateway, "c_total") == 3200)
        #expect(gateway.terminate().status == 0)
    }

    /// A crash inside a later snapshot, one that keeps the idle family's parts where
    /// the first wrote them and writes only what changed: nothing lost, nothing twice.
    @Test(arguments: ["snapshot_mid_write:3", "snapshot_after_segment:2", "snapshot_before_rename:2", "snapshot_after_rename:2"])
    func crashInAnIncrementalSnapshot_losesNothingAndCountsNothingTwice(_ point: String) throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let idle = (0..<10_000).map { i in #"{"type":"counter","name":"idle_total","value":1,"labels":{"i":"\#(i)"}}"# }
        try redis.push(idle + counters(100))
        let pushed = Mutex(100)
        let stop = Atomic<Bool>(false)
        let port = redis.port, ten = counters(10).map { Array($0.utf8) }
        let producer = OSThread.spawn(name: "producer") {
            guard let c = try? RedisConnection(host: "127.0.0.1", port: port, timeout: 1, readTimeout: 5) else { return }
            while !stop.load(ordering: .relaxed) {
                usleep(50_000)
                c.append([Array("LPUSH".utf8), Array(Self.key.utf8)] + ten)
                guard (try? c.withReply({ _ in 0 })) != nil else { break }
                pushed.withLock { $0 += 10 }
            }
        }
        let crashed = try runUntilKilled(environment(redis, dir, fault: point))
        stop.store(true, ordering: .relaxed)
        producer.join()
        #expect(crashed.reason == .uncaughtSignal && crashed.status == SIGKILL, "the fault point \(point) was reached")
        let manifest = try StateManifest.decode(try #require(try StateFile.read(dir.appendingPathComponent("state").path)))
        #expect(manifest.entries.contains { $0.name == Array("idle_total".utf8) }, "an earlier snapshot was on disk")
        let gateway = try GatewayProcess(environment: environment(redis, dir))
        let total = pushed.withLock { $0 }
        #expect(eventually(timeout: 20) { (try? self.total(gateway, "c_total")) == Double(total) }, "\(point): pushed \(total)")
        #expect(try self.total(gateway, "idle_total") == 10_000)
        #expect(eventually(timeout: 10) { (try? redis.llen(Self.key + ":processing:test")) == 0 })
        let after = try StateManifest.decode(try #require(try StateFile.read(dir.appendingPathComponent("state").path)))
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("state.seg.") }.sorted()
        #expect(onDisk == after.segments.map { "state.seg.\($0.id)" }.sorted(), "no segment left behind")
    }

    @Test func killedAtRandomMomentsTenTimes_everyAggregateIsExact() throws {
        let redis = try RedisServer(args: ["--appendonly", "yes", "--appendfsync", "always"])
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pushed = Mutex((counter: 0, gauge: 0, histogram: 0, summary: 0, histogramLow: 0))
        let stop = Atomic<Bool>(false)
        let port = redis.port
        let producer = OSThread.spawn(name: "producer") {
            guard let c = try? RedisConnection(host: "127.0.0.1", port: port, timeout: 1, readTimeout: 5) else { return }
            var n = 0
            while !stop.load(ordering: .relaxed) {
                n += 1
                let v = Double(n % 10) / 10   // half of the observations at or below 0.4
                let batch = [
                    #"{"type":"counter","name":"r_total","value":1}"#,
                    #"{"type":"gauge","name":"r_gauge","value":\#(n)}"#,
                    #"{"type":"histogram","name":"r_seconds","value":\#(v),"buckets":[0.45]}"#,
                    #"{"type":"summary","name":"r_bytes","value":\#(n),"quantiles":[0.5],"epsilons":[0.05]}"#,
                    #"{"type":"histogram","name":"r_binned_seconds","value":2.5,"buckets":[1,2],"counts":[1,0,2]}"#,   // sender-counted
                ]
                c.append([Array("LPUSH".utf8), Array(Self.key.utf8)] + batch.map { Array($0.utf8) })
                guard (try? c.withReply({ _ in 0 })) != nil else { break }
                pushed.withLock { p in
                    p.counter += 1; p.gauge = n; p.histogram += 1; p.summary += 1
                    if v <= 0.45 { p.histogramLow += 1 }
                }
                usleep(300)
            }
        }
        var kills = 0
        for k in 0..<10 {
            // Both parsers, alternately: what one snapshot holds the other continues.
            let parser = ["Metrics__JsonParser": k % 2 == 0 ? "simdjson" : "jansson"]
            let gateway = try GatewayProcess(environment: environment(redis, dir).merging(parser) { $1 })
            usleep(UInt32.random(in: 200_000...900_000))
            kill(gateway.process.processIdentifier, SIGKILL)
            gateway.process.waitUntilExit()
            kills += 1
        }
        stop.store(true, ordering: .relaxed)
        producer.join()
        let p = pushed.withLock { $0 }
        let gateway = try GatewayProcess(environment: environment(redis, dir))
        #expect(eventually(timeout: 30) { (try? gateway.value("r_total")) == Double(p.counter) }, "pushed \(p.counter): \((try? gateway.value("r_total")) ?? nil ?? -1)")
        #expect(try gateway.value("r_gauge") == Double(p.gauge), "the gauge ends at the value pushed last")
        #expect(try gateway.value("r_seconds_count") == Double(p.histogram))
        #expect(try gateway.value(#"r_seconds_bucket{le="0.45"}"#) == Double(p.histogramLow))
        #expect(try gateway.value("r_bytes_count") == Double(p.summary))
        #expect(try gateway.value("r_binned_seconds_count") == Double(3 * p.histogram))
        #expect(try gateway.value(#"r_binned_seconds_bucket{le="2"}"#) == Double(p.histogram))
        #expect(try gateway.value("r_binned_seconds_sum") == 2.5 * Double(p.histogram))
        #expect(eventually(timeout: 10) { (try? redis.llen(Self.key + ":processing:test")) == 0 })
        #expect(try redis.llen(Self.key) == 0)
        print("kills=\(kills) pushed=\(p.counter) replayed=\((try? gateway.value(#"prom_stream_gateway_replayed_elements_total{queueKey="\#(Self.key)"}"#)) ?? nil ?? -1)")
    }

    static func damage(_ name: String, _ b: [UInt8]) -> [UInt8] {
        var c = b
        switch name {
        case "truncated": return Array(b.prefix(b.count / 2))
        case "empty": return []
        case "flipped byte": c[c.count - 3] ^= 0xFF; return c
        case "newer version": c[8] = 9; return c
        default: return Array("# HELP not a state file\n".utf8)
        }
    }

    @Test(arguments: ["truncated", "empty", "flipped byte", "newer version", "foreign"])
    func unusableStateFile_isMovedAsideAndTheGatewayStartsEmpty(_ name: String) throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try redis.push(counters(10))
        let first = try GatewayProcess(environment: environment(redis, dir))
        #expect(eventually { (try? total(first, "c_total")) == 10 })
        #expect(eventually { (try? redis.llen(Self.key + ":processing:test")) == 0 }, "a snapshot holds all ten and they were trimmed")
        #expect(first.terminate().status == 0)
        let file = dir.appendingPathComponent("state")
        let good = try [UInt8](Data(contentsOf: file))
        try Data(Self.damage(name, good)).write(to: file)
        let gateway = try GatewayProcess(environment: environment(redis, dir))
        #expect(eventually { gateway.log.contains("the state file is not usable") }, "\(name): \(gateway.log)")
        let aside = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("state.corrupt-") }
        #expect(aside.count == 1, "\(name): moved aside")
        #expect(try total(gateway, "c_total") == 0, "\(name): starts empty")
        try redis.push(counters(3))
        #expect(eventually { (try? total(gateway, "c_total")) == 3 }, "\(name): and keeps working")
    }

    @Test func stateFileInAMissingOrReadOnlyDirectory_isReportedAndNothingIsAcknowledged() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var env = environment(redis, dir)
        env["Metrics__StateFile"] = dir.appendingPathComponent("missing/state").path
        try redis.push(counters(20))
        let gateway = try GatewayProcess(environment: env)
        #expect(eventually { (try? total(gateway, "c_total")) == 20 })
        #expect(eventually { (try? gateway.value("prom_stream_gateway_snapshot_errors_total")).map { $0 >= 1 } == true })
        let ready = try httpGet(port: gateway.port, path: "/ready").text
        #expect(ready.contains("snapshot failing") && ready.contains("No such file or directory"), "\(ready)")
        #expect(try redis.llen(Self.key + ":processing:test") == 20, "nothing is acknowledged that is not durable")

        // Read-only for the user the gateway runs as (root may write anywhere).
        let setpriv = try #require(RedisServer.which("setpriv"))
        let locked = try tempDir()
        defer { try? FileManager.default.removeItem(at: locked) }
        var env2 = environment(redis, locked)
        env2["Gateway__Instance"] = "locked"
        try redis.push(counters(5))
        let unprivileged = try GatewayProcess(environment: env2, launcher: [setpriv, "--reuid=10001", "--regid=10001", "--clear-groups"])
        #expect(eventually { (try? unprivileged.value("prom_stream_gateway_snapshot_errors_total")).map { $0 >= 1 } == true })
        #expect(try httpGet(port: unprivileged.port, path: "/ready").text.contains("Permission denied"))
    }

    @Test func stateFileThatDoesNotExistYet_isCreated() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try redis.push(counters(4))
        let gateway = try GatewayProcess(environment: environment(redis, dir))
        #expect(gateway.log.contains("no state file yet"))
        #expect(eventually { FileManager.default.fileExists(atPath: dir.appendingPathComponent("state").path) })
        #expect(eventually { (try? gateway.value("prom_stream_gateway_snapshot_bytes")).map { $0 > 0 } == true })
    }

    @Test func processingListOfAVanishedInstance_isListedAndRequeued() throws {
        let redis = try RedisServer()
        try redis.push(["a", "b", "c"], key: Self.key + ":processing:gone")
        let url = "127.0.0.1:\(redis.port)"
        let (status, listing) = try runCommand(GatewayProcess.binary, ["processing", "list", "--redis", url])
        #expect(status == 0 && listing.contains("gone\t3\t"), "\(listing)")
        let (_, requeued) = try runCommand(GatewayProcess.binary, ["processing", "requeue", "--redis", url, "--instance", "gone"])
        #expect(requeued.contains("requeued 3 elements"))
        #expect(try redis.llen(Self.key + ":processing:gone") == 0)
        // The oldest element of the processing list is popped first.
        let c = try redis.client()
        #expect(try c.command("RPOP", Self.key).text == "a")
    }

    @Test func redisThatLostItsData_isRenumberedAndNewElementsCount() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try redis.push(counters(10))
        let first = try GatewayProcess(environment: environment(redis, dir))
        #expect(eventually { (try? total(first, "c_total")) == 10 })
        #expect(eventually { (try? redis.llen(Self.key + ":processing:test")) == 0 })
        #expect(first.terminate().status == 0)
        try redis.client().command("FLUSHALL")   // as a Redis without persistence after a restart
        try redis.push(counters(5))
        let gateway = try GatewayProcess(environment: environment(redis, dir))
        #expect(eventually { (try? total(gateway, "c_total")) == 15 }, "new elements are not taken for ones the state holds")
        #expect(gateway.log.contains("renumbering the processing list"))
    }

    @Test func twoGatewaysOnOneQueue_eachUseTheirOwnProcessingList() throws {
        let redis = try RedisServer()
        let dirA = try tempDir(), dirB = try tempDir()
        defer { try? FileManager.default.removeItem(at: dirA); try? FileManager.default.removeItem(at: dirB) }
        var envA = environment(redis, dirA), envB = environment(redis, dirB)
        envA["Gateway__Instance"] = "a"
        envB["Gateway__Instance"] = "b"
        let a = try GatewayProcess(environment: envA), b = try GatewayProcess(environment: envB)
        try redis.push(counters(2000))
        #expect(eventually(timeout: 20) { ((try? total(a, "c_total")) ?? 0) + ((try? total(b, "c_total")) ?? 0) == 2000 })
        #expect(eventually { (try? redis.llen(Self.key + ":processing:a")) == 0 && (try? redis.llen(Self.key + ":processing:b")) == 0 })
    }

    /// `shards` without `group` on one Redis: one gateway drains every shard, each
    /// with its processing list, and its `state_file` holds them all across kill -9.
    @Test func shardedQueueWithoutGroup_survivesKill9Exactly() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        try """
            sources: {q: {type: redis_list, url: "redis://127.0.0.1:\(redis.port)/0", key: sq, shards: 4}}
            transforms: {d: {type: json_decode, inputs: [q]}}
            sinks: {p: {type: prometheus, inputs: [d], listen: "${GATEWAY_LISTEN}", state_file: "\(dir.path)/state", snapshot_interval: 100ms}}
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        let names = ["a_total", "b_total", "c_total", "d_total", "e_total", "f_total"]
        func push(_ n: Int) throws {
            for name in names {
                let key = ShardRouting.queueKey("sq", shard: ShardRouting.shard(of: name, shards: 4))
                try redis.push((0..<n).map { _ in #"{"type":"counter","name":"\#(name)","value":1}"# }, key: key)
            }
        }
        try push(200)
        var gateway = try GatewayProcess(args: ["--config", pipeline.path])
        #expect(eventually { names.allSatisfy { (try? gateway.value($0)) == 200 } })
        try push(300)
        usleep(20_000)
        kill(gateway.process.processIdentifier, SIGKILL)
        gateway.process.waitUntilExit()
        gateway = try GatewayProcess(args: ["--config", pipeline.path])
        #expect(eventually(timeout: 15) { names.allSatisfy { (try? gateway.value($0)) == 500 } }, "every shard continued exactly")
        #expect(try (0..<4).map { try redis.llen(ShardKeys(key: "sq", shard: $0).queue) }.reduce(0, +) == 0)
    }

    /// pipelines/group.yaml on one Redis (no cluster): two gateways split the shards,
    /// and a router in front (pipelines/router.yaml) feeds them from the one key.
    @Test func groupAndRouterOnOneRedis_splitTheShards_exactly() throws {
        let redis = try RedisServer()
        let group = packageRoot.appendingPathComponent("pipelines/group.yaml").path
        let env = { (i: String) in ["REDIS_URL": "127.0.0.1:\(redis.port)", "QUEUE_KEY": "one", "SHARDS": "4", "INSTANCE": i, "LEASE_TTL": "2s", "SNAPSHOT_INTERVAL": "200ms"] }
        let a = try GatewayProcess(args: ["--config", group], environment: env("a"))
        let b = try GatewayProcess(args: ["--config", group], environment: env("b"))
        let router = try GatewayProcess(args: ["--config", packageRoot.appendingPathComponent("pipelines/router.yaml").path],
                                        environment: ["REDIS_URL": "redis://127.0.0.1:\(redis.port)/0", "QUEUE_KEY": "one", "SHARDS": "4", "INSTANCE": "r"])
        func owned(_ g: GatewayProcess) -> Double { (try? g.value("prom_stream_gateway_shards_owned{queueKey=\"one\"}")).flatMap { $0 } ?? 0 }
        #expect(eventually(timeout: 15) { owned(a) == 2 && owned(b) == 2 })
        let names = (0..<12).map { "n\($0)_total" }
        try redis.push((0..<1200).map { #"{"type":"counter","name":"\#(names[$0 % 12])","value":1}"# }, key: "one")
        func served(_ name: String) -> [Double] { [a, b].compactMap { (try? $0.value(name)).flatMap { $0 } } }
        #expect(eventually(timeout: 20) { names.allSatisfy { served($0) == [100] } }, "each family on one gateway, exact")
        #expect(Set(names.map { (try? a.value($0)).flatMap { $0 } != nil }).count == 2, "both gateways serve some")
        _ = router
    }

    /// The default pipeline, configured the .NET way: Redis__MetricQueueShards and
    /// Gateway__Group make it a group member with its shards' state in Redis.
    @Test func defaultPipeline_shardsAndGroupFromTheEnvironment() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Redis__MetricQueueShards": "4",
                                                       "Gateway__Group": "g", "Gateway__LeaseTtl": "2s", "Gateway__Instance": "env"])
        #expect(eventually { (try? gateway.value("prom_stream_gateway_shards_owned{queueKey=\"\(Self.key)\"}")) == 4 })
        let shard = ShardRouting.shard(of: "env_total", shards: 4)
        try redis.push([#"{"type":"counter","name":"env_total","value":3}"#], key: ShardRouting.queueKey(Self.key, shard: shard))
        #expect(eventually { (try? gateway.value("env_total")) == 3 })
        #expect(eventually { (try? redis.client().command("EXISTS", ShardKeys(key: Self.key, shard: shard).state)) == .integer(1) }, "the shard's state is in Redis")
        #expect(eventually(timeout: 5) {
            (try? gateway.value("prom_stream_gateway_redis_queue_pending_size{queueKey=\"\(Self.key)\"}")) == 0
                && (try? gateway.value("prom_stream_gateway_processing_list_size{queueKey=\"\(Self.key)\"}")) == 0
        }, "the backlog gauges the dashboard and alerts use are there, summed over the owned shards")
    }

    /// A series deleted through the admin API stays deleted across kill -9 though no sample
    /// arrived after the deletion: the snapshot is written for the removal itself (a state file,
    /// and a group's shard state in Redis). It came back from the last snapshot before.
    @Test(arguments: ["state file", "group"])
    func deletedSeries_stayDeletedAfterKill9_withoutAnotherSample(mode: String) throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var env = ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Gateway__Instance": "adm", "Metrics__SnapshotInterval": "200ms"]
        var shards = 0
        if mode == "group" {
            shards = 2
            env.merge(["Redis__MetricQueueShards": "2", "Gateway__Group": "g", "Gateway__LeaseTtl": "1s"]) { $1 }
        } else {
            env["Metrics__StateFile"] = dir.appendingPathComponent("state").path
        }
        func push(_ name: String, _ labels: String) throws {
            let key = shards == 0 ? Self.key : ShardRouting.queueKey(Self.key, shard: ShardRouting.shard(of: name, shards: shards))
            try redis.push([#"{"type":"counter","name":"\#(name)","value":2,"labels":{\#(labels)}}"#], key: key)
        }
        var gateway = try GatewayProcess(args: ["--web.enable-admin-api"], environment: env)
        try push("tmp_total", #""q":"a""#)
        try push("tmp_total", #""q":"b""#)
        try push("keep_total", #""q":"c""#)
        #expect(eventually(timeout: 10) { (try? gateway.value(#"keep_total{q="c"}"#)) == 2 && (try? gateway.value(#"tmp_total{q="b"}"#)) == 2 })
        usleep(600_000)   // snapshots hold all three
        let deleted = try httpGet(port: gateway.port, path: "/api/v1/series?match%5B%5D=" + #"tmp_total{q="a"}"#
            .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, method: "DELETE")
        #expect(deleted.text.contains(#""deleted":1"#), "\(deleted.text)")
        usleep(800_000)   // snapshot rounds pass; no sample arrives
        kill(gateway.process.processIdentifier, SIGKILL)
        gateway.process.waitUntilExit()
        gateway = try GatewayProcess(args: ["--web.enable-admin-api"], environment: env)
        #expect(eventually(timeout: 10) { (try? gateway.value(#"keep_total{q="c"}"#)) == 2 && (try? gateway.value(#"tmp_total{q="b"}"#)) == 2 })
        #expect(try gateway.value(#"tmp_total{q="a"}"#) == nil, "the deleted series came back from the state")
    }

    /// The same for a series `expire_after` removed: not brought back by a restart (to expire a second
    /// time, counted again and, for remote write, sent again until then).
    @Test func expiredSeries_stayExpiredAfterKill9() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        try """
            sources: {q: {type: redis_list, url: "redis://127.0.0.1:\(redis.port)/0", key: eq}}
            transforms: {d: {type: json_decode, inputs: [q]}}
            sinks: {p: {type: prometheus, inputs: [d], listen: "${GATEWAY_LISTEN}", state_file: "\(dir.path)/state", snapshot_interval: 200ms,
                        expire_after_by_name: {"short_*": 1s}}}
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        var gateway = try GatewayProcess(args: ["--config", pipeline.path])
        try redis.push([#"{"type":"gauge","name":"short_g","value":1}"#, #"{"type":"gauge","name":"long_g","value":1}"#], key: "eq")
        #expect(eventually { (try? gateway.value("long_g")) == 1 })
        #expect(eventually(timeout: 10) { (try? gateway.value("prom_stream_gateway_series_expired_total")) == 1 })
        usleep(800_000)   // snapshot rounds pass; no sample arrives
        kill(gateway.process.processIdentifier, SIGKILL)
        gateway.process.waitUntilExit()
        gateway = try GatewayProcess(args: ["--config", pipeline.path])
        #expect(eventually { (try? gateway.value("long_g")) == 1 })
        usleep(1_500_000)   // a series brought back would have expired again by now
        #expect(try gateway.value("short_g") == nil)
        #expect(try gateway.value("prom_stream_gateway_series_expired_total") == 0, "the expired series came back from the state file")
    }

    /// A summary's quantile window ages while the gateway is down, as wall time: restarted after
    /// longer than `summary_max_age`, its quantiles are empty (NaN) — `_sum` and `_count` go on.
    /// The window came back as it was at the last snapshot before.
    @Test func aSummaryWindow_agesWhileTheGatewayIsDown() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        try """
            sources: {q: {type: redis_list, url: "redis://127.0.0.1:\(redis.port)/0", key: sq}}
            transforms: {d: {type: json_decode, inputs: [q]}}
            sinks: {p: {type: prometheus, inputs: [d], listen: "${GATEWAY_LISTEN}", state_file: "\(dir.path)/state", snapshot_interval: 200ms,
                        summary_max_age: 2s}}
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        var gateway = try GatewayProcess(args: ["--config", pipeline.path])
        try redis.push((0..<50).map { _ in #"{"type":"summary","name":"lat","value":3,"quantiles":[0.5],"epsilons":[0.05]}"# }, key: "sq")
        #expect(eventually { (try? gateway.value(#"lat{quantile="0.5"}"#)) == 3 && (try? gateway.value("lat_count")) == 50 })
        #expect(gateway.terminate().status == 0)
        usleep(3_000_000)   // down longer than summary_max_age
        gateway = try GatewayProcess(args: ["--config", pipeline.path])
        #expect(try gateway.value("lat_count") == 50 && gateway.value("lat_sum") == 150)
        #expect(try gateway.value(#"lat{quantile="0.5"}"#).map { $0.isNaN } == true, "observations older than summary_max_age came back")
    }

    /// A shard key that is not a list (WRONGTYPE) is retried on its own, counted and
    /// logged; the other shards keep draining.
    @Test func brokenShard_doesNotHoldUpTheOthers() throws {
        let redis = try RedisServer()
        let names = (0..<40).map { "w\($0)_total" }
        let bad = ShardRouting.shard(of: names[0], shards: 4)
        try redis.client().command("SET", ShardRouting.queueKey("wq", shard: bad), "not a list")
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        try """
            sources: {q: {type: redis_list, url: "redis://127.0.0.1:\(redis.port)/0", key: wq, shards: 4}}
            transforms: {d: {type: json_decode, inputs: [q]}}
            sinks: {p: {type: prometheus, inputs: [d], listen: "${GATEWAY_LISTEN}"}}
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(args: ["--config", pipeline.path])
        let good = names.filter { ShardRouting.shard(of: $0, shards: 4) != bad }
        for round in 0..<3 {
            for name in good { try redis.push([#"{"type":"counter","name":"\#(name)","value":1}"#], key: ShardRouting.queueKey("wq", shard: ShardRouting.shard(of: name, shards: 4))) }
            #expect(eventually(timeout: 5) { good.allSatisfy { (try? gateway.value($0)) == Double(round + 1) } }, "round \(round)")
        }
        #expect((try gateway.value("prom_stream_gateway_redis_errors_total{queueKey=\"wq\"}")).map { $0 >= 1 } == true)
        #expect(gateway.log.contains("WRONGTYPE"))
    }
}
