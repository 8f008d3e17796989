import Foundation
import Testing
import TestSupport

/// `dead_letter` through the binary: rejected payloads and samples land on a
/// capped Redis list with reason, stage and time; `gateway dead-letters` prints
/// them; a Redis that refuses them never stops ingestion.
@Suite struct DeadLetterTests {
    /// The binary on redis → json_decode (with `deadLetter` as its `dead_letter` block) → prometheus.
    func startGateway(_ redis: RedisServer, deadLetter: String, in dir: URL) throws -> GatewayProcess {
        let file = dir.appendingPathComponent("p.yaml")
        try """
            sources: { queue: { type: redis_list, url: "127.0.0.1:\(redis.port)" } }
            transforms: { decode: { type: json_decode, inputs: [queue], dead_letter: \(deadLetter) } }
            sinks: { prometheus: { type: prometheus, inputs: [decode], listen: "${GATEWAY_LISTEN}" } }
            """.write(to: file, atomically: true, encoding: .utf8)
        return try GatewayProcess(args: ["--config", file.path])
    }

    func llen(_ redis: RedisServer, _ key: String) -> Int { (try? redis.llen(key)) ?? -1 }

    func metaTotal(_ gateway: GatewayProcess, _ prefix: String) -> Double {
        ((try? gateway.metrics()) ?? "").split(separator: "\n").filter { $0.hasPrefix(prefix) }
            .compactMap { Double($0.split(separator: " ").last!) }.reduce(0, +)
    }

    @Test func defaultPipeline_putsEveryRejectionOnTheList_andTheCommandPrintsThem() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Metrics__DeadLetterKey": "dl"])
        try redis.push(["{not json", #"{"type":"counter","name":"bad name","value":1}"#, #"{"type":"gauge","name":"g"}"#,
                        #"{"type":"counter","name":"fine_total","value":1}"#])
        #expect(eventually { llen(redis, "dl") == 3 }, "\(llen(redis, "dl"))")
        #expect(try gateway.value("fine_total") == 1)
        let env = ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Metrics__DeadLetterKey": "dl", "PATH": "/usr/bin:/bin"]
        let printed = try runCommand(GatewayProcess.binary, ["dead-letters"], environment: env)
        #expect(printed.status == 0, "\(printed.output)")
        let lines = printed.output.split(separator: "\n").filter { !$0.hasPrefix("    ") }
        #expect(lines.count == 3, "\(printed.output)")
        let kinds = Set(lines.map { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().prefix(2).joined(separator: " ") })
        #expect(kinds == ["decode invalid_json", "decode missing_field", "validate invalid_name"], "\(lines)")
        #expect(printed.output.contains("{not json"))
        #expect(lines.allSatisfy { $0.hasPrefix("20") && $0.contains("Z  ") })
        let json = try runCommand(GatewayProcess.binary, ["dead-letters", "--json", "--count", "1"], environment: env)
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: String]
        #expect(Set(object?.keys.map { $0 } ?? []) == ["ts", "stage", "reason", "note", "payload"], "\(json.output)")
        #expect(metaTotal(gateway, #"prom_stream_gateway_dead_letters_total{result="written""#) == 3)
    }

    @Test func list_isCappedAtMaxLength_andFollowPrintsNewLetters() throws {
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("dl")
        defer { try? FileManager.default.removeItem(at: dir) }
        let gateway = try startGateway(redis, deadLetter: "{ url: \"127.0.0.1:\(redis.port)\", key: capped, max_length: 5 }", in: dir)
        try redis.push((0..<50).map { "bad \($0)" })
        #expect(eventually { metaTotal(gateway, #"prom_stream_gateway_dead_letters_total{result="written""#) == 50 })
        #expect(llen(redis, "capped") == 5)

        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: GatewayProcess.binary)
        follower.arguments = ["dead-letters", "--redis", "127.0.0.1:\(redis.port)", "--key", "capped", "--count", "1", "--follow"]
        let out = Pipe()
        follower.standardOutput = out
        try follower.run()
        Thread.sleep(forTimeInterval: 0.5)
        try redis.push(["late arrival"])
        Thread.sleep(forTimeInterval: 2.5)
        // SIGKILL: a child of the test process may inherit a mask that blocks SIGTERM.
        kill(follower.processIdentifier, SIGKILL)
        follower.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("bad 49") && text.contains("late arrival"), "\(text)")
    }

    /// Hostile elements — 60 KB of control bytes, each letter 360 KB of `\\u0001` escapes — while the
    /// dead-letter Redis takes connections and never answers: every good sample is aggregated, and the
    /// letters waiting are bounded in bytes (`DeadLetterQueue.byteCapacity`), not only in number
    /// (10 000 such letters are 3.6 GB). Escaping them cost ~10 ms each on the decoder's thread before.
    @Test func hostileLetters_withASilentDeadLetterRedis_keepIngestionGoing_withinBoundedMemory() throws {
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("dl-hostile")
        defer { try? FileManager.default.removeItem(at: dir) }
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)   // listens, never accepts or reads
        defer { close(silent) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(silent, $0, &len) } }
        #expect(listen(silent, 16) == 0)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let gateway = try startGateway(redis, deadLetter: "{ url: \"127.0.0.1:\(port)\", key: dl }", in: dir)
        let pid = gateway.process.processIdentifier
        try redis.push([#"{"type":"counter","name":"ok_total","value":1}"#])
        #expect(eventually { (try? gateway.value("ok_total")) == 1 })
        let idle = MemoryBudgetTests().status(pid, "VmRSS")
        let hostile = "{" + String(repeating: "\u{01}", count: 60_000)
        for _ in 0..<15 {
            try redis.push((0..<100).flatMap { _ in [hostile, #"{"type":"counter","name":"ok_total","value":1}"#] })
        }
        var peak = 0
        #expect(eventually(timeout: 120) {
            peak = max(peak, MemoryBudgetTests().status(pid, "VmRSS"))
            return (try? gateway.value("ok_total")) == 1501
        })
        let grew = max(peak, MemoryBudgetTests().status(pid, "VmHWM")) - idle
        #expect(grew < 120 << 20, "RSS grew \(grew >> 20) MiB over \(idle >> 20) MiB idle")
        print("hostile dead letters: RSS grew \(grew >> 20) MiB over \(idle >> 20) MiB idle")
        #expect(metaTotal(gateway, #"prom_stream_gateway_dead_letters_total{result="dropped""#) > 0)
        #expect(gateway.process.isRunning)
    }

    @Test func unreachableDeadLetterRedis_neverStopsIngestion() throws {
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("dl")
        defer { try? FileManager.default.removeItem(at: dir) }
        let gateway = try startGateway(redis, deadLetter: "{ url: \"127.0.0.1:\(freePort())\", key: dl }", in: dir)
        try redis.push((0..<2000).flatMap { i in ["bad \(i)", #"{"type":"counter","name":"ok_total","value":1}"#] })
        #expect(eventually { (try? gateway.value("ok_total")) == 2000 })
        #expect(eventually { metaTotal(gateway, #"prom_stream_gateway_dead_letters_total{result="dropped""#) == 2000 })
        #expect(gateway.log.contains("cannot write dead letters to `dl`"))
        #expect(gateway.process.isRunning)
    }
}
