import Foundation
import Pipeline
import Redis
import Testing
import TestSupport

/// docs/sending.md's Python (redis-py) and shell senders, run as written against a real
/// Redis and gateway (only the port is changed).
@Suite struct ReadmeSnippetTests {
    func codeBlock(in file: String, after marker: String) throws -> String {
        let readme = try document(file)
        let start = try #require(readme.range(of: marker))
        let end = try #require(readme[start.upperBound...].range(of: "```"))
        return String(readme[start.upperBound..<end.lowerBound])
    }

    @Test func pythonAndShellSenders_reachTheGateway() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        let python = try codeBlock(in: "docs/sending.md", after: "# Python, redis-py\n").replacingOccurrences(of: "redis.Redis()", with: "redis.Redis(port=\(redis.port))")
        let (status, output) = try runCommand("/usr/bin/env", ["python3", "-c", python])
        #expect(status == 0, "\(output)")
        let shell = try codeBlock(in: "docs/sending.md", after: "# shell\n").replacingOccurrences(of: "redis-cli ", with: "redis-cli -p \(redis.port) ")
        let (shellStatus, shellOutput) = try runCommand("/bin/sh", ["-c", shell])
        #expect(shellStatus == 0, "\(shellOutput)")
        #expect(eventually { (try? gateway.value("job_duration_seconds_count")) == 1 && (try? gateway.value("jobs_total")) == 1 })
    }

    /// The scale-out section's routing snippets (PHP, Python, Node, shell), run as
    /// written with a client that prints the key, pick the shard `gateway shard-of` does.
    @Test(arguments: ["http_requests_total", "jobs_total", "a", "lambda_duration_seconds", "ünïcode_total"])
    func routingSnippets_pickTheShardGatewayShardOfPrints(_ name: String) throws {
        let want = try runCommand(GatewayProcess.binary, ["shard-of", name, "--shards", "8"]).output.split(separator: " ")[1].trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(want == ShardRouting.queueKey("prom-stream-gateway:metric-queue", shard: ShardRouting.shard(of: name, shards: 8)))
        let php = try codeBlock(in: "docs/scale-out.md", after: "# PHP\n")
        let phpRun = try runCommand("/usr/bin/env", ["php", "-r", """
            class R { function lPush($k, $v) { echo $k; } }
            $redis = new R(); $name = $argv[1]; $sample = [];
            \(php)
            """, "--", name])
        #expect(phpRun.output == want, "PHP: \(phpRun.output)")
        let py = try codeBlock(in: "docs/scale-out.md", after: "# Python\n")
        let pyRun = try runCommand(python3, ["-c", """
            import json, sys, zlib
            class R:
                def lpush(self, k, v): sys.stdout.write(k)
            r = R(); name = sys.argv[1]; sample = {}
            \(py)
            """, name])
        #expect(pyRun.output == want, "Python: \(pyRun.output)")
        let node = try codeBlock(in: "docs/scale-out.md", after: "// Node (or zlib.crc32 on Node 20.15, 22.2 and later)\n")
        let nodeRun = try runCommand("/usr/bin/env", ["node", "-e", """
            const redis = { lPush: async (k, v) => process.stdout.write(k) };
            const name = process.argv[1], sample = {};
            (async () => { \(node) })();
            """, name])
        #expect(nodeRun.output == want, "Node: \(nodeRun.output)")
        let shell = try codeBlock(in: "docs/scale-out.md", after: "# shell (gzip's trailer is the IEEE CRC-32; od reads it little-endian, as x86 and arm64 are)\n")
            .replacingOccurrences(of: "redis-cli -c LPUSH", with: "printf %s")
        let shellRun = try runCommand("/bin/sh", ["-c", "name=\"$1\"; payload=; " + shell, "sh", name])
        #expect(shellRun.output == want, "shell: \(shellRun.output)")
    }

    /// The README's `gateway shard-of` example line is what the command prints.
    @Test func shardOfExample_isWhatTheCommandPrints() throws {
        let readme = try document("docs/scale-out.md")
        let out = try runCommand(GatewayProcess.binary, ["shard-of", "jobs_total", "--shards", "8"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(readme.contains("`gateway shard-of jobs_total --shards 8` prints the shard and the key (`\(out)`)"), "\(out)")
    }

    /// The TLS pipeline example validates as written (with a sink added and the token set).
    @Test func tlsPipelineExample_validates() throws {
        let readme = try document("docs/security.md")
        let section = try #require(readme.range(of: "## TLS, Sentinel and the connection string"))
        let block = try #require(readme[section.upperBound...].range(of: "```yaml\n"))
        let end = try #require(readme[block.upperBound...].range(of: "```"))
        let yaml = String(readme[block.upperBound..<end.lowerBound]) + """
            transforms: { decode: { type: json_decode, inputs: [queue] } }
            sinks: { prometheus: { type: prometheus, inputs: [decode], listen: "127.0.0.1:0" } }
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try runCommand(GatewayProcess.binary, ["validate", "--config", file.path], environment: ["REDIS_TOKEN": "t", "PATH": "/usr/bin:/bin"])
        #expect(r.status == 0, "\(r.output)")
    }

    /// The web config example is what the parser accepts, once its placeholders are real.
    @Test func webConfigExample_isAccepted() throws {
        let certs = try TestCertificates()
        let readme = try document("docs/security.md")
        let section = try #require(readme.range(of: "## Protecting /metrics: the web config file"))
        let block = try #require(readme[section.upperBound...].range(of: "```yaml\n"))
        let end = try #require(readme[block.upperBound...].range(of: "```"))
        let htpasswd = try #require(RedisServer.which("htpasswd"), "htpasswd not installed (apt-get install apache2-utils)")
        let hash = try runCommand(htpasswd, ["-nbBC", "10", "prometheus", "x"]).output.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("prometheus:".count)
        let yaml = String(readme[block.upperBound..<end.lowerBound]).replacingOccurrences(of: "$2y$10$…", with: String(hash))
        let file = certs.path("web.yml")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCommand(GatewayProcess.binary, ["validate", "--web.config.file", file], environment: ["PATH": "/usr/bin:/bin"])
        #expect(r.status == 0, "\(r.output)")
    }
}
