import Foundation
import Redis
import Testing
import TestSupport

/// `memory_budget` through the binary: a backlog of elements far larger than the
/// budget drains with the gateway's RSS (read from /proc) bounded by the budget,
/// and nothing is lost.
@Suite struct MemoryBudgetTests {
    func status(_ pid: Int32, _ field: String) -> Int {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0) * 1024
    }

    /// One element: `n` counter samples over 100 series, as a JSON array (~100 bytes each).
    func element(_ n: Int) -> String {
        let pad = String(repeating: "x", count: 40)
        return "[" + (0..<n).map { #"{"type":"counter","name":"big_total","value":1,"labels":{"k":"\#($0 % 100)","pad":"\#(pad)"}}"# }
            .joined(separator: ",") + "]"
    }

    /// The sum of the `element` samples on the gateway's page (-1 while it does not answer).
    func total(_ gateway: GatewayProcess) -> Double {
        guard let page = try? gateway.metrics() else { return -1 }
        return page.split(separator: "\n").filter { $0.hasPrefix("big_total{") }.compactMap { Double($0.split(separator: " ").last!) }.reduce(0, +)
    }

    /// `replayed_elements_total` of the source on `queueKey`.
    func replayed(_ gateway: GatewayProcess, queueKey: String = "prom-stream-gateway:metric-queue") -> Double {
        (try? gateway.value(#"prom_stream_gateway_replayed_elements_total{queueKey="\#(queueKey)"}"#)) ?? 0
    }

    @Test func hugeElements_drainWithinTheBudget_andNothingIsLost() throws {
        let redis = try RedisServer()
        let budget = 4 << 20
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Metrics__JsonParser": "simdjson",
                                                       "Pipeline__MemoryBudget": "4MiB"])
        let pid = gateway.process.processIdentifier
        let big = element(5000)   // ~560 KB, 7 elements fill the budget
        try redis.push([big])     // warm-up: parser buffers and the 100 series exist
        #expect(eventually { (try? gateway.value(#"big_total{k="0",pad="\#(String(repeating: "x", count: 40))"}"#)) == 50 })
        Thread.sleep(forTimeInterval: 0.3)
        let idle = status(pid, "VmRSS")
        let backlog = 200   // 1 000 000 samples, ~110 MB of JSON: 27× the budget
        try redis.push(Array(repeating: big, count: backlog))
        var peak = 0
        let drained = eventually(timeout: 120) {
            peak = max(peak, status(pid, "VmRSS"))
            return total(gateway) == Double((backlog + 1) * 5000)
        }
        #expect(drained, "every sample of the backlog applied")
        let grew = max(peak, status(pid, "VmHWM")) - idle
        // In flight: the budget, plus a batch being decoded next to its elements and
        // the parsers' buffers (one element each); the aggregate is 100 series.
        #expect(grew <= 3 * budget + (4 << 20), "RSS grew \(grew >> 20) MiB over \(idle >> 20) MiB idle with a \(budget >> 20) MiB budget")
        print("memory budget test: idle \(idle >> 20) MiB, grew \(grew >> 20) MiB, budget \(budget >> 20) MiB")
        #expect(gateway.terminate().status == 0)
    }

    /// A crash during a backlog drain leaves up to a snapshot interval's pops in the processing
    /// list; a restart whose state does not hold them re-emits them. Read back page by page,
    /// they drain within the budget too (read in one reply they took ~4× their size), exactly once,
    /// also when Redis drops the connection between two pages: the pages emitted are not read again.
    @Test func processingListReplay_drainsWithinTheBudget_exactlyOnce_thoughTheConnectionDrops() throws {
        let redis = try RedisServer()
        let budget = 4 << 20
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString).state").path
        defer {   // the manifest and its segments
            for f in (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
            where f.hasPrefix((state as NSString).lastPathComponent) { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "/" + f) }
        }
        let backlog = 200, big = element(5000)   // 1 000 000 samples, ~110 MB of JSON: 27× the budget
        try redis.push(Array(repeating: big, count: backlog), key: "prom-stream-gateway:metric-queue:processing:replay")
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Metrics__JsonParser": "simdjson",
                                                       "Pipeline__MemoryBudget": "4MiB", "Metrics__StateFile": state, "Gateway__Instance": "replay"])
        let pid = gateway.process.processIdentifier
        #expect(eventually(timeout: 60) { replayed(gateway) >= 20 })
        let atKill = replayed(gateway)
        _ = try redis.client().command("CLIENT", "KILL", "TYPE", "normal")
        #expect(atKill < Double(backlog), "the connection was dropped mid-replay (\(atKill) of \(backlog) replayed)")
        #expect(eventually(timeout: 120) { total(gateway) == Double(backlog * 5000) }, "every replayed sample applied")
        #expect((try? gateway.value(#"prom_stream_gateway_redis_reconnects_total{queueKey="prom-stream-gateway:metric-queue"}"#)) == 1)
        let peak = status(pid, "VmHWM")
        #expect(eventually(timeout: 15) { (try? redis.llen("prom-stream-gateway:metric-queue:processing:replay")) == 0 }, "snapshotted and trimmed")
        #expect(total(gateway) == Double(backlog * 5000), "applied once")
        #expect(replayed(gateway) == Double(backlog), "no page read twice")
        // Measured: 49 MiB (the debug build's start-up RSS and the budget's worth in flight); the whole list read
        // at once, as before, peaked at 472 MiB.
        #expect(peak <= 128 << 20, "peak RSS \(peak >> 20) MiB with a \(budget >> 20) MiB budget")
        print("memory budget replay test: peak \(peak >> 20) MiB, budget \(budget >> 20) MiB")
        #expect(gateway.terminate().status == 0)
    }

    /// SIGTERM during a long replay ends it at a page: the gateway exits 0 without replaying the
    /// rest, which a restart replays — every sample applied once across the two.
    @Test func sigtermDuringAReplay_stopsAtAPage_andARestartAppliesTheRestOnce() throws {
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("stop-replay")
        defer { try? FileManager.default.removeItem(at: dir) }
        let backlog = 200, processing = "prom-stream-gateway:metric-queue:processing:stop"
        try redis.push(Array(repeating: element(5000), count: backlog), key: processing)
        let environment = ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Metrics__JsonParser": "simdjson", "Pipeline__MemoryBudget": "4MiB",
                           "Metrics__StateFile": dir.appendingPathComponent("state").path, "Gateway__Instance": "stop"]
        let first = try GatewayProcess(environment: environment)
        #expect(eventually(timeout: 60) { replayed(first) >= 10 })
        #expect(first.terminate(timeout: 60).status == 0)
        #expect(first.log.contains("stopping during the replay"), "the replay was cut short at a page")
        let second = try GatewayProcess(environment: environment)
        #expect(eventually(timeout: 120) { total(second) == Double(backlog * 5000) }, "the rest applied after the restart")
        #expect(eventually(timeout: 15) { (try? redis.llen(processing)) == 0 })
        #expect(total(second) == Double(backlog * 5000), "applied once across the two runs")
        #expect(second.terminate().status == 0)
    }

    /// The sharded source replays each shard's processing list the same way: within the budget,
    /// and once, though Redis drops the connection mid-replay.
    @Test func shardedReplay_drainsWithinTheBudget_exactlyOnce_thoughTheConnectionDrops() throws {
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("sharded-replay")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml")
        try """
            memory_budget: 4MiB
            sources: {q: {type: redis_list, url: "redis://127.0.0.1:\(redis.port)/0", key: sq, shards: 4}}
            transforms: {d: {type: json_decode, inputs: [q], parser: simdjson}}
            sinks: {p: {type: prometheus, inputs: [d], listen: "${GATEWAY_LISTEN}", state_file: "\(dir.path)/state", snapshot_interval: 200ms}}
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        let perShard = 40, big = element(5000)   // 160 elements, 800 000 samples, ~90 MB of JSON
        for shard in 0..<4 { try redis.push(Array(repeating: big, count: perShard), key: ShardKeys(key: "sq", shard: shard).processing) }
        let gateway = try GatewayProcess(args: ["--config", pipeline.path])
        let pid = gateway.process.processIdentifier
        #expect(eventually(timeout: 60) { replayed(gateway, queueKey: "sq") >= 20 })
        let atKill = replayed(gateway, queueKey: "sq")
        _ = try redis.client().command("CLIENT", "KILL", "TYPE", "normal")
        #expect(atKill < Double(4 * perShard), "the connection was dropped mid-replay (\(atKill) of \(4 * perShard) replayed)")
        #expect(eventually(timeout: 120) { total(gateway) == Double(4 * perShard * 5000) }, "every replayed sample applied")
        let peak = status(pid, "VmHWM")
        #expect(eventually(timeout: 15) { (try? (0..<4).map { try redis.llen(ShardKeys(key: "sq", shard: $0).processing) }.reduce(0, +)) == 0 })
        #expect(total(gateway) == Double(4 * perShard * 5000), "applied once")
        #expect(replayed(gateway, queueKey: "sq") == Double(4 * perShard), "no page read twice")
        #expect(peak <= 128 << 20, "peak RSS \(peak >> 20) MiB with a 4 MiB budget")
        print("sharded replay test: peak \(peak >> 20) MiB, replayed \(atKill) when the connection dropped")
        #expect(gateway.terminate().status == 0)
    }

    /// A source does not know the elements' size when it (re)connects: its first pop takes one
    /// element. 16 elements of 8 MiB waiting (a hostile or broken sender) are read one at a time,
    /// not as one 128 MiB reply, and each is dropped as too large.
    @Test func firstPop_afterConnecting_takesOneElement() throws {
        let redis = try RedisServer()
        let huge = String(repeating: "x", count: 8 << 20)
        try redis.push(Array(repeating: huge, count: 16))
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Pipeline__MemoryBudget": "4MiB"])
        let pid = gateway.process.processIdentifier
        func dropped() -> Double {
            let lines = ((try? gateway.metrics()) ?? "").split(separator: "\n")
                .filter { $0.hasPrefix("prom_stream_gateway_dropped_metrics_total{") && $0.contains("payload_too_large") }
            return lines.compactMap { Double($0.split(separator: " ").last!) }.reduce(0, +)
        }
        #expect(eventually(timeout: 60) { dropped() == 16 }, "each element dropped as payload_too_large")
        let peak = status(pid, "VmHWM")
        // Measured: 51 MiB (start-up ~40 and an element or two); the 16 in one first reply peaked at 171 MiB.
        #expect(peak <= 96 << 20, "peak RSS \(peak >> 20) MiB")
        print("first pop test: peak \(peak >> 20) MiB")
        #expect(gateway.terminate().status == 0)
    }

    @Test func memoryBudget_isCheckedAndNamesItsKey() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("budget-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
            memory_budget: 12KiB
            sources: {q: {type: redis_list}}
            transforms: {d: {type: json_decode, inputs: [q]}}
            sinks: {p: {type: prometheus, inputs: [d], listen: "127.0.0.1:0"}}
            """.write(to: file, atomically: true, encoding: .utf8)
        let r = try runCommand(GatewayProcess.binary, ["validate", "--config", file.path], environment: ["PATH": "/usr/bin:/bin"])
        #expect(r.status != 0 && r.output.contains("memory_budget") && r.output.contains("at least 1MiB"), "\(r.output)")
    }

    /// A sender's huge element is never read: hiredis would hold it whole (and the batch a copy),
    /// so one 60 MB element cost ~150 MB of RSS — in a reliable queue again at every restart,
    /// a 400 MB one an OOM kill and a crash loop. Through every path an element comes by: a
    /// pop, BLMOVE/BLMPOP on an idle queue, and a reliable source's replay of its processing list.
    @Test(arguments: [false, true])
    func oversizedElements_areNeverRead_byAPopAWaitOrAReplay(reliable: Bool) throws {
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("oversized")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = "prom-stream-gateway:metric-queue"
        let big = String(repeating: "x", count: 60_000_000)
        var env = ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Gateway__Instance": "big", "Metrics__SnapshotInterval": "200ms"]
        if reliable {
            env["Metrics__StateFile"] = dir.appendingPathComponent("state").path
            try redis.push([big], key: key + ":processing:big")   // popped by a gateway that died: replayed at start
        }
        let gateway = try GatewayProcess(environment: env)
        let good = #"{"type":"counter","name":"c_total","value":1}"#
        try redis.push([good])
        #expect(eventually { (try? gateway.value("c_total")) == 1 })
        usleep(300_000)
        try redis.push([big])               // onto an idle queue: the blocking wait answers it
        usleep(500_000)
        try redis.push([big, good, big])    // one push: popped together
        #expect(eventually(timeout: 20) { (try? gateway.value("c_total")) == 2 })
        let reason = #"prom_stream_gateway_dropped_metrics_total{worker="0",queueKey="\#(key)",reason="payload_too_large"}"#
        #expect(eventually { (try? gateway.value(reason)) == (reliable ? 4 : 3) })
        #expect(gateway.log.contains("60000000 bytes (over the source's max_element_bytes: not read): xxxx"))
        let peak = status(gateway.process.processIdentifier, "VmHWM")
        #expect(peak < 100 << 20, "peak RSS \(peak >> 20) MiB")
        print("oversized elements (reliable: \(reliable)): peak RSS \(peak >> 20) MiB")
        #expect(!reliable || eventually { (try? redis.llen(key + ":processing:big")) == 0 }, "dropped elements are acknowledged")
    }

    /// A group's shard state is read whole though it is far larger than `max_element_bytes`
    /// (its GET goes around the cut): the next gateway serves every series.
    @Test func aShardStateLargerThanTheElementLimit_isHandedOverWhole() throws {
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("oversized")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("group.yaml")
        try """
            sources: {q: {type: redis_list, url: "redis://127.0.0.1:\(redis.port)/0", key: big, shards: 1, group: g, instance: "${INSTANCE}",
                          lease_ttl: 2s, max_element_bytes: 64KiB}}
            transforms: {d: {type: json_decode, inputs: [q], max_payload_bytes: 64KiB}}
            sinks: {p: {type: prometheus, inputs: [d], listen: "${GATEWAY_LISTEN}", state: redis, snapshot_interval: 200ms}}
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        let a = try GatewayProcess(args: ["--config", pipeline.path], environment: ["INSTANCE": "a"])
        let pad = String(repeating: "p", count: 60)
        try redis.push((0..<3000).map { #"{"type":"counter","name":"s_total","value":2,"labels":{"i":"\#($0)","pad":"\#(pad)"}}"# },
                       key: ShardRouting.queueKey("big", shard: 0))
        #expect(eventually(timeout: 20) { (try? a.value(#"s_total{i="2999",pad="\#(pad)"}"#)) == 2 })
        #expect(a.terminate().status == 0)   // releases the shard: its state written with everything
        let strlen = try redis.client().command("STRLEN", ShardKeys(key: "big", shard: 0).state)
        guard case .integer(let size) = strlen else { Issue.record("no state: \(strlen)"); return }
        #expect(size > 4 * 65536, "the state (\(size) bytes) is larger than the limit")
        let b = try GatewayProcess(args: ["--config", pipeline.path], environment: ["INSTANCE": "b"])
        #expect(eventually(timeout: 20) { (try? b.value(#"s_total{i="2999",pad="\#(pad)"}"#)) == 2 })
        let page = try b.metrics()
        #expect(page.split(separator: "\n").filter { $0.hasPrefix("s_total{") && $0.hasSuffix(" 2") }.count == 3000)
    }
}
