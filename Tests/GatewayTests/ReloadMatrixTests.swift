import Foundation
import Pipeline
import Redis
import Sources
import Testing
import TestSupport

/// Reloads through the binary under load, for every source mode and every kind of
/// reload: each cell pushes counters and histograms while SIGHUP swaps the
/// pipeline file three times, then checks that every counter and every histogram
/// `_count` equals what was pushed and that every processing list ends empty.
/// For the durable modes the cell then reloads once more, kill -9s the gateway
/// right after, restarts it and checks the same again.
///
/// The cluster mode (an unsharded reliable queue on a Redis Cluster) runs in
/// `ClusterTests`, which owns the suite's cluster.
enum ReloadMatrix {
    enum Mode: String, CaseIterable, CustomStringConvertible {
        case plain, reliable, sharded, group, cluster
        var description: String { rawValue }
        var durable: Bool { self != .plain }
        var shards: Int { self == .sharded || self == .group ? 4 : 0 }
    }

    /// What the reload rebuilds: the source (pop_count), the sink
    /// (snapshot_interval), both, or only the decoder (its parser).
    enum Kind: String, CaseIterable, CustomStringConvertible {
        case source, sink, both, transform
        var description: String { rawValue }
    }

    /// The queue server a cell runs on.
    struct Queue: Sendable {
        let url: String
        let push: @Sendable ([String], String) throws -> Void
        let llen: @Sendable (String) throws -> Int
    }

    static func pipeline(_ mode: Mode, _ kind: Kind, variant: Int, queue: Queue, key: String, dir: URL) -> String {
        let flip = variant % 2 == 1
        let pop = (kind == .source || kind == .both) && flip ? 150 : 100
        let snapshot = (kind == .sink || kind == .both) && flip ? "150ms" : "200ms"
        let parser = kind == .transform && flip ? "jansson" : "simdjson"
        let source: String
        switch mode {
        case .plain: source = "reliable: false"
        case .reliable: source = "reliable: true, instance: m"
        case .sharded: source = "shards: 4, instance: m"
        case .group: source = "shards: 4, group: g, instance: m, lease_ttl: 2s"
        case .cluster: source = "cluster: [\"\(queue.url)\"], reliable: true, instance: m"
        }
        let state: String
        switch mode {
        case .plain: state = ""
        case .group: state = "state: redis"
        default: state = "state_file: \"\(dir.appendingPathComponent("state").path)\""
        }
        let url = mode == .cluster ? queue.url.split(separator: ",")[0] : Substring(queue.url)
        return """
            sources:
              queue: { type: redis_list, url: "\(url)", key: "\(key)", pop_count: \(pop), \(source) }
            transforms:
              decode: { type: json_decode, inputs: [queue], parser: \(parser) }
            sinks:
              page:
                type: prometheus
                inputs: [decode]
                listen: "${GATEWAY_LISTEN}"
                snapshot_interval: \(snapshot)
                \(state)
            """
    }

    /// What was pushed.
    final class Ledger: @unchecked Sendable {
        var counters = 0
        var histograms = 0
    }

    /// Pushes `rounds` × 100 samples (half counters, half histogram observations), each
    /// onto its shard when the queue is sharded, with a short pause between rounds.
    static func produce(_ mode: Mode, queue: Queue, key: String, rounds: Int, into ledger: Ledger) {
        for r in 0..<rounds {
            var perKey: [String: [String]] = [:]
            for i in 0..<100 {
                let name = i % 2 == 0 ? "rm_jobs_total" : "rm_latency_seconds"
                let json = i % 2 == 0 ? #"{"type":"counter","name":"rm_jobs_total","value":1,"labels":{"k":"\#(i % 3)"}}"#
                                      : #"{"type":"histogram","name":"rm_latency_seconds","value":\#(r % 2 == 0 ? 0.05 : 0.5),"buckets":[0.1,1]}"#
                let target = mode.shards > 0 ? ShardRouting.queueKey(key, shard: ShardRouting.shard(of: name, shards: mode.shards)) : key
                perKey[target, default: []].append(json)
            }
            for (k, values) in perKey.sorted(by: { $0.key < $1.key }) {
                do { try queue.push(values, k) } catch { continue }
                ledger.counters += values.filter { $0.contains("counter") }.count
                ledger.histograms += values.filter { $0.contains("histogram") }.count
            }
            usleep(8_000)
        }
    }

    /// The processing lists of the mode.
    static func processingLists(_ mode: Mode, key: String) -> [String] {
        switch mode {
        case .plain: []
        case .reliable: ["\(key):processing:m"]
        case .cluster: ["{\(key)}:processing:m"]
        case .sharded, .group: (0..<mode.shards).map { ShardKeys(key: key, shard: $0).processing }
        }
    }

    static func sum(_ page: String, _ prefix: String) -> Int {
        page.split(separator: "\n").filter { $0.hasPrefix(prefix + "{") || $0.hasPrefix(prefix + " ") }
            .compactMap { Double($0.split(separator: " ").last!) }.reduce(0) { $0 + Int($1) }
    }

    static func totals(_ g: GatewayProcess) -> (counters: Int, histograms: Int)? {
        guard let page = try? g.metrics() else { return nil }
        return (sum(page, "rm_jobs_total"), sum(page, "rm_latency_seconds_count"))
    }

    /// Every series equals what was pushed, stays so, and every processing list is empty.
    static func expectExact(_ g: GatewayProcess, _ ledger: Ledger, _ mode: Mode, queue: Queue, key: String, _ when: String) {
        let want = (ledger.counters, ledger.histograms)
        let reached = eventually(timeout: 30) { totals(g).map { $0 == want } == true }
        #expect(reached, "\(mode) \(when): pushed \(want), page has \(String(describing: totals(g)))")
        guard reached else { return }
        Thread.sleep(forTimeInterval: 0.6)
        #expect(totals(g).map { $0 == want } == true, "\(mode) \(when): nothing applied twice, page has \(String(describing: totals(g)))")
        for list in processingLists(mode, key: key) {
            #expect(eventually(timeout: 15) { (try? queue.llen(list)) == 0 }, "\(mode) \(when): \(list) holds \((try? queue.llen(list)) ?? -1)")
        }
    }

    static func run(_ mode: Mode, _ kind: Kind, queue: Queue, key: String) throws {
        let dir = try makeTemporaryDirectory("reload-matrix")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml")
        var variant = 0
        func write() throws {
            try pipeline(mode, kind, variant: variant, queue: queue, key: key, dir: dir).write(to: file, atomically: true, encoding: .utf8)
        }
        try write()
        let gateway = try GatewayProcess(args: ["--config", file.path])
        let ledger = Ledger()
        let pusher = OSThreadRunner { produce(mode, queue: queue, key: key, rounds: 60, into: ledger) }
        for _ in 0..<3 {
            usleep(150_000)
            variant += 1
            try write()
            func reloads() -> Int { gateway.log.components(separatedBy: "reloaded the pipeline file").count }
            let before = reloads()
            kill(gateway.process.processIdentifier, SIGHUP)
            #expect(eventually { reloads() > before }, "\(mode)/\(kind): reload \(variant)")
        }
        pusher.join()
        let line = gateway.log.split(separator: "\n").last { $0.contains("reloaded the pipeline file") }.map(String.init) ?? ""
        let rebuilt = ["source": "rebuilt=queue", "sink": "rebuilt=page", "both": "rebuilt=queue,page", "transform": "rebuilt=decode"][kind.rawValue]!
        #expect(line.contains(rebuilt), "\(mode)/\(kind): \(line)")
        expectExact(gateway, ledger, mode, queue: queue, key: key, "after \(kind) reloads")
        #expect(!gateway.log.contains("re-emitting processing-list elements"), "\(mode)/\(kind): a reload re-emitted what the sink had applied")
        guard mode.durable else {
            #expect(gateway.terminate().status == 0)
            return
        }
        // kill -9 right after one more reload, under load, then a restart.
        let more = OSThreadRunner { produce(mode, queue: queue, key: key, rounds: 20, into: ledger) }
        usleep(50_000)
        variant += 1
        try write()
        kill(gateway.process.processIdentifier, SIGHUP)
        usleep(30_000)
        kill(gateway.process.processIdentifier, SIGKILL)
        gateway.process.waitUntilExit()
        more.join()
        let second = try GatewayProcess(args: ["--config", file.path])
        expectExact(second, ledger, mode, queue: queue, key: key, "after kill -9 and a restart")
        #expect(second.terminate().status == 0)
    }
}

@Suite(.serialized) struct ReloadMatrixTests {
    @Test(arguments: [ReloadMatrix.Mode.plain, .reliable, .sharded, .group], ReloadMatrix.Kind.allCases)
    func reloadUnderLoad_isExact(mode: ReloadMatrix.Mode, kind: ReloadMatrix.Kind) throws {
        let redis = try RedisServer()
        let queue = ReloadMatrix.Queue(url: "127.0.0.1:\(redis.port)", push: { try redis.push($0, key: $1) }, llen: { try redis.llen($0) })
        try ReloadMatrix.run(mode, kind, queue: queue, key: "rm")
    }
}

extension ClusterTests {
    /// The matrix's cluster column: an unsharded reliable queue on the suite's cluster.
    @Test(arguments: ReloadMatrix.Kind.allCases)
    func reloadUnderLoad_onAClusterQueue_isExact(kind: ReloadMatrix.Kind) throws {
        let c = try cluster
        let queue = ReloadMatrix.Queue(url: c.seeds, push: { try c.push($0, key: $1) }, llen: { try c.llen($0) })
        try ReloadMatrix.run(.cluster, kind, queue: queue, key: "rm-\(kind)")
    }
}
