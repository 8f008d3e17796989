import ArgumentParser
import Foundation
import Pipeline
import Redis
import Sources
import Synthetic

/// `gateway loadgen`: pushes realistic samples onto a Redis list — a fixed
/// `--count` as fast as possible (variadic LPUSH, pipelined) or a steady `--rate`
/// for `--duration` — and prints progress and a summary. `--drain` instead pops
/// the list empty with `RPOP key 1000` and discards: the Redis-side ceiling that
/// benchmarks compare the gateway against. Replaces the .NET gateway's
/// performance tool.
struct LoadGen: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "loadgen",
            abstract: "Push synthetic samples onto a Redis list (or drain it) for benchmarks.")

    @Option(help: "Redis URL or .NET connection string.") var redis = "localhost:6379"
    @Option(help: "List key.") var key = RedisListConfig.defaultKey
    @Option(help: "Samples to push: as fast as possible, or at --rate.") var count: Int?
    @Option(help: "Samples per second to hold (for --count samples, or for --duration).") var rate: Double?
    @Option(help: "Seconds to push at --rate when no --count is given.") var duration: Double = 30
    @Option(help: "Distinct series (with --labels 0: at most 50 per metric type, the names).") var series = 10_000
    @Option(help: "Labels per sample.") var labels = 3
    @Option(help: "Type mix in percent: counter,gauge,histogram,summary.") var mix = "50,20,25,5"
    @Option(help: "Samples per list element (>1 pushes JSON arrays).") var batch = 1
    @Option(help: "Values per LPUSH command.") var perCommand = 1000
    @Option(help: ArgumentHelp("Push onto the sharded queue key:{crc32(name) mod N} (Redis Cluster or one Redis; with --count, one sample "
        + "per element) instead of key.")) var shards: Int?
    @Flag(help: "Pop the list empty (RPOP 1000, pipelined) and report the rate instead of pushing.") var drain = false
    @Flag(help: "No progress lines.") var quiet = false

    func validate() throws {
        guard SyntheticPayloads.parseMix(mix) != nil else {
            throw ValidationError("--mix takes four percentages for counter,gauge,histogram,summary adding up to 100, e.g. 50,20,25,5; got `\(mix)`")
        }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard perCommand >= 1 else { throw ValidationError("--per-command must be at least 1") }
        guard series >= 1, labels >= 0 else { throw ValidationError("--series must be at least 1 and --labels at least 0") }
        if let count, count <= 0 { throw ValidationError("--count must be positive") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
        guard drain || count != nil || rate != nil else { throw ValidationError("give --count, --rate (with --duration), or --drain") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        if let shards {
            guard (1...16384).contains(shards), count != nil, rate == nil, batch == 1,
                    !drain else { throw ValidationError("--shards takes 1 to 16384, with --count and --batch 1") }
        }
    }

    /// `--shards`: every payload onto its name's shard, in order per shard.
    private func runSharded(shards: Int, total: Int) throws {
        let url = try RedisURL.parse(redis).get()
        let cluster = RedisCluster(connector: RedisConnector(url: url, connectTimeout: 2, readTimeout: 30), seeds: url.endpoints)
        let payloads = makePayloads(samplesPerElement: 1)
        let shardOf = payloads.map { p -> Int in
            let marker = Array(#""name":""#.utf8)
            guard let at = (0...(p.count - marker.count)).first(where: { p[$0..<($0 + marker.count)].elementsEqual(marker) }) else { return 0 }
            let start = at + marker.count
            let end = p[start...].firstIndex(of: UInt8(ascii: "\"")) ?? p.count
            return ShardRouting.shard(ofName: p[start..<end], shards: shards)
        }
        var perShard = [[[UInt8]]](repeating: [], count: shards)
        for i in 0..<total { perShard[shardOf[i % payloads.count]].append(payloads[i % payloads.count]) }
        let start = Date()
        for (s, values) in perShard.enumerated() {
            let k = ShardRouting.queueKey(key, shard: s)
            for from in stride(from: 0, to: values.count, by: perCommand) {
                try cluster.command(key: k, [Array("LPUSH".utf8), Array(k.utf8)] + values[from..<min(values.count, from + perCommand)])
            }
        }
        let t = Date().timeIntervalSince(start)
        print("sent=\(total) seconds=\(String(format: "%.3f", t)) rate=\(Int(Double(total) / t)) errors=0 elements=\(total)")
    }

    func run() throws {
        let c = try redisConnector(redis, readTimeout: 30).connect()
        if drain { return try runDrain(c) }
        let total = count ?? Int((rate ?? 0) * duration)   // samples
        if let shards { return try runSharded(shards: shards, total: total) }
        guard total > 0 else { throw ValidationError("--rate × --duration is less than one sample") }
        // Elements of `batch` samples, and one shorter element for the rest, so
        // exactly `total` samples are pushed.
        let payloads = makePayloads(samplesPerElement: batch)
        let rest = total % batch
        let tail = rest > 0 ? makePayloads(samplesPerElement: rest)[0] : nil
        let elements = total / batch + (rest > 0 ? 1 : 0)
        var sent = 0, sentElements = 0, errors = 0, i = 0
        let start = Date()
        var lastReport = start
        let keyBytes = Array(key.utf8)
        var inFlight = 0
        while sentElements < elements {
            var n = min(perCommand, elements - sentElements)
            if let rate {   // pace: never ahead of rate × elapsed, in commands of what is due
                let due = Date().timeIntervalSince(start) * rate
                if Double(sent) >= due { usleep(UInt32(min(100_000, max(200, (Double(sent) - due + Double(batch)) / rate * 1e6)))); continue }
                n = min(n, max(1, Int((due - Double(sent)) / Double(batch)) + 1))
            }
            var args: [[UInt8]] = [Array("LPUSH".utf8), keyBytes]
            args.reserveCapacity(n + 2)
            for _ in 0..<n {
                let last = sentElements == elements - 1
                if last, let tail { args.append(tail); sent += rest } else { args.append(payloads[i % payloads.count]); sent += batch }
                i += 1
                sentElements += 1
            }
            c.append(args)
            inFlight += 1
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
        print("sent=\(sent) seconds=\(String(format: "%.3f", t)) rate=\(Int(Double(sent) / t)) errors=\(errors) elements=\(sentElements)")
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

    private func makePayloads(samplesPerElement: Int) -> [[UInt8]] {
        SyntheticPayloads(series: series, labelsPerSample: labels, samplesPerElement: samplesPerElement,
                          mix: SyntheticPayloads.parseMix(mix)!).elements()
    }
}

extension RedisValue {
    var isError: Bool { if case .error = self { true } else { false } }
}
