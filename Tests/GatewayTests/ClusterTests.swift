import Foundation
import Pipeline
import Redis
import Sources
import Synchronization
import Testing
import TestSupport

/// Gateways of one group over a real six-node Redis Cluster (three masters, three
/// replicas, one set-up for the suite): kill -9, master failover, slot migration,
/// fencing, the router. Each test uses its own queue key.
@Suite(.serialized) struct ClusterTests {
    static let cluster = Result { try RedisClusterSet() }
    static let shards = 8

    var cluster: RedisClusterSet { get throws { try Self.cluster.get() } }

    /// A gateway of group `group` draining `key`'s shards.
    func gateway(_ c: RedisClusterSet, key: String, instance: String, group: String = "g", leaseTTL: String = "2s") throws -> GatewayProcess {
        try GatewayProcess(args: ["--config", packageRoot.appendingPathComponent("pipelines/group.yaml").path], environment: [
            "REDIS_URL": c.seeds, "QUEUE_KEY": key, "SHARDS": String(Self.shards), "GROUP": group, "INSTANCE": instance,
            "LEASE_TTL": leaseTTL, "SNAPSHOT_INTERVAL": "200ms",
        ])
    }

    /// What a producer pushed, and what the pages must add up to.
    final class Ledger: @unchecked Sendable {
        var counters: [String: Double] = [:]      // series → sum
        var gauges: [String: Double] = [:]        // series → last value
        var histogramCount: [String: Double] = [:]
        var histogramLow: [String: Double] = [:]  // le="0.1"
        var summaryCount: [String: Double] = [:]
        var pushed = 0
    }

    /// Pushes `n` samples of several families, each onto its shard (`crc32(name) mod shards`), in order.
    /// `onto: .one` pushes everything onto `key` itself (senders that do not route; the router's input).
    enum Target { case shards, one }
    func produce(_ c: RedisClusterSet, key: String, _ n: Int, start: Int = 0, into ledger: Ledger, prefix: String = "", onto target: Target = .shards) throws {
        var ordered: [String] = []
        var perKey: [String: [String]] = [:]
        for i in start..<(start + n) {
            let json: String
            switch i % 5 {
            case 0, 1:
                let name = "\(prefix)jobs_\(i % 3)_total", k = i % 4
                json = #"{"type":"counter","name":"\#(name)","value":1,"labels":{"k":"\#(k)"}}"#
                ledger.counters["\(name){k=\"\(k)\"}", default: 0] += 1
                perKey[ShardRouting.queueKey(key, shard: ShardRouting.shard(of: name, shards: Self.shards)), default: []].append(json)
                ordered.append(json)
            case 2:
                let name = "\(prefix)depth", q = i % 3
                json = #"{"type":"gauge","name":"\#(name)","value":\#(i),"labels":{"q":"\#(q)"}}"#
                ledger.gauges["\(name){q=\"\(q)\"}"] = Double(i)
                perKey[ShardRouting.queueKey(key, shard: ShardRouting.shard(of: name, shards: Self.shards)), default: []].append(json)
                ordered.append(json)
            case 3:
                let name = "\(prefix)latency_seconds", v = [0.05, 0.5, 5][i % 3]
                json = #"{"type":"histogram","name":"\#(name)","value":\#(v),"buckets":[0.1,1]}"#
                ledger.histogramCount[name, default: 0] += 1
                if v <= 0.1 { ledger.histogramLow[name, default: 0] += 1 }
                perKey[ShardRouting.queueKey(key, shard: ShardRouting.shard(of: name, shards: Self.shards)), default: []].append(json)
                ordered.append(json)
            default:
                let name = "\(prefix)size_bytes"
                json = #"{"type":"summary","name":"\#(name)","value":\#(i % 100),"quantiles":[0.5],"epsilons":[0.05]}"#
                ledger.summaryCount[name, default: 0] += 1
                perKey[ShardRouting.queueKey(key, shard: ShardRouting.shard(of: name, shards: Self.shards)), default: []].append(json)
                ordered.append(json)
            }
        }
        switch target {
        case .shards: for (k, values) in perKey { try c.push(values, key: k) }
        case .one: try c.push(ordered, key: key)
        }
        ledger.pushed += n
    }

    /// Every non-meta series line of every page: series → [(gateway index, value)].
    func union(_ gateways: [GatewayProcess?]) -> [String: [(Int, Double)]] {
        var out: [String: [(Int, Double)]] = [:]
        for (i, g) in gateways.enumerated() {
            guard let g, g.process.isRunning, let page = try? g.metrics() else { continue }
            for line in page.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("prom_stream_gateway_") {
                guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
                out[String(line[..<space]), default: []].append((i, v))
            }
        }
        return out
    }

    /// Whether the pages add up to the ledger exactly, each series on one gateway; the differences otherwise.
    func differences(_ gateways: [GatewayProcess?], _ l: Ledger) -> [String] {
        let u = union(gateways)
        var out: [String] = []
        func check(_ series: String, _ want: Double) {
            guard let got = u[series] else { out.append("\(series): missing, want \(want)"); return }
            if got.count > 1 { out.append("\(series): served by \(got.count) gateways") }
            if got[0].1 != want { out.append("\(series): \(got[0].1), want \(want)") }
        }
        for (s, v) in l.counters { check(s, v) }
        for (s, v) in l.gauges { check(s, v) }
        for (s, v) in l.histogramCount { check("\(s)_count", v); check("\(s)_bucket{le=\"0.1\"}", l.histogramLow[s] ?? 0) }
        for (s, v) in l.summaryCount { check("\(s)_count", v) }
        return out
    }

    func owned(_ g: GatewayProcess) -> Double { (try? g.metrics()).flatMap { page in
        page.split(separator: "\n").first { $0.hasPrefix("prom_stream_gateway_shards_owned{") }.flatMap { Double($0.split(separator: " ").last!) }
    } ?? 0 }

    func allOwned(_ gateways: [GatewayProcess]) -> Bool {
        gateways.map(owned).reduce(0, +) == Double(Self.shards)
    }

    /// Queues and processing lists of `key` all empty.
    func drained(_ c: RedisClusterSet, key: String) -> Bool {
        (0..<Self.shards).allSatisfy { s in
            let k = ShardKeys(key: key, shard: s)
            return (try? c.llen(k.queue)) == 0 && (try? c.llen(k.processing)) == 0
        }
    }

    func kill9(_ g: GatewayProcess) {
        kill(g.process.processIdentifier, SIGKILL)
        g.process.waitUntilExit()
    }

    @Test func killedGateway_itsShardsContinueElsewhere_exactly() throws {
        let c = try cluster
        let key = "t-kill"
        let gateways = try (0..<3).map { try gateway(c, key: key, instance: "gw\($0)") }
        #expect(eventually(timeout: 20) { allOwned(gateways) && gateways.allSatisfy { owned($0) >= 2 } }, "the 8 shards split over 3 gateways (3+3+2)")
        let ledger = Ledger()
        try produce(c, key: key, 3000, into: ledger)
        _ = eventually(timeout: 5) { (try? gateways[0].value("prom_stream_gateway_redis_popped_elements_total{queueKey=\"t-kill\"}")).flatMap { $0 } ?? 0 > 0 }
        let victimShards = owned(gateways[0])
        kill9(gateways[0])
        let killedAt = Date()
        try produce(c, key: key, 3000, start: 3000, into: ledger)
        let survivors = Array(gateways.dropFirst())
        #expect(eventually(timeout: 20) { allOwned(survivors) }, "the survivors took the dead gateway's \(victimShards) shards")
        let takeover = Date().timeIntervalSince(killedAt)
        var diff: [String] = []
        let exact = eventually(timeout: 30) { diff = differences(survivors, ledger); return diff.isEmpty && drained(c, key: key) }
        #expect(exact, "the union of the pages equals what was pushed: \(diff.prefix(10))")
        print("cluster kill -9: shards served elsewhere after \(String(format: "%.2f", takeover)) s (lease_ttl 2s)")
    }

    @Test func memberJoiningAndLeaving_rebalances_withoutLosingOrDoubling() throws {
        let c = try cluster
        let key = "t-join"
        let first = try gateway(c, key: key, instance: "a")
        #expect(eventually(timeout: 15) { owned(first) == 8 })
        let ledger = Ledger()
        try produce(c, key: key, 2000, into: ledger)
        #expect(eventually(timeout: 20) { differences([first], ledger).isEmpty })
        let second = try gateway(c, key: key, instance: "b")
        // While shards move from first to second, no series is ever on both pages: the
        // new owner's page is read before the old one's, so a series seen on both was
        // still served by the old owner after the new one served it.
        var overlap: Set<String> = []
        let split = eventually(timeout: 15) {
            let newer = Set(union([second]).keys), older = Set(union([first]).keys)
            overlap.formUnion(newer.intersection(older))
            return owned(first) == 4 && owned(second) == 4
        }
        #expect(split, "a joining member gets half")
        #expect(overlap.isEmpty, "served by both during the rebalance: \(overlap.prefix(5))")
        try produce(c, key: key, 2000, start: 2000, into: ledger)
        var diff: [String] = []
        #expect(eventually(timeout: 30) { diff = differences([first, second], ledger); return diff.isEmpty && drained(c, key: key) }, "\(diff.prefix(10))")
        let stop = first.terminate()
        #expect(stop.status == 0)
        #expect(eventually(timeout: 15) { owned(second) == 8 }, "a member leaving with SIGTERM hands its shards over")
        try produce(c, key: key, 1000, start: 4000, into: ledger)
        #expect(eventually(timeout: 30) { diff = differences([second], ledger); return diff.isEmpty && drained(c, key: key) }, "\(diff.prefix(10))")
    }

    @Test func masterFailover_underLoad_keepsEveryShardExact() throws {
        let c = try cluster
        let key = "t-failover"
        let gateways = try (0..<2).map { try gateway(c, key: key, instance: "f\($0)") }
        #expect(eventually(timeout: 20) { allOwned(gateways) })
        let ledger = Ledger()
        let producer = OSThreadRunner { [self] in
            for round in 0..<20 {
                try? produce(c, key: key, 200, start: round * 200, into: ledger)
                usleep(100_000)
            }
        }
        usleep(500_000)
        let master = try c.master(of: ShardKeys(key: key, shard: 0).queue)
        try c.failover(to: try c.replica(of: master))
        #expect(eventually(timeout: 20) { (try? c.master(of: ShardKeys(key: key, shard: 0).queue).port) != master.port }, "the replica took over")
        producer.join()
        var diff: [String] = []
        #expect(eventually(timeout: 30) { diff = differences(gateways, ledger); return diff.isEmpty && drained(c, key: key) }, "\(diff.prefix(10))")
        #expect(eventually(timeout: 30) { c.healthy() })
    }

    @Test func killedMaster_replicaPromoted_gatewaysContinue() throws {
        let c = try cluster
        let key = "t-crash"
        let gateways = try (0..<2).map { try gateway(c, key: key, instance: "k\($0)") }
        #expect(eventually(timeout: 20) { allOwned(gateways) })
        let before = Ledger()
        try produce(c, key: key, 1000, into: before)
        #expect(eventually(timeout: 30) { differences(gateways, before).isEmpty && drained(c, key: key) })
        // A master crashes: writes not yet replicated may be lost (Redis replicates
        // asynchronously), so only what is pushed after the promotion is checked.
        let master = try c.master(of: ShardKeys(key: key, shard: 0).queue)
        let server = c.server(port: master.port)
        server.stop()
        #expect(eventually(timeout: 30) { (try? c.master(of: ShardKeys(key: key, shard: 0).queue).port).map { $0 != master.port } ?? false }, "the replica was promoted")
        let after = Ledger()
        try produce(c, key: key, 1000, into: after, prefix: "after_")
        var diff: [String] = []
        #expect(eventually(timeout: 40) { diff = differences(gateways, after); return diff.isEmpty }, "samples pushed after the promotion are all counted: \(diff.prefix(10))")
        try server.restart()   // rejoins as a replica of the promoted one
        #expect(eventually(timeout: 40) { c.healthy() }, "the old master rejoined as a replica")
    }

    @Test func slotsMigrating_underLoad_MOVEDandASKfollowed_exactly() throws {
        let c = try cluster
        let key = "t-reshard"
        let gateways = try (0..<2).map { try gateway(c, key: key, instance: "r\($0)") }
        #expect(eventually(timeout: 20) { allOwned(gateways) })
        // The shard whose slot comes first in its master's ranges: reshard moves slots in order.
        let nodes = try c.nodes()
        var best: (shard: Int, from: RedisClusterSet.Node, offset: Int)?
        for s in 0..<Self.shards {
            let slot = ShardKeys(key: key, shard: s).slot
            guard let m = nodes.first(where: { $0.master && $0.ranges.contains { $0.contains(slot) } }), let r = m.ranges.first(where: { $0.contains(slot) }) else { continue }
            let offset = slot - r.lowerBound + m.ranges.prefix { $0 != r }.reduce(0) { $0 + $1.count }
            if best == nil || offset < best!.offset { best = (s, m, offset) }
        }
        let move = try #require(best)
        let to = try #require(nodes.first { $0.master && $0.slots > 0 && $0.id != move.from.id })
        let ledger = Ledger()
        let producer = OSThreadRunner { [self] in
            for round in 0..<30 {
                try? produce(c, key: key, 200, start: round * 200, into: ledger)
                usleep(50_000)
            }
        }
        _ = try c.reshard(from: move.from, to: to, count: move.offset + 1)
        producer.join()
        #expect(try c.master(of: ShardKeys(key: key, shard: move.shard).queue).id == to.id, "shard \(move.shard)'s slot moved")
        var diff: [String] = []
        #expect(eventually(timeout: 30) { diff = differences(gateways, ledger); return diff.isEmpty && drained(c, key: key) }, "\(diff.prefix(10))")
        _ = try c.reshard(from: to, to: move.from, count: move.offset + 1)   // back, for the other tests
    }

    @Test func formerOwner_whoseLeaseWasTaken_cannotPopTrimOrWriteState() throws {
        let c = try cluster
        let key = "t-fence"
        let k = ShardKeys(key: key, shard: 3)
        // The scripts themselves: a stale token changes nothing.
        _ = try c.command(key: k.owner, "SET", k.owner, "new-owner", "PX", "60000")
        try c.push(["x", "y"], key: k.queue)
        _ = try c.command(key: k.state, "SET", k.state, "the new owner's state")
        func script(_ s: RedisScript, _ keys: [String], _ args: [String]) throws -> RedisValue {
            try c.command(key: keys[0], ["EVAL", s.source, String(keys.count)] + keys + args)
        }
        for (s, keys, args) in [(ShardKeys.pop, [k.queue, k.processing, k.owner], ["old-owner", "10"]),
                                (ShardKeys.trim, [k.processing, k.acked, k.owner], ["old-owner", "1"]),
                                (ShardKeys.writeState, [k.state, k.owner], ["old-owner", "stale"]),
                                (ShardKeys.setAcked, [k.acked, k.owner], ["old-owner", "5"])] {
            #expect(throws: RedisError.self) { try script(s, keys, args) }
        }
        #expect(try c.llen(k.queue) == 2)
        #expect(try c.command(key: k.state, "GET", k.state).text == "the new owner's state")
        #expect(try c.command(key: k.acked, "GET", k.acked) == .null)
        #expect(try script(ShardKeys.renew, [k.owner], ["old-owner", "1000"]) == .integer(0))
        #expect(try script(ShardKeys.release, [k.owner], ["old-owner"]) == .integer(0))
        _ = try c.command(key: k.owner, "DEL", k.owner)
        _ = try c.command(key: k.queue, "DEL", k.queue, k.state)

        // A running gateway whose lease is taken from under it stops touching the shard.
        let g = try gateway(c, key: key, instance: "solo", leaseTTL: "3s")
        #expect(eventually(timeout: 15) { owned(g) == 8 })
        let ledger = Ledger()
        try produce(c, key: key, 500, into: ledger)
        #expect(eventually(timeout: 20) { differences([g], ledger).isEmpty && drained(c, key: key) })
        let stolen = (0..<Self.shards).map { ShardKeys(key: key, shard: $0) }
        for s in stolen {
            _ = try c.command(key: s.owner, "SET", s.owner, "intruder", "PX", "600000")
            _ = try c.command(key: s.state, "SET", s.state, "intruder's state")
        }
        try produce(c, key: key, 200, start: 500, into: ledger)
        #expect(eventually(timeout: 15) { owned(g) == 0 }, "the gateway noticed it lost every lease")
        #expect(eventually(timeout: 5) { (try? g.value("prom_stream_gateway_shard_leases_total{queueKey=\"t-fence\",group=\"g\",event=\"lost\"}")).flatMap { $0 } == 8 })
        usleep(1_000_000)
        for s in stolen { #expect(try c.command(key: s.state, "GET", s.state).text == "intruder's state", "\(s.state) untouched") }
        #expect(stolen.map { (try? c.llen($0.queue)) ?? 0 }.reduce(0, +) == 200, "nothing popped after the leases were taken")
        #expect(union([g]).keys.filter { $0.hasPrefix("jobs_") || $0.hasPrefix("depth") }.isEmpty, "its families are no longer served")
        for s in stolen { _ = try c.command(key: s.owner, "DEL", s.owner) }
    }

    @Test func pausedOwner_resumesFenced_andStopsServingWhatAnotherTook() throws {
        let c = try cluster
        let key = "t-pause"
        let a = try gateway(c, key: key, instance: "pa")
        #expect(eventually(timeout: 15) { owned(a) == 8 })
        let b = try gateway(c, key: key, instance: "pb")
        #expect(eventually(timeout: 15) { owned(a) == 4 && owned(b) == 4 })
        let ledger = Ledger()
        try produce(c, key: key, 1000, into: ledger)
        #expect(eventually(timeout: 20) { differences([a, b], ledger).isEmpty && drained(c, key: key) })
        kill(a.process.processIdentifier, SIGSTOP)   // a stall longer than lease_ttl: no heartbeat, no renewal
        #expect(eventually(timeout: 15) { owned(b) == 8 }, "the live member took the stalled one's shards")
        try produce(c, key: key, 1000, start: 1000, into: ledger)
        #expect(eventually(timeout: 20) { differences([b], ledger).isEmpty && drained(c, key: key) })
        kill(a.process.processIdentifier, SIGCONT)
        // On waking it finds its leases past their deadline: it stops serving them (its
        // page empties) and, as members are two again, takes its share back from b.
        var diff: [String] = []
        #expect(eventually(timeout: 20) { owned(a) == 4 && owned(b) == 4 }, "the two split the shards again")
        try produce(c, key: key, 500, start: 2000, into: ledger)
        #expect(eventually(timeout: 20) { diff = differences([a, b], ledger); return diff.isEmpty && drained(c, key: key) }, "nothing lost, nothing twice: \(diff.prefix(10))")
        #expect(a.log.contains("lost a shard"), "the resumed gateway noticed its leases had lapsed")
    }

    @Test func router_movesTheDefaultKeyOntoShards_underLoad() throws {
        let c = try cluster
        let key = "t-router"
        let router = try GatewayProcess(args: ["--config", packageRoot.appendingPathComponent("pipelines/router.yaml").path], environment: [
            "REDIS_URL": "redis://127.0.0.1:\(c.servers[0].port)/0", "REDIS_CLUSTER": c.seeds, "QUEUE_KEY": key, "SHARDS": String(Self.shards), "INSTANCE": "router",
        ])
        let drainer = try gateway(c, key: key, instance: "d")
        #expect(eventually(timeout: 15) { owned(drainer) == 8 })
        // Senders that cannot route push onto the one key.
        let ledger = Ledger()
        for round in 0..<10 { try produce(c, key: key, 500, start: round * 500, into: ledger, onto: .one) }
        var diff: [String] = []
        #expect(eventually(timeout: 30) { diff = differences([drainer], ledger); return diff.isEmpty && drained(c, key: key) && (try? c.llen(key)) == 0 },
                "\(diff.prefix(10))")
        #expect((try router.value("prom_stream_gateway_routed_samples_total{queueKey=\"t-router\",outcome=\"pushed\"}")) == 5000)
        #expect(union([router]).isEmpty, "the router's page has only meta-metrics")
    }
}
