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
}
