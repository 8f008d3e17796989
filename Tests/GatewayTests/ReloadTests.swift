import Foundation
import Testing
import TestSupport

/// Reloading the pipeline file through the binary: SIGHUP and `POST /-/reload`
/// keep every aggregate (exactly, with a reliable source and a state file, while
/// samples flow), a broken file leaves the running pipeline as it was, and an
/// unchanged file restarts nothing.
@Suite struct ReloadTests {
    func pipeline(_ redis: RedisServer, _ dir: URL, extraTransform: String = "", sinkInput: String = "decode") -> String {
        """
        sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port)", reliable: true, instance: reload } }
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

    func tempDir() throws -> URL { try makeTemporaryDirectory("reload") }

    func total(_ gateway: GatewayProcess, _ name: String) -> Double? {
        guard let page = try? gateway.metrics() else { return nil }
        return page.split(separator: "\n").filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            .compactMap { Double($0.split(separator: " ").last!) }.reduce(0, +)
    }

    @Test func reloadsWhileSamplesFlow_keepEveryAggregateExactly_andApplyTheNewFile() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml")
        try pipeline(redis, dir).write(to: file, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(args: ["--config", file.path, "--web.enable-lifecycle"])
        let pusher = OSThreadRunner {
            for i in 0..<50 {
                try? redis.push((0..<100).map { _ in #"{"type":"counter","name":"flow_total","value":1,"labels":{"k":"\#(i % 3)"}}"# })
                usleep(20_000)
            }
        }
        usleep(200_000)
        // 1: SIGHUP with a new transform in the chain.
        try pipeline(redis, dir, extraTransform: "  tag: { type: static_labels, inputs: [decode], labels: { via: reloaded } }", sinkInput: "tag")
            .write(to: file, atomically: true, encoding: .utf8)
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.contains("reloaded the pipeline file") })
        usleep(300_000)
        // 2: POST /-/reload back to the first file.
        try pipeline(redis, dir).write(to: file, atomically: true, encoding: .utf8)
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

    @Test func brokenFile_isRefused_andTheRunningPipelineStays_untilItIsFixed() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml")
        let good = pipeline(redis, dir)
        try good.write(to: file, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(args: ["--config", file.path, "--web.enable-lifecycle"])
        try redis.push([#"{"type":"counter","name":"kept_total","value":2}"#])
        #expect(eventually { (try? gateway.value("kept_total")) == 2 })

        let unchanged = try httpGet(port: gateway.port, path: "/-/reload", method: "POST")
        #expect(unchanged.status == 200 && unchanged.text.contains("unchanged"), "\(unchanged.text)")
        #expect(!gateway.log.contains("draining"))

        try (good + "\n    max_sereis: 10\n").write(to: file, atomically: true, encoding: .utf8)
        let refused = try httpGet(port: gateway.port, path: "/-/reload", method: "POST")
        #expect(refused.status == 400 && refused.text.contains("sinks.prometheus.max_sereis: unknown key (did you mean `max_series`?"), "\(refused.text)")
        #expect(try gateway.value("prom_stream_gateway_config_last_reload_successful") == 0)
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(eventually { gateway.log.components(separatedBy: "reload refused").count - 1 >= 2 }, "SIGHUP refuses it too")
        try redis.push([#"{"type":"counter","name":"kept_total","value":3}"#])
        #expect(eventually { (try? gateway.value("kept_total")) == 5 }, "the running pipeline still drains")

        try good.replacingOccurrences(of: "snapshot_interval: 200ms", with: "snapshot_interval: 300ms").write(to: file, atomically: true, encoding: .utf8)
        #expect(try httpGet(port: gateway.port, path: "/-/reload", method: "POST").status == 200)
        #expect(eventually { (try? gateway.value("prom_stream_gateway_config_last_reload_successful")) == 1 })
        #expect(eventually { (try? gateway.value("kept_total")) == 5 })
    }

    @Test func reloadEndpoint_isAbsentWithoutTheFlag_andTheFlagNeedsTheVariable() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        #expect(try httpGet(port: gateway.port, path: "/-/reload", method: "POST").status == 404)
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml")
        try """
            sources: { q: { type: redis_list } }
            transforms: { d: { type: json_decode, inputs: [q] } }
            sinks: { p: { type: prometheus, inputs: [d] } }
            """.write(to: file, atomically: true, encoding: .utf8)
        let r = try runCommand(GatewayProcess.binary, ["validate", "--config", file.path, "--web.enable-lifecycle"])
        #expect(r.status == 1 && r.output.contains("--web.enable-lifecycle has no effect"), "\(r.output)")
    }

    @Test func newPipelineThatCannotStart_isReplacedByThePreviousOne() throws {
        let redis = try RedisServer()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml")
        let good = pipeline(redis, dir)
        try good.write(to: file, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(args: ["--config", file.path, "--web.enable-lifecycle"])
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
        try (good + "\n  second: { type: prometheus, inputs: [decode], listen: \"127.0.0.1:\(taken)\" }\n").write(to: file, atomically: true, encoding: .utf8)
        #expect(try httpGet(port: gateway.port, path: "/-/reload", method: "POST").status == 200)
        #expect(eventually { gateway.log.contains("the reloaded pipeline cannot start; starting the previous one again") })
        #expect(eventually { (try? gateway.value("prom_stream_gateway_config_last_reload_successful")) == 0 })
        #expect(eventually { (try? gateway.value("kept_total")) == 4 }, "the previous pipeline serves, with its aggregate")
        try redis.push([#"{"type":"counter","name":"kept_total","value":1}"#])
        #expect(eventually { (try? gateway.value("kept_total")) == 5 })
    }
}
