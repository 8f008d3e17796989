import Foundation
import Testing
import TestSupport

/// The README's Python (redis-py) and shell senders, run as written against a real
/// Redis and gateway (only the port is changed).
@Suite struct ReadmeSnippetTests {
    func codeBlock(after marker: String) throws -> String {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(readme.range(of: marker))
        let end = try #require(readme[start.upperBound...].range(of: "```"))
        return String(readme[start.upperBound..<end.lowerBound])
    }

    @Test func pythonAndShellSenders_reachTheGateway() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        let python = try codeBlock(after: "# Python, redis-py\n").replacingOccurrences(of: "redis.Redis()", with: "redis.Redis(port=\(redis.port))")
        let (status, output) = try runCommand("/usr/bin/env", ["python3", "-c", python])
        #expect(status == 0, "\(output)")
        let shell = try codeBlock(after: "# shell\n").replacingOccurrences(of: "redis-cli ", with: "redis-cli -p \(redis.port) ")
        let (shellStatus, shellOutput) = try runCommand("/bin/sh", ["-c", shell])
        #expect(shellStatus == 0, "\(shellOutput)")
        #expect(eventually { (try? gateway.value("job_duration_seconds_count")) == 1 && (try? gateway.value("jobs_total")) == 1 })
    }

    /// The TLS pipeline example validates as written (with a sink added and the token set).
    @Test func tlsPipelineExample_validates() throws {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "### TLS, Sentinel and the connection string"))
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
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "### Protecting /metrics: the web config file"))
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
