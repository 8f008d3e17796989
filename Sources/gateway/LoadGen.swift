import ArgumentParser
import Foundation
import Pipeline
import Sources

/// `gateway loadgen`: pushes realistic samples onto a Redis list — a fixed
/// `--count` as fast as possible (variadic LPUSH, pipelined) or a steady `--rate`
/// for `--duration` — and prints progress and a summary. `--drain` instead pops
/// the list empty with `RPOP key 1000` and discards: the Redis-side ceiling that
/// benchmarks compare the gateway against. Replaces the .NET gateway's
/// performance tool.
struct LoadGen: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "loadgen", abstract: "Push synthetic samples onto a Redis list (or drain it) for benchmarks.")

    @Option(help: "Redis URL or .NET connection string.") var redis = "localhost:6379"
    @Option(help: "List key.") var key = RedisListConfig.defaultKey
    @Option(help: "Samples to push as fast as possible.") var count: Int?
    @Option(help: "Samples per second to hold (with --duration).") var rate: Double?
    @Option(help: "Seconds to push at --rate.") var duration: Double = 30
    @Option(help: "Distinct series.") var series = 10_000
    @Option(help: "Labels per sample.") var labels = 3
    @Option(help: "Type mix in percent: counter,gauge,histogram,summary.") var mix = "50,20,25,5"
    @Option(help: "Samples per list element (>1 pushes JSON arrays).") var batch = 1
    @Option(help: "Values per LPUSH command.") var perCommand = 1000
    @Flag(help: "Pop the list empty (RPOP 1000, pipelined) and report the rate instead of pushing.") var drain = false
    @Flag(help: "No progress lines.") var quiet = false

    func run() throws {
        let url = try RedisURL.parse(redis).get()
        let c = try RedisConnection(host: url.host, port: url.port, timeout: 2, readTimeout: 30)
        if let password = url.password { try c.command(contentsOf: url.user.map { ["AUTH", $0, password] } ?? ["AUTH", password]) }
        if url.database != 0 { try c.command("SELECT", String(url.database)) }
        if drain { return try runDrain(c) }
        let payloads = makePayloads()
        var sent = 0, errors = 0, i = 0
        let start = Date()
        var lastReport = start
        let total = count ?? Int((rate ?? 0) * duration)
        guard total > 0 else { throw ValidationError("give --count, or --rate with --duration") }
        let keyBytes = Array(key.utf8)
        var inFlight = 0
        while sent < total {
            let n = min(perCommand, total - sent)
            if let rate {   // pace: never ahead of rate × elapsed
                let due = Date().timeIntervalSince(start) * rate
                if Double(sent) >= due { usleep(UInt32(min(100_000, max(200, (Double(sent) - due) / rate * 1e6)))); continue }
            }
            var args: [[UInt8]] = [Array("LPUSH".utf8), keyBytes]
            args.reserveCapacity(n + 2)
            for _ in 0..<n { args.append(payloads[i % payloads.count]); i += 1 }
            c.append(args)
            inFlight += 1
            sent += n * batch
            if inFlight == 4 {   // keep a few commands in flight
                errors += try readReply(c)
                inFlight -= 1
            }
            if !quiet, Date().timeIntervalSince(lastReport) >= 1 {
                lastReport = Date()
                let t = lastReport.timeIntervalSince(start)
                FileHandle.standardError.write(Data("sent \(sent) samples in \(String(format: "%.1f", t)) s (\(Int(Double(sent) / t))/s)\n".utf8))
            }
        }
        while inFlight > 0 { errors += try readReply(c); inFlight -= 1 }
        let t = Date().timeIntervalSince(start)
        print("sent=\(sent) seconds=\(String(format: "%.3f", t)) rate=\(Int(Double(sent) / t)) errors=\(errors) elements=\(sent / batch)")
    }

    private func readReply(_ c: RedisConnection) throws -> Int {
        try c.withReply { r throws(RedisError) in RedisConnection.copy(r).isError ? 1 : 0 }
    }

    private func runDrain(_ c: RedisConnection) throws {
        let start = Date()
        var popped = 0
        let rpop: [[UInt8]] = [Array("RPOP".utf8), Array(key.utf8), Array("1000".utf8)]
        var done = false
        while !done {
            for _ in 0..<4 { c.append(rpop) }
            for _ in 0..<4 {
                let n = try c.withReply { r throws(RedisError) -> Int in
                    if case .array(let items) = RedisConnection.copy(r) { return items.count }
                    return 0
                }
                popped += n
                if n == 0 { done = true }
            }
        }
        let t = Date().timeIntervalSince(start)
        print("drained=\(popped) seconds=\(String(format: "%.3f", t)) rate=\(Int(Double(popped) / max(t, 1e-9)))")
    }

    private func makePayloads() -> [[UInt8]] {
        SyntheticPayloads(series: series, labelsPerSample: labels, samplesPerElement: batch,
                          mix: mix.split(separator: ",").compactMap { Int($0) }).elements()
    }
}

extension RedisValue {
    var isError: Bool { if case .error = self { true } else { false } }
}
