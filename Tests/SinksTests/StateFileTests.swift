import Foundation
import Logging
import Pipeline
import Testing
import TestSupport
@testable import Aggregation
@testable import Sinks

@Suite struct StateFileTests {
    /// A store of `n` series of every type, summaries with their quantile windows.
    func filledStore(series n: Int) -> MetricStore {
        let store = makeStore()
        var samples: [TestSample] = []
        samples.reserveCapacity(10_000)
        func flush() { apply(store, samples); samples.removeAll(keepingCapacity: true) }
        for i in 0..<n {
            let labels = [("i", String(i)), ("shard", String(i % 16))]
            switch i % 10 {
            case 0: samples.append(TestSample(.histogram, "h_seconds", Double(i % 7) / 3, labels: labels, help: "H.", buckets: [0.5, 1, 2]))
            case 1: samples.append(TestSample(.summary, "s_bytes", Double(i % 101), labels: labels, quantiles: [0.5, 0.99], epsilons: [0.05, 0.001]))
            case 2: samples.append(TestSample(.gauge, "g", -Double(i) / 7, labels: labels))
            default: samples.append(TestSample(.counter, "c_total", Double(i % 13) + 0.25, labels: labels, help: "C \"quoted\"\nhelp"))
            }
            if samples.count == 10_000 { flush() }
        }
        flush()
        // A second observation for some summaries and histograms.
        for i in stride(from: 0, to: min(n, 2000), by: 10) {
            samples.append(TestSample(.histogram, "h_seconds", 1.5, labels: [("i", String(i)), ("shard", String(i % 16))], buckets: [0.5, 1, 2]))
            samples.append(TestSample(.summary, "s_bytes", 7, labels: [("i", String(i + 1)), ("shard", String((i + 1) % 16))]))
        }
        flush()
        return store
    }

    @Test func nativeHistogramsAndExemplars_surviveARestart_inEveryFormat() throws {
        let native = [("lat_*", NativeHistogramOptions(schema: 2, zeroThreshold: 0.01, maxBuckets: 6))]
        let store = MetricStore(nativeHistograms: native, clock: { 1_000_000_000 })
        var samples: [TestSample] = []
        for i in 0..<300 {
            let labels = [("i", String(i % 3))]
            samples.append(TestSample(.histogram, "lat_seconds", Double(i % 17) * 0.3 - 1, labels: labels,
                                      exemplar: i % 50 == 0 ? ([("trace_id", "t\(i)")], Double(i % 17) * 0.3 - 1, 1732550000 + Double(i)) : nil))
            samples.append(TestSample(.histogram, "lat_classic_seconds", Double(i % 5), labels: labels, buckets: [1, 2, 3],
                                      exemplar: i % 7 == 0 ? ([("span", "s\(i)")], Double(i % 5), .nan) : nil))
            samples.append(TestSample(.counter, "hits_total", 1, labels: labels, exemplar: i % 11 == 0 ? ([("trace_id", "c\(i)")], 1, .nan) : nil))
        }
        apply(store, samples)
        let restored = MetricStore(nativeHistograms: native, clock: { 2_000_000_000 })
        restored.restore(try StateFile.decode(StateFile.encode(store.captureState())))
        for format in ExpositionFormat.allCases {
            #expect(Exposition(store: restored, meta: { [] }).render(format) == Exposition(store: store, meta: { [] }).render(format), "\(format)")
        }
        #expect(restored.captureState().families.first { $0.name == Array("lat_seconds".utf8) }?.series.allSatisfy { ($0.native?.schema ?? 9) < 2 } == true,
                "the halved resolution is kept")
    }

    @Test func versionOneFiles_stillLoad() throws {
        var p = StateFile.Writer()
        p.u64(0)                                   // written at
        p.u32(1); p.bytes(Array("redis_list:q:processing:a".utf8)); p.u64(9)
        p.u32(1)                                   // one family
        p.bytes(Array("old_total".utf8)); p.u8(MetricType.counter.rawValue); p.bytes([]); p.doubles([]); p.u32(0)
        p.u32(1); p.bytes(Array(#"a="b""#.utf8)); p.f64(5); p.u8(0)
        var file = StateFile.Writer()
        file.raw(StateFile.magic); file.u32(1); file.u64(UInt64(p.out.count)); file.u32(StateFile.checksum(p.out[...])); file.raw(p.out)
        let state = try StateFile.decode(file.out)
        #expect(state.positions.map(\.through) == [9])
        let store = makeStore()
        store.restore(state)
        #expect(String(decoding: Exposition(store: store, meta: { [] }).render(), as: UTF8.self).contains(#"old_total{a="b"} 5"#))
    }

    @Test func snapshot_roundTripsToByteIdenticalExposition() throws {
        let n = 1_000_000
        let store = filledStore(series: n)
        var state = store.captureState()
        state.positions = [("redis_list:q:processing:a", 42), ("redis_list:q:processing:b", 7)]
        let bytes = StateFile.encode(state)
        let decoded = try StateFile.decode(bytes)
        #expect(decoded.seriesCount == n)
        #expect(decoded.positions.map(\.stream) == ["redis_list:q:processing:a", "redis_list:q:processing:b"])
        #expect(decoded.positions.map(\.through) == [42, 7])
        let restored = makeStore()
        restored.restore(decoded)
        #expect(restored.seriesCount == n)
        #expect(render(restored) == render(store))
    }

    @Test func restoredSeries_keepAggregating() throws {
        let store = filledStore(series: 100)
        let restored = makeStore()
        restored.restore(try StateFile.decode(StateFile.encode(store.captureState())))
        apply(store, [TestSample(.counter, "c_total", 1, labels: [("i", "3"), ("shard", "3")]), TestSample(.histogram, "h_seconds", 9, labels: [("i", "0"), ("shard", "0")])])
        apply(restored, [TestSample(.counter, "c_total", 1, labels: [("i", "3"), ("shard", "3")]), TestSample(.histogram, "h_seconds", 9, labels: [("i", "0"), ("shard", "0")])])
        #expect(render(restored) == render(store))
        // The restored store knows its families' names: collisions are still refused.
        let b = apply(restored, [TestSample(.gauge, "h_seconds_sum", 1)])
        #expect(b.drops.entries.map(\.reason.name) == ["name_collision"])
    }

    @Test(arguments: [0, 5, 8, 12, 20, 24])
    func damagedHeader_isRefusedWithAReason(_ cut: Int) {
        let bytes = StateFile.encode(filledStore(series: 10).captureState())
        #expect(throws: StateFile.Corrupt.self) { try StateFile.decode(Array(bytes.prefix(cut))) }
        var flipped = bytes
        flipped[min(cut, bytes.count - 1)] ^= 0x01
        #expect(throws: StateFile.Corrupt.self) { try StateFile.decode(flipped) }
    }
}

@Suite struct StateFileExpiryTests {
    @Test func seriesAge_keepsCountingAcrossARestart() throws {
        var limits = SeriesLimits()
        limits.expireAfter = .seconds(60)
        let before = SeriesLimitsTests.Clock()
        let store = MetricStore(limits: limits, clock: { before.now })
        apply(store, [TestSample(.gauge, "old", 1), TestSample(.gauge, "young", 1)])
        before.advance(seconds: 50)
        apply(store, [TestSample(.gauge, "young", 2)])
        before.advance(seconds: 5)   // old: 55 s idle, young: 5 s
        let bytes = StateFile.encode(store.captureState())
        // The restarted process has another monotonic clock.
        let after = SeriesLimitsTests.Clock()
        after.advance(seconds: 1000)
        let restored = MetricStore(limits: limits, clock: { after.now })
        restored.restore(try StateFile.decode(bytes))
        after.advance(seconds: 10)   // old: 65 s idle → expires; young: 15 s
        #expect(restored.sweep() == 1)
        #expect(render(restored).contains("young 2"))
        #expect(!render(restored).contains("\nold "))
    }
}

@Suite struct SnapshotterTests {
    @Test func snapshotBeforeAnyNewBatch_keepsTheRestoredPositions() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("snap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("state").path
        var old = StoreState()
        old.positions = [("redis_list:q:processing:a", 100)]
        try StateFile.write(StateFile.encode(old), to: path)

        let store = makeStore()
        let context = StageContext(id: "prometheus", logger: Logger(label: "t"), telemetry: Telemetry(), health: HealthBoard(), workers: 1)
        let snapshotter = Snapshotter(path: path, interval: .seconds(60), store: store, context: context)
        snapshotter.load()
        #expect(context.checkpoints.restored(stream: "redis_list:q:processing:a") == 100)
        // Nothing applied yet (say Redis is still unreachable) when the snapshot runs.
        snapshotter.write { (store.captureFamilies(), Snapshotter.Applied()) }
        let written = try StateManifest.decode(try #require(try StateFile.read(path)))
        #expect(written.positions.map(\.stream) == ["redis_list:q:processing:a"])
        #expect(written.positions.map(\.through) == [100])
    }
}
