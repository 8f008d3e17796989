import Foundation
import Synchronization
import Redis
import Sources
import Testing
import TestSupport

/// Reloading the pipeline file through the binary: SIGHUP and `POST /-/reload`
/// keep every aggregate (exactly, with a reliable source and a state file, while
/// samples flow), stages that did not change keep running (the sink's listener,
/// the source's Redis connection), a broken file leaves the running pipeline as
/// it was, and an unchanged file restarts nothing.
@Suite struct ReloadTests {
    func pipeline(_ redis: RedisServer, _ dir: URL, extraTransform: String = "", sinkInput: String = "decode", batchSize: Int = 1000) -> String {
        """
        sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port),name=reloadsrc", reliable: true, instance: reload, batch_size: \(batchSize) } }
        transforms:
          decode: { type: json_decode, inputs: [queue] }
        \(extraTransform)
        sinks:
          prometheus:
            type: prometheus
            inputs: [\(sinkInput)]
            listen: "${GATEWAY_LISTEN}"
            enable_lifecycle: ${GATEWAY_ENABLE_LIFECYCLE:-false}
            state_file: "\(dir.appendingPathComponent("state").path)"
            snapshot_interval: 200ms
        """
    }

    /// A Redis, and a folder with the pipeline file (and the state file).
    final class Fixture {
        let redis: RedisServer
        let dir: URL
        var file: URL { dir.appendingPathComponent("p.yaml") }
        init() throws { redis = try RedisServer(); dir = try makeTemporaryDirectory("reload") }
        func remove() { try? FileManager.default.removeItem(at: dir) }
        func write(_ text: String) throws { try text.write(to: file, atomically: true, encoding: .utf8) }
        func gateway(lifecycle: Bool = false) throws -> GatewayProcess {
            try GatewayProcess(args: ["--config", file.path] + (lifecycle ? ["--web.enable-lifecycle"] : []))
        }
    }

    /// The Redis client id of the source's connection (it is named `reloadsrc`).
    func sourceConnection(_ redis: RedisServer) throws -> String? {
        let list = try redis.client().command("CLIENT", "LIST").text ?? ""
        return list.split(separator: "\n").first { $0.contains(" name=reloadsrc ") }?
            .split(separator: " ").first { $0.hasPrefix("id=") }.map(String.init)
    }

    /// Families whose `# TYPE` line appears more than once on the page.
    func duplicateFamilies(_ page: String) -> [String] {
        var seen: [Substring: Int] = [:]
        for line in page.split(separator: "\n") where line.hasPrefix("# TYPE ") { seen[line.split(separator: " ")[2], default: 0] += 1 }
        return seen.filter { $0.value > 1 }.map { String($0.key) }.sorted()
    }

    func total(_ gateway: GatewayProcess, _ name: String) -> Double? {
        guard let page = try? gateway.metrics() else { return nil }
        return page.split(separator: "\n").filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            .compactMap { Double($0.split(separator: " ").last!) }.reduce(0, +)
    }

    @Test func reloadsWhileSamplesFlow_keepEveryAggregateExactly_andApplyTheNewFile() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (redis, dir) = (f.redis, f.dir)
        try f.write(pipeline(redis, dir))
        let gateway = try f.gateway(lifecycle: true)
        let pusher = OSThreadRunner {
            for i in 0..<50 {
                try? redis.push((0..<100).map { _ in #"{"type":"counter","name":"flow_total","value":1,"labels":{"k":"\#(i % 3)"}}"# })
                usleep(20_000)
            }
        }
        usleep(200_000)
        // 1: SIGHUP with a new transform in the chain.
        try f.write(pipeline(redis, dir, extraTransform: "  tag: { type: static_labels, inputs: [decode], labels: { via: reloaded } }", sinkInput: "tag"))
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.contains("reloaded the pipeline file") })
        usleep(300_000)
        // 2: POST /-/reload back to the first file.
        try f.write(pipeline(redis, dir))
        let answer = try httpGet(port: gateway.port, path: "/-/reload", method: "POST")
        #expect(answer.status == 200 && answer.text.contains("reloading"), "\(answer.text)")
        pusher.join()
        #expect(eventually(timeout: 20) { total(gateway, "flow_total") == 5000 }, "pushed 5000, page has \(total(gateway, "flow_total") ?? -1)")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(total(gateway, "flow_total") == 5000, "nothing applied twice")
        #expect(try gateway.metrics().contains(#"via="reloaded""#), "the reloaded chain ran")
        #expect(try gateway.value("prom_stream_gateway_config_last_reload_successful") == 1)
        #expect(gateway.log.components(separatedBy: "kept the aggregate across the reload").count - 1 == 2)
        #expect(gateway.terminate().status == 0)
    }

    @Test func reloadChangingOnlyATransform_keepsTheSinkServing_andTheSourceConnected() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (redis, dir) = (f.redis, f.dir)
        let tag = { (v: String) in "  tag: { type: static_labels, inputs: [decode], labels: { via: \(v) } }" }
        try f.write(pipeline(redis, dir, extraTransform: tag("one"), sinkInput: "tag"))
        let gateway = try f.gateway()
        try redis.push([#"{"type":"counter","name":"steady_total","value":1}"#])
        #expect(eventually { (try? gateway.value(#"steady_total{via="one"}"#)) == 1 })
        let connection = try sourceConnection(redis)
        #expect(connection != nil)
        let port = gateway.port
        let failures = Atomic(0), scrapes = Atomic(0), stop = Atomic(false)
        let scraper = OSThreadRunner {
            while !stop.load(ordering: .acquiring) {
                if (try? httpGet(port: port, path: "/metrics", timeout: 2))?.status == 200 { scrapes.add(1, ordering: .relaxed) } else { failures.add(1, ordering: .relaxed) }
                usleep(5_000)
            }
        }
        let pusher = OSThreadRunner {
            for _ in 0..<40 {
                try? redis.push((0..<50).map { _ in #"{"type":"counter","name":"steady_total","value":1}"# })
                usleep(10_000)
            }
        }
        usleep(100_000)
        try f.write(pipeline(redis, dir, extraTransform: tag("two"), sinkInput: "tag"))
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.contains("reloaded the pipeline file") })
        pusher.join()
        #expect(eventually { ((try? gateway.value(#"steady_total{via="one"}"#)) ?? 0) + ((try? gateway.value(#"steady_total{via="two"}"#)) ?? 0) == 2001 })
        stop.store(true, ordering: .releasing)
        scraper.join()
        let line = gateway.log.split(separator: "\n").first { $0.contains("reloaded the pipeline file") }.map(String.init) ?? ""
        #expect(line.contains("kept=queue,decode,prometheus") && line.contains("rebuilt=tag"), "\(line)")
        #expect(failures.load(ordering: .relaxed) == 0 && scrapes.load(ordering: .relaxed) > 10, "every scrape during the reload was answered")
        #expect(try sourceConnection(redis) == connection, "the source kept its Redis connection")
        #expect(!gateway.log.contains("kept the aggregate across the reload"), "the sink was never replaced")
        #expect(try duplicateFamilies(gateway.metrics()) == [])
        #expect(gateway.terminate().status == 0)
    }

    @Test func reloadChangingTheSinkOrTheSource_rebuildsOnlyIt_andLosesOrRepeatsNothing() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (redis, dir) = (f.redis, f.dir)
        try f.write(pipeline(redis, dir))
        let gateway = try f.gateway()
        try redis.push([#"{"type":"counter","name":"moved_total","value":1}"#])
        #expect(eventually { (try? gateway.value("moved_total")) == 1 })
        let connection = try sourceConnection(redis)
        let pusher = OSThreadRunner {
            for _ in 0..<60 {
                try? redis.push((0..<50).map { _ in #"{"type":"counter","name":"moved_total","value":1}"# })
                usleep(10_000)
            }
        }
        usleep(100_000)
        // The sink's options: the source and the decoder keep running.
        try f.write(pipeline(redis, dir).replacingOccurrences(of: "snapshot_interval: 200ms", with: "snapshot_interval: 150ms"))
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.components(separatedBy: "reloaded the pipeline file").count - 1 == 1 })
        #expect(try sourceConnection(redis) == connection, "the source kept its Redis connection")
        usleep(150_000)
        // The source's options: it is rebuilt and continues the processing list's numbering.
        try f.write(pipeline(redis, dir, batchSize: 500).replacingOccurrences(of: "snapshot_interval: 200ms", with: "snapshot_interval: 150ms"))
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.components(separatedBy: "reloaded the pipeline file").count - 1 == 2 })
        pusher.join()
        #expect(eventually(timeout: 20) { (try? gateway.value("moved_total")) == 3001 })
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try gateway.value("moved_total") == 3001, "nothing applied twice")
        let lines = gateway.log.split(separator: "\n").filter { $0.contains("reloaded the pipeline file") }.map(String.init)
        #expect(lines.count == 2 && lines[0].contains("kept=queue,decode") && lines[0].contains("rebuilt=prometheus"), "\(lines)")
        #expect(lines.count == 2 && lines[1].contains("kept=decode,prometheus") && lines[1].contains("rebuilt=queue"), "\(lines)")
        #expect(gateway.log.components(separatedBy: "kept the aggregate across the reload").count - 1 == 1)
        #expect(try duplicateFamilies(gateway.metrics()) == [], "a replaced stage's meta-metrics leave with it")
        #expect(total(gateway, "prom_stream_gateway_processed_metrics_total") == 3001, "meta-metric counters continue across reloads")
        #expect(eventually { (try? redis.llen("\(RedisListConfig.defaultKey):processing:reload")) == 0 }, "the processing list is trimmed after the reloads")
        #expect(gateway.terminate().status == 0)
    }

    /// A reload that rebuilds the source during a long replay of its processing list: the old
    /// source stops at a page, the new one replays the rest, every sample is applied once.
    @Test func reloadRebuildingTheSourceDuringAReplay_continuesIt_andRepeatsNothing() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (redis, dir) = (f.redis, f.dir)
        try f.write("memory_budget: 4MiB\n" + pipeline(redis, dir))
        let pad = String(repeating: "x", count: 40)
        let big = "[" + (0..<5000).map { #"{"type":"counter","name":"replay_total","value":1,"labels":{"k":"\#($0 % 100)","pad":"\#(pad)"}}"# }
            .joined(separator: ",") + "]"
        let backlog = 150
        try redis.push(Array(repeating: big, count: backlog), key: "\(RedisListConfig.defaultKey):processing:reload")
        let gateway = try f.gateway()
        func replayed() -> Double { total(gateway, "prom_stream_gateway_replayed_elements_total") ?? 0 }
        #expect(eventually(timeout: 60) { replayed() >= 10 })
        try f.write("memory_budget: 4MiB\n" + pipeline(redis, dir, batchSize: 500))
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.contains("reloaded the pipeline file") })
        #expect(gateway.log.contains("stopping during the replay"), "the old source stopped at a page")
        #expect(eventually(timeout: 120) { total(gateway, "replay_total") == Double(backlog * 5000) })
        Thread.sleep(forTimeInterval: 0.5)
        #expect(total(gateway, "replay_total") == Double(backlog * 5000), "nothing applied twice")
        // The rebuilt source's own counter starts at 0 (a replaced stage's families leave with it): it replayed only the rest.
        #expect(replayed() > 0 && replayed() <= Double(backlog - 10), "the new source replayed \(replayed()) of \(backlog)")
        #expect(eventually { (try? redis.llen("\(RedisListConfig.defaultKey):processing:reload")) == 0 }, "trimmed after the replay")
        #expect(gateway.terminate().status == 0)
    }

    /// `POST /-/reload` asks the sink answering it to move: the answer is given before
    /// the replacement starts, the new listener serves the kept aggregate, the old one is closed.
    @Test func reloadRequestMovingTheSinksOwnListener_isAnswered_andTheAggregateMovesWithIt() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (redis, dir) = (f.redis, f.dir)
        try f.write(pipeline(redis, dir))
        let gateway = try f.gateway(lifecycle: true)
        try redis.push((0..<300).map { _ in #"{"type":"counter","name":"moving_total","value":1}"# })
        #expect(eventually { (try? gateway.value("moving_total")) == 300 })
        let port = freePort()
        // --listen must stay used (or the file is refused): a label keeps the variable, the sink moves
        let moved = pipeline(redis, dir, extraTransform: "  tag: { type: static_labels, inputs: [decode], labels: { was: \"${GATEWAY_LISTEN}\" } }",
                             sinkInput: "tag")
        try f.write(moved.replacingOccurrences(of: "listen: \"${GATEWAY_LISTEN}\"", with: "listen: \"127.0.0.1:\(port)\""))
        let answer = try httpGet(port: gateway.port, path: "/-/reload", method: "POST")
        #expect(answer.status == 200 && answer.text.contains("reloading"), "\(answer.status) \(answer.text)")
        #expect(eventually { (try? httpGet(port: port, path: "/metrics").text.contains("moving_total 300")) == true }, "the new listener, same aggregate")
        #expect(eventually { (try? httpGet(port: gateway.port, path: "/-/healthy")) == nil }, "the old listener is closed")
        try redis.push((0..<200).map { _ in #"{"type":"counter","name":"moving_total","value":1}"# })
        #expect(eventually { (try? httpGet(port: port, path: "/metrics").text.contains(#"moving_total{was="127.0.0.1:\#(gateway.port)"} 200"#)) == true })
        #expect(try httpGet(port: port, path: "/-/reload", method: "POST").status == 200, "the moved sink answers reloads too")
        #expect(try httpGet(port: port, path: "/ready").status == 200)
        #expect(gateway.terminate().status == 0)
    }

    @Test func reloadAddingASinkBelowAReliableSource_keepsTheProcessingListTrimmed() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (redis, dir) = (f.redis, f.dir)
        try f.write(pipeline(redis, dir))
        let gateway = try f.gateway()
        try redis.push((0..<500).map { _ in #"{"type":"counter","name":"before_total","value":1}"# })
        #expect(eventually { (try? gateway.value("before_total")) == 500 })
        let port = freePort()
        try f.write(pipeline(redis, dir) + "\n  second: { type: prometheus, inputs: [decode], listen: \"127.0.0.1:\(port)\" }\n")
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.contains("reloaded the pipeline file") })
        try redis.push((0..<500).map { _ in #"{"type":"counter","name":"after_total","value":1}"# })
        #expect(eventually { (try? gateway.value("after_total")) == 500 })
        #expect(eventually { (try? httpGet(port: port, path: "/metrics").text.contains("after_total 500")) == true }, "the new sink sees what came after")
        let processing = "\(RedisListConfig.defaultKey):processing:reload"
        #expect(eventually { (try? redis.llen(processing)) == 0 }, "the new sink does not hold back elements it never saw: \((try? redis.llen(processing)) ?? -1) left")
        #expect(gateway.terminate().status == 0)
    }

    /// Fault injection: kill -9 at moments spread over a reload that rebuilds the
    /// source and the sink. Nothing in a reload is durable only in memory: the
    /// processing list holds what the last snapshot does not, so a restart from the
    /// state file still applies every element exactly once.
    @Test(arguments: [0, 20_000, 60_000, 150_000])
    func killedDuringAReload_losesNothingAndCountsNothingTwice(afterMicroseconds delay: Int) throws {
        let f = try Fixture()
        defer { f.remove() }
        let (redis, dir) = (f.redis, f.dir)
        try f.write(pipeline(redis, dir))
        let first = try f.gateway()
        let pusher = OSThreadRunner {
            for _ in 0..<40 {
                try? redis.push((0..<50).map { _ in #"{"type":"counter","name":"crash_total","value":1}"# })
                usleep(5_000)
            }
        }
        usleep(100_000)
        try f.write(pipeline(redis, dir, batchSize: 300).replacingOccurrences(of: "snapshot_interval: 200ms", with: "snapshot_interval: 100ms"))
        kill(first.process.processIdentifier, SIGHUP)
        usleep(UInt32(delay))
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        pusher.join()
        let second = try f.gateway()
        #expect(eventually(timeout: 20) { (try? second.value("crash_total")) == 2000 }, "page has \((try? second.value("crash_total")) ?? -1)")
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try second.value("crash_total") == 2000, "nothing applied twice")
        #expect(second.terminate().status == 0)
    }

    @Test func brokenFile_isRefused_andTheRunningPipelineStays_untilItIsFixed() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (redis, dir) = (f.redis, f.dir)
        let good = pipeline(redis, dir)
        try f.write(good)
        let gateway = try f.gateway(lifecycle: true)
        try redis.push([#"{"type":"counter","name":"kept_total","value":2}"#])
        #expect(eventually { (try? gateway.value("kept_total")) == 2 })

        let unchanged = try httpGet(port: gateway.port, path: "/-/reload", method: "POST")
        #expect(unchanged.status == 200 && unchanged.text.contains("unchanged"), "\(unchanged.text)")
        #expect(!gateway.log.contains("draining"))

        try f.write((good + "\n    max_sereis: 10\n"))
        let refused = try httpGet(port: gateway.port, path: "/-/reload", method: "POST")
        #expect(refused.status == 400 && refused.text.contains("sinks.prometheus.max_sereis: unknown key (did you mean `max_series`?"), "\(refused.text)")
        #expect(try gateway.value("prom_stream_gateway_config_last_reload_successful") == 0)
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.components(separatedBy: "reload refused").count - 1 >= 2 }, "SIGHUP refuses it too")
        try redis.push([#"{"type":"counter","name":"kept_total","value":3}"#])
        #expect(eventually { (try? gateway.value("kept_total")) == 5 }, "the running pipeline still drains")

        try f.write(good.replacingOccurrences(of: "snapshot_interval: 200ms", with: "snapshot_interval: 300ms"))
        #expect(try httpGet(port: gateway.port, path: "/-/reload", method: "POST").status == 200)
        #expect(eventually { (try? gateway.value("prom_stream_gateway_config_last_reload_successful")) == 1 })
        #expect(eventually { (try? gateway.value("kept_total")) == 5 })
    }

    @Test func reloadEndpoint_isAbsentWithoutTheFlag_andTheFlagNeedsTheVariable() throws {
        let f = try Fixture()
        defer { f.remove() }
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(f.redis.port)"])
        #expect(try httpGet(port: gateway.port, path: "/-/reload", method: "POST").status == 404)
        try f.write("""
            sources: { q: { type: redis_list } }
            transforms: { d: { type: json_decode, inputs: [q] } }
            sinks: { p: { type: prometheus, inputs: [d] } }
            """)
        let r = try runCommand(GatewayProcess.binary, ["validate", "--config", f.file.path, "--web.enable-lifecycle"])
        #expect(r.status == 1 && r.output.contains("--web.enable-lifecycle has no effect"), "\(r.output)")
    }

    @Test func newPipelineThatCannotStart_isReplacedByThePreviousOne() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (redis, dir) = (f.redis, f.dir)
        let good = pipeline(redis, dir)
        try f.write(good)
        let gateway = try f.gateway(lifecycle: true)
        try redis.push([#"{"type":"counter","name":"kept_total","value":4}"#])
        #expect(eventually { (try? gateway.value("kept_total")) == 4 })
        // A second sink on a port something else holds: valid, but it cannot start.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let taken = freePort()
        addr.sin_port = UInt16(taken).bigEndian
        _ = withUnsafePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(holder, 1)
        try f.write((good + "\n  second: { type: prometheus, inputs: [decode], listen: \"127.0.0.1:\(taken)\" }\n"))
        #expect(try httpGet(port: gateway.port, path: "/-/reload", method: "POST").status == 200)
        #expect(eventually { gateway.log.contains("reload failed; the previous pipeline runs again") })
        #expect(eventually { (try? gateway.value("prom_stream_gateway_config_last_reload_successful")) == 0 })
        #expect(eventually { (try? gateway.value("kept_total")) == 4 }, "the previous pipeline serves, with its aggregate")
        try redis.push([#"{"type":"counter","name":"kept_total","value":1}"#])
        #expect(eventually { (try? gateway.value("kept_total")) == 5 })
    }
}
