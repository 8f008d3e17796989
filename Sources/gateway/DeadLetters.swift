import ArgumentParser
import Foundation
import Redis
import Sources

/// `gateway dead-letters`: the newest rejected samples and payloads of a
/// `dead_letter` list, one per line: time, stage, reason, note and payload.
struct DeadLetters: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dead-letters",
                                                    abstract: "Print the newest dead letters (rejected samples and payloads) of a dead_letter list.")

    @Option(help: "Redis URL or .NET connection string.")
    var redis = ProcessInfo.processInfo.environment["Redis__ConnectionString"] ?? "localhost:6379"
    @Option(help: "The list (default: $Metrics__DeadLetterKey).") var key = ProcessInfo.processInfo.environment["Metrics__DeadLetterKey"] ?? ""
    @Option(help: "How many, newest last.") var count = 20
    @Flag(help: "Keep printing letters as they arrive (Ctrl-C stops).") var follow = false
    @Flag(help: "Print the stored JSON lines as they are.") var json = false

    func validate() throws {
        guard !key.isEmpty else { throw ValidationError("give --key (or set Metrics__DeadLetterKey)") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        let c = try redisConnector(redis, readTimeout: 5).connect()
        func newest(_ n: Int) throws -> [[UInt8]] {
            guard case .array(let items) = try c.command("LRANGE", key, "0", String(n - 1)) else { return [] }
            return items.compactMap { if case .string(let b) = $0 { b } else { nil } }
        }
        var seen = try newest(count)
        for line in seen.reversed() { print(render(line)) }
        guard follow else { return }
        while true {
            Thread.sleep(forTimeInterval: 1)
            let now = try newest(1000)
            // New letters are the ones above the newest already printed.
            let fresh = seen.first.flatMap { top in now.firstIndex(of: top) }.map { Array(now[..<$0]) } ?? now
            for line in fresh.reversed() { print(render(line)) }
            fflush(nil)   // a pipe to `less` or a test sees each letter as it arrives
            if !fresh.isEmpty || seen.isEmpty { seen = now }
        }
    }

    /// `2026-12-01T10:00:00.123Z  decode  invalid_json  <note>\n    <payload>`.
    func render(_ line: [UInt8]) -> String {
        guard !json, let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: String] else {
            return String(decoding: line, as: UTF8.self)
        }
        let payload = (o["payload"] ?? "").replacingOccurrences(of: "\n", with: "\\n")
        return "\(o["ts"] ?? "?")  \(o["stage"] ?? "?")  \(o["reason"] ?? "?")  \(o["note"] ?? "")\n    \(payload)"
    }
}
