import Foundation
import Testing
import TestSupport

/// The CLI as a new user meets it: mistakes are named, with the reason, in one
/// round, and never answered with another command's usage.
@Suite struct CommandLineTests {
    func gateway(_ args: [String], env: [String: String] = [:]) throws -> (status: Int32, output: String) {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        for (k, v) in env { environment[k] = v }
        return try runCommand(GatewayProcess.binary, args, environment: environment)
    }

    func file(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("p-\(UUID().uuidString).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test func mistypedSubcommand_suggestsTheNearestOne() throws {
        let (status, output) = try gateway(["valdate"])
        #expect(status == 2)
        #expect(output.contains("unknown command `valdate`; did you mean `validate`?"), "\(output)")
        #expect(!output.contains("USAGE"), "\(output)")
    }

    @Test(arguments: [(["run", "--log-level", "verbose"], [String: String]()), (["run"], ["LOG_LEVEL": "bogus"])])
    func unknownLogLevel_isRejected(_ args: [String], _ env: [String: String]) throws {
        let (status, output) = try gateway(args, env: env)
        #expect(status != 0)
        #expect(output.contains("is not one of trace, debug, info, notice, warning, error, critical"), "\(output)")
    }

    @Test(arguments: [("/tmp", "it is a directory"), ("/dev/null", "is empty"), ("/nonexistent/p.yaml", "no such file")])
    func unreadableConfig_saysWhy(_ path: String, _ reason: String) throws {
        let (status, output) = try gateway(["validate", "--config", path])
        #expect(status == 1)
        #expect(output.contains(reason), "\(output)")
        #expect(!output.contains("USAGE"), "\(output)")
    }

    /// json_decode taking larger elements than its source reads (the source cuts them): refused, naming both keys.
    @Test(arguments: [("32MiB", "", false), ("16MiB", "", true), ("32MiB", ", max_element_bytes: 32MiB", true)])
    func aPayloadLimitAboveTheSourcesElementLimit_isRefused(_ payload: String, _ sourceOption: String, _ ok: Bool) throws {
        let path = try file("""
        sources:
          queue: { type: redis_list\(sourceOption) }
        transforms:
          decode: { type: json_decode, inputs: [queue], max_payload_bytes: \(payload) }
        sinks:
          prometheus: { type: prometheus, inputs: [decode] }
        """)
        let (status, output) = try gateway(["validate", "--config", path])
        #expect((status == 0) == ok, "\(output)")
        if !ok {
            #expect(output.contains("transforms.decode.max_payload_bytes: 33554432 bytes is more than max_element_bytes of sources.queue (16777216)"),
                    "\(output)")
        }
    }

    @Test func listenFlag_withAFileThatIgnoresIt_isAnError() throws {
        let path = try file("""
        sources:
          queue: { type: redis_list }
        transforms:
          decode: { type: json_decode, inputs: [queue] }
        sinks:
          prometheus: { type: prometheus, inputs: [decode], listen: "127.0.0.1:9" }
        """)
        let (status, output) = try gateway(["validate", "--config", path, "--listen", "127.0.0.1:1234"])
        #expect(status == 1)
        #expect(output.contains("--listen 127.0.0.1:1234 has no effect"), "\(output)")
    }

    /// `gateway validate FILE…` as `promtool check config FILE…`: every file checked and reported, exit 1 if one fails.
    @Test func validate_takesFilesAsArguments_andChecksEachOfThem() throws {
        let files = ["default", "router", "two-queues"].map { packageRoot.appendingPathComponent("pipelines/\($0).yaml").path }
        let good = try gateway(["validate"] + files)
        #expect(good.status == 0)
        #expect(good.output.split(separator: "\n").filter { $0.hasPrefix("ok: ") }.count == 3, "\(good.output)")
        let bad = try file("sources: {}\n")
        let mixed = try gateway(["validate", files[0], bad, files[1]])
        #expect(mixed.status == 1)
        #expect(mixed.output.contains("ok: \(files[0])") && mixed.output.contains("ok: \(files[1])"), "\(mixed.output)")
        #expect(mixed.output.contains("\(bad): sinks: at least one sink is required"), "\(mixed.output)")
        let both = try gateway(["validate", "--config", files[0], files[1]])
        #expect(both.status == 0 && both.output.contains("ok: \(files[0])") && both.output.contains("ok: \(files[1])"), "\(both.output)")
    }

    @Test func validate_reportsEveryMistakeAtOnce() throws {
        let path = try file("""
        sources:
          queue: { type: redis_list, url: "http://127.0.0.1:6391", database: "-1", connect_timeout: 1e300s }
        transforms:
          decode: { type: json_decode, inputs: [queue, queue], max_payload_bytes: 99999999999999GiB }
        sinks:
          a: { type: prometheus, inputs: [decode], listen: "0.0.0.0:9091", idle_timeout: 0s }
          b: { type: prometheus, inputs: [decode], listen: "127.0.0.1:9091" }
          c: { type: prometheus, inputs: [decode], listen: "nowhere" }
        """)
        let (status, output) = try gateway(["validate", "--config", path])
        #expect(status == 1)
        let lines = output.split(separator: "\n").map { $0.replacingOccurrences(of: path + ": ", with: "") }
        #expect(lines == [
            "line 2: sources.queue.connect_timeout: expected a duration like 500ms, 2s, 10m (at most 292 years), got `1e300s`",
            "line 2: sources.queue.database: must be a non-negative integer, got `-1`",
            "line 2: sources.queue.url: unsupported scheme `http://` (use redis://, rediss:// or the host:port,key=value form)",
            "line 4: transforms.decode.inputs: lists `queue` twice",
            "line 4: transforms.decode.max_payload_bytes: expected a size that fits 64 bits, got `99999999999999GiB`",
            "line 6: sinks.a.idle_timeout: must be greater than 0",
            "line 7: sinks.b.listen: TCP port 9091 is also used by sinks.a",
            "line 8: sinks.c.listen: expected HOST:PORT with a port from 0 to 65535, got `nowhere`",
        ], "\(output)")
    }

    @Test func environmentValues_areDataAndErrorsNameTheVariable() throws {
        let bad = try gateway(["validate"], env: ["Redis__MetricQueueDatabase": "-1"])
        #expect(bad.status == 1)
        #expect(bad.output.contains("sources.queue.database (from environment variable `Redis__MetricQueueDatabase`): must be a non-negative integer, got `-1`"), "\(bad.output)")
        for key in [#"a"b"#, #"q\tx"#, "k: [x] # y"] {
            let ok = try gateway(["validate"], env: ["Redis__MetricQueueKey": key, "Redis__ConnectionString": #"localhost:6379,password=p"w#rd"#])
            #expect(ok.status == 0, "\(key): \(ok.output)")
        }
    }

    @Test func occupiedPort_isNamedWithTheOSReason() throws {
        let holder = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:1"])
        let (status, output) = try gateway(["run", "--listen", "127.0.0.1:\(holder.port)"], env: ["Redis__ConnectionString": "127.0.0.1:1"])
        #expect(status == 1)
        #expect(output.contains("sinks.prometheus: cannot listen on 127.0.0.1:\(holder.port): Address already in use (errno 98)"), "\(output)")
    }

    /// One gateway per state file: a second process on the same file does not start, naming the file
    /// and the holder; two sinks of one pipeline on one file are refused by `validate`. Once the holder
    /// is killed (-9: the kernel lets go of the lock) the file is free again.
    @Test func aStateFileInUse_isRefused_byAnotherGateway_andByASecondSink() throws {
        let redis = try RedisServer()
        let dir = try makeTemporaryDirectory("lock")
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = ["Redis__ConnectionString": "127.0.0.1:\(redis.port)", "Metrics__StateFile": dir.appendingPathComponent("state").path]
        let holder = try GatewayProcess(environment: env.merging(["Gateway__Instance": "a"]) { $1 })
        let (status, output) = try gateway(["run", "--listen", "127.0.0.1:0"], env: env.merging(["Gateway__Instance": "b"]) { $1 })
        #expect(status == 1)
        #expect(output.contains("sinks.prometheus: state_file: \(dir.path)/state is in use by another gateway (process "
                                + "\(holder.process.processIdentifier) holds"), "\(output)")
        kill(holder.process.processIdentifier, SIGKILL)
        holder.process.waitUntilExit()
        let next = try GatewayProcess(environment: env.merging(["Gateway__Instance": "a"]) { $1 })
        #expect(next.process.isRunning)

        let path = try file("""
        sinks:
          a: { type: prometheus, inputs: [q], listen: "127.0.0.1:0", state_file: /tmp/one }
          b: { type: remote_write, inputs: [q], url: "http://127.0.0.1:1/", state_file: /tmp/one }
        sources:
          q: { type: redis_list, reliable: true }
        """)
        let refused = try gateway(["validate", "--config", path])
        #expect(refused.status == 1 && refused.output.contains("sinks.b.state_file: the state file /tmp/one is also used by sinks.a"),
                "\(refused.output)")
    }

    @Test func stateFileFedByASourceThatCannotRedeliver_isAWarning() throws {
        let path = try file("""
        sources:
          queue: { type: redis_list }
        transforms:
          decode: { type: json_decode, inputs: [queue] }
        sinks:
          prometheus: { type: prometheus, inputs: [decode], state_file: /tmp/never-written }
        """)
        let (status, output) = try gateway(["validate", "--config", path])
        #expect(status == 0)
        #expect(output.contains("warning: sinks.prometheus keeps its aggregate across restarts, but sources.queue cannot deliver again what a crash loses"), "\(output)")
        let quiet = try gateway(["validate"], env: ["Metrics__StateFile": "/tmp/never-written"])
        #expect(quiet.status == 0 && !quiet.output.contains("warning"), "the default pipeline turns both on: \(quiet.output)")
    }
}

@Suite struct JSONLogTests {
    @Test func logFormatJSON_writesOneParsableObjectPerLine_evenForHostilePayloads() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(args: ["--log-format", "json"], environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        // A payload with quotes, a backslash, a newline and control bytes lands in a drop warning.
        try redis.push(["{\"type\":\"counter\",\"name\":\"a\\\"b\\\\c\\nd\u{1}\u{7f}\"", #"{"type":"counter","name":"ok_total","value":1}"#])
        #expect(eventually { (try? gateway.value("ok_total")) == 1 })
        #expect(eventually { gateway.log.contains("dropped") })
        #expect(gateway.terminate().status == 0)
        let lines = gateway.log.split(separator: "\n")
        #expect(lines.count >= 5)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object != nil, "not a flat JSON object of strings: \(line)")
            for key in ["ts", "level", "logger", "msg", "source"] { #expect(object?[key] != nil, "\(key) missing: \(line)") }
            #expect(object?["ts"]?.hasSuffix("Z") == true && object?["ts"]?.count == 24, "\(line)")
        }
        #expect(lines.contains { $0.contains(#""msg":"stopped""#) && $0.contains(#""processed":"1""#) })
        let bad = try runCommand(GatewayProcess.binary, ["run", "--log-format", "yaml"])
        #expect(bad.status != 0 && bad.output.contains("--log-format `yaml` is not one of text, json"), "\(bad.output)")
    }
}
