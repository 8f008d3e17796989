import Foundation
import Logging
import Pipeline
import Redis
import Synchronization
import Testing
import TestSupport
@testable import Aggregation
@testable import Sinks

/// The routing functions against their reference values, and the `prometheus`
/// sink's `state: redis` holder: what it admits, writes, forgets and restores.
@Suite struct ShardedStateTests {
    @Test func crc32_isIEEE_asPHPPythonAndGoCompute() {
        #expect(ShardRouting.crc32(Array("123456789".utf8)) == 0xCBF4_3926)   // the CRC-32 check value
        #expect(ShardRouting.crc32([UInt8]()) == 0)
        #expect(ShardRouting.crc32(Array("http_requests_total".utf8)) == 2_999_358_596)   // PHP crc32(), Python zlib.crc32()
        #expect(ShardRouting.shard(of: "http_requests_total", shards: 8) == 4)
        #expect(ShardRouting.queueKey("q", shard: 3) == "q:{3}")
    }

    @Test func hashSlot_isRedisClusters_withHashTags() {
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)   // XMODEM check value
        #expect(HashSlot.of("foo") == 12182)                          // CLUSTER KEYSLOT foo
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("{user1000}.followers"))
        #expect(HashSlot.of("foo{}{bar}") == Int(HashSlot.crc16(Array("foo{}{bar}".utf8)) % 16384))   // empty tag: the whole key
        #expect(HashSlot.of("foo{{bar}}zap") == Int(HashSlot.crc16(Array("{bar".utf8)) % 16384))
        #expect(HashSlot.of("q:{3}") == HashSlot.of("q:{3}:processing") && HashSlot.of("q:{3}") == HashSlot.of("other:{3}:state"))
        #expect(HashSlot.hasTag("a{b}c") && !HashSlot.hasTag("abc") && !HashSlot.hasTag("a{}c"))
    }

    /// A store that keeps what the sink writes, by shard (stands in for the source).
    final class Kept: ShardStateStore, @unchecked Sendable {
        var states: [Int: [UInt8]] = [:]
        var refuse = false
        func writeState(shard: Int, bytes: [UInt8]) -> Bool {
            if refuse { return false }
            states[shard] = bytes
            return true
        }
    }

    func sink(_ checkpoints: Checkpoints, takingOver previous: PrometheusSink? = nil) throws -> PrometheusSink {
        let o = OptionReader(describing: "p")
        var config = PrometheusSinkConfig(options: o)
        config.listen = "127.0.0.1:0"
        config.disableMetaMetrics = true
        config.aggregate.stateInRedis = true
        config.aggregate.snapshotInterval = .seconds(3600)
        let s = PrometheusSink(config: config, context: StageContext(id: "p", logger: Logger(label: "t"), telemetry: Telemetry(), health: HealthBoard(),
                                                                     workers: 1, checkpoints: checkpoints))
        if let previous { s.aggregate.takeOver(from: previous.aggregate) }
        try s.start()
        return s
    }

    /// A started `state: redis` sink attached to the handover as the holder, the
    /// handover, the stream of `shard`, and the store it writes to.
    func held(shard: Int) throws -> (PrometheusSink, ShardHandover, UInt16, Kept) {
        let checkpoints = Checkpoints()
        checkpoints.setSinks(["p"], of: "src")
        let stream = checkpoints.register(stream: "redis_list:q:{\(shard)}:processing", source: "src") { _ in }.stream
        let kept = Kept()
        checkpoints.shards.attach(store: kept)
        let s = try sink(checkpoints)
        #expect(checkpoints.shards.hasHolder)
        return (s, checkpoints.shards, stream, kept)
    }

    /// Names routed to `shard` of 4 and to another.
    func names(on shard: Int) -> (mine: String, other: String) {
        let all = (0..<200).map { "m\($0)_total" }
        return (all.first { ShardRouting.shard(of: $0, shards: 4) == shard }!, all.first { ShardRouting.shard(of: $0, shards: 4) != shard }!)
    }

    @Test func heldShard_appliesItsFamilies_dropsOthersAsWrongShard_andWritesThroughTheLease() throws {
        let (s, handover, stream, kept) = try held(shard: 1)
        defer { s.shutdown() }
        #expect(handover.gain(1, of: 4, stream: stream, state: nil) == .served(position: 0, waited: true))
        #expect(handover.phase(1) == .serving(stream: stream, written: 0))
        let (mine, other) = names(on: 1)
        var b = sampleBatch([TestSample(.counter, mine, 2), TestSample(.counter, other, 5)])
        b.acknowledgement = Acknowledgement(stream: stream, first: 1, through: 2)
        s.consume(&b, worker: 0)
        #expect(b.drops.entries.filter { $0.reason == DropReason.wrongShard }.map(\.count) == [1], "the sample of another shard is dropped")
        let page = String(decoding: s.exposition.render(), as: UTF8.self)
        #expect(page.contains("\(mine) 2") && !page.contains(other))
        #expect(try #require(s.aggregate.sharded).consumed(stream: stream) == 2)
        #expect(handover.persist(1, force: false) == 2)
        #expect(handover.phase(1) == .serving(stream: stream, written: 2))
        #expect(handover.persist(1, force: false) == 2, "nothing new: not written again")
        let state = try StateFile.decode(try #require(kept.states[1]))
        #expect(state.positions.map(\.through) == [2] && state.families.map { String(decoding: $0.name, as: UTF8.self) } == [mine])
        kept.refuse = true
        #expect(handover.persist(1, force: true) == nil, "a refused write (lease gone) acknowledges nothing")
        #expect(handover.phase(1) == .serving(stream: stream, written: 2))
    }

    @Test func lostShard_isNoLongerServed_itsBatchesSkipped_andRegainingRestoresItExactly() throws {
        let (s, handover, stream, kept) = try held(shard: 2)
        defer { s.shutdown() }
        _ = handover.gain(2, of: 4, stream: stream, state: nil)
        let (mine, _) = names(on: 2)
        var b = sampleBatch([TestSample(.counter, mine, 3), TestSample(.histogram, "x_seconds", 0.5, buckets: [1])].filter { ShardRouting.shard(of: $0.name, shards: 4) == 2 })
        b.acknowledgement = Acknowledgement(stream: stream, first: 1, through: 1)
        s.consume(&b, worker: 0)
        _ = handover.persist(2, force: false)
        let before = s.exposition.render()
        handover.lost(2, emitted: 2)
        #expect(handover.phase(2) == .lost(stream: stream, emitted: 2, dropped: true))
        #expect(!String(decoding: s.exposition.render(), as: UTF8.self).contains(mine), "a lost shard's families are gone at once")
        var late = sampleBatch([TestSample(.counter, mine, 100)])
        late.acknowledgement = Acknowledgement(stream: stream, first: 2, through: 2)
        s.consume(&late, worker: 0)
        #expect(!String(decoding: s.exposition.render(), as: UTF8.self).contains(mine), "a batch still in flight for it is skipped")
        #expect(handover.gain(2, of: 4, stream: stream, state: kept.states[2], waitSeconds: 0) == .served(position: 1, waited: true),
                "the state's position; the late batch was consumed (skipped) before")
        #expect(s.exposition.render() == before, "the state restores the page exactly")
    }

    @Test func release_writesTheFinalState_afterTheLastEmittedBatch_thenDrops() throws {
        let (s, handover, stream, kept) = try held(shard: 3)
        defer { s.shutdown() }
        _ = handover.gain(3, of: 4, stream: stream, state: nil)
        let (mine, _) = names(on: 3)
        var b = sampleBatch([TestSample(.counter, mine, 4)])
        b.acknowledgement = Acknowledgement(stream: stream, first: 1, through: 1)
        s.consume(&b, worker: 0)
        #expect(handover.release(3, emitted: 2, waitSeconds: 0.05) == .init(written: 1, consumed: false), "batch 2 never came")
        #expect(handover.phase(3) == .lost(stream: stream, emitted: 2, dropped: true))
        #expect(!String(decoding: s.exposition.render(), as: UTF8.self).contains(mine))
        #expect(try StateFile.decode(try #require(kept.states[3])).positions.map(\.through) == [1])
        #expect(handover.gain(3, of: 4, stream: stream, state: kept.states[3], waitSeconds: 0.05) == .served(position: 1, waited: false),
                "a regain waits for what the earlier hold emitted")
    }

    @Test func lossWithoutHolder_isDroppedByTheNextHolder_aReloadsSuccessor() throws {
        let checkpoints = Checkpoints()
        checkpoints.setSinks(["p"], of: "src")
        let stream = checkpoints.register(stream: "redis_list:q:{0}:processing", source: "src") { _ in }.stream
        let handover = checkpoints.shards
        handover.attach(store: Kept())
        let first = try sink(checkpoints)
        _ = handover.gain(0, of: 4, stream: stream, state: nil)
        let (mine, _) = names(on: 0)
        var b = sampleBatch([TestSample(.counter, mine, 4)])
        b.acknowledgement = Acknowledgement(stream: stream, first: 1, through: 1)
        first.consume(&b, worker: 0)
        first.shutdown()
        #expect(!handover.hasHolder)
        handover.lost(0, emitted: 1)
        #expect(handover.phase(0) == .lost(stream: stream, emitted: 1, dropped: false))
        #expect(handover.gain(0, of: 4, stream: stream, state: nil) == .noHolder)
        let successor = try sink(checkpoints, takingOver: first)
        defer { successor.shutdown() }
        #expect(handover.phase(0) == .lost(stream: stream, emitted: 1, dropped: true), "attaching drops what was lost meanwhile")
        #expect(!String(decoding: successor.exposition.render(), as: UTF8.self).contains(mine), "the adopted aggregate no longer serves it")
    }
}
