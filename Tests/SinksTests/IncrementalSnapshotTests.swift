import Foundation
import Logging
import Pipeline
import Testing
import TestSupport
@testable import Aggregation
@testable import Sinks

@Suite struct SnapshotPlanTests {
    typealias Key = SnapshotPlan.Key
    typealias Stamp = SnapshotPlan.Stamp
    static func key(_ name: String, _ chunk: UInt32 = 0) -> Key { Key(name: Array(name.utf8), chunk: chunk) }
    static func entry(_ name: String, segment: UInt64, length: UInt64 = 100) -> StateManifest.Entry {
        StateManifest.Entry(name: Array(name.utf8), chunk: 0, segment: segment, offset: 0, length: length, checksum: 0)
    }
    static let s1 = Stamp(incarnation: 1, edits: 0, chunkEdits: 5)

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var parts: [(String, Stamp, Bool)]
        var written: [(String, Stamp, StateManifest.Entry)]
        var sizes: [UInt64: UInt64]
        var writes: [Bool]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "first snapshot: everything", parts: [("a", s1, false), ("b", s1, false)], written: [], sizes: [:], writes: [true, true]),
        Case(name: "unchanged: nothing", parts: [("a", s1, false)], written: [("a", s1, entry("a", segment: 1))], sizes: [1: 100],
             writes: [false]),
        Case(name: "a sample in the chunk", parts: [("a", Stamp(incarnation: 1, edits: 0, chunkEdits: 6), false)],
             written: [("a", s1, entry("a", segment: 1))], sizes: [1: 100], writes: [true]),
        Case(name: "the family edited (help, series removed)", parts: [("a", Stamp(incarnation: 1, edits: 1, chunkEdits: 5), false)],
             written: [("a", s1, entry("a", segment: 1))], sizes: [1: 100], writes: [true]),
        Case(name: "a family of that name made anew", parts: [("a", Stamp(incarnation: 2, edits: 0, chunkEdits: 5), false)],
             written: [("a", s1, entry("a", segment: 1))], sizes: [1: 100], writes: [true]),
        Case(name: "a summary with quantiles: always", parts: [("s", s1, true)], written: [("s", s1, entry("s", segment: 1))],
             sizes: [1: 100], writes: [true]),
        Case(name: "half of its segment live: kept", parts: [("a", s1, false)], written: [("a", s1, entry("a", segment: 1, length: 50))],
             sizes: [1: 100], writes: [false]),
        Case(name: "under half of its segment live: written again", parts: [("a", s1, false), ("b", s1, false)],
             written: [("a", s1, entry("a", segment: 1, length: 49)), ("b", s1, entry("b", segment: 2, length: 10))],
             sizes: [1: 100, 2: 10], writes: [true, false]),
    ]

    @Test(arguments: cases)
    func decides(_ c: Case) {
        var written: [Key: SnapshotPlan.Written] = [:]
        for (name, stamp, entry) in c.written { written[Self.key(name)] = SnapshotPlan.Written(stamp: stamp, entry: entry) }
        let plan = SnapshotPlan(parts: c.parts.map { SnapshotPlan.Part(key: Self.key($0.0), stamp: $0.1, always: $0.2) },
                                written: written, segmentSizes: c.sizes)
        #expect(plan.steps.map { $0 == .write } == c.writes)
    }

    @Test func parts_areChunksOfAFamily() {
        let store = makeStore()
        apply(store, (0..<(Family.chunkSeries + 10)).map { TestSample(.counter, "c_total", 1, labels: [("i", String($0))]) })
        apply(store, [TestSample(.gauge, "g", 1)])
        let parts = SnapshotPlan.parts(of: store.captureFamilies().families)
        #expect(parts.map { "\(String(decoding: $0.part.key.name, as: UTF8.self))#\($0.part.key.chunk):\($0.series.count)" }.sorted()
                == ["c_total#0:\(Family.chunkSeries)", "c_total#1:10", "g#0:1"])
    }
}

@Suite struct IncrementalSnapshotTests {
    final class Files {
        let dir: URL
        var path: String { dir.appendingPathComponent("state").path }
        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("incr-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(at: dir) }
        var names: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() }
        var segments: [String] { names.filter { $0.hasPrefix("state.seg.") && !$0.contains("corrupt") } }
        func manifest() throws -> StateManifest { try StateManifest.decode(try #require(try StateFile.read(path))) }
        /// What a restart loads from the files.
        func loaded() -> MetricStore {
            let store = makeStore()
            Snapshotter(path: path, interval: .seconds(60), store: store, context: IncrementalSnapshotTests.context()).load()
            return store
        }
    }

    static func context() -> StageContext {
        StageContext(id: "prometheus", logger: Logger(label: "t"), telemetry: Telemetry(), health: HealthBoard(), workers: 1)
    }

    /// A snapshotter over `store` whose every `snapshot()` counts as a new batch applied.
    final class Harness: @unchecked Sendable {
        let store: MetricStore, snapshotter: Snapshotter, context = IncrementalSnapshotTests.context()
        var changes: UInt64 = 0
        init(_ files: Files, store: MetricStore = makeStore()) {
            self.store = store
            snapshotter = Snapshotter(path: files.path, interval: .seconds(60), store: store, context: context)
        }
        func snapshot() {
            changes += 1
            var applied = Snapshotter.Applied()
            applied.changes = changes
            let store = store
            snapshotter.write { [applied] in (store.captureFamilies(), applied) }
        }
        func value(_ name: String) -> Double? {
            context.telemetry.collect().first { $0.name == Telemetry.prefix + name }?.samples.first?.value
        }
    }

    static func wide(_ n: Int, _ value: Double = 1) -> [TestSample] {
        (0..<n).map { TestSample(.counter, "wide_total", value, labels: [("i", String($0))]) }
    }

    @Test func aSnapshot_rewritesOnlyTheChunksThatChanged() throws {
        let files = try Files()
        let h = Harness(files)
        apply(h.store, Self.wide(3 * Family.chunkSeries) + [TestSample(.gauge, "g", 1),
                TestSample(.summary, "s_bytes", 3, quantiles: [0.5], epsilons: [0.05])])
        h.snapshot()
        let first = try files.manifest()
        #expect(first.entries.count == 5 && Set(first.entries.map(\.segment)).count == 1)
        let full = try #require(h.value("snapshot_written_bytes"))

        // One series of the wide family's middle chunk: that chunk and the summary (always) are written.
        apply(h.store, [TestSample(.counter, "wide_total", 1, labels: [("i", String(Family.chunkSeries + 7))])])
        h.snapshot()
        let second = try files.manifest()
        let fresh = second.entries.filter { $0.segment != first.entries[0].segment }
        #expect(fresh.map { "\(String(decoding: $0.name, as: UTF8.self))#\($0.chunk)" }.sorted() == ["s_bytes#0", "wide_total#1"])
        #expect(try #require(h.value("snapshot_written_bytes")) < full / 2)
        #expect(files.segments.count == 2)

        // What the two segments hold is the store, exactly.
        #expect(render(files.loaded()) == render(h.store))
    }

    @Test func nothingChanged_writesTheManifestAlone() throws {
        let files = try Files()
        let h = Harness(files)
        apply(h.store, Self.wide(100))
        h.snapshot()
        let before = files.segments
        h.snapshot()   // positions may have moved; no family did
        #expect(files.segments == before)
        #expect(try #require(h.value("snapshot_written_bytes")) == Double(try #require(try StateFile.read(files.path)).count))
    }

    @Test func afterALoad_onlyWhatChangesSinceIsWritten() throws {
        let files = try Files()
        let h = Harness(files)
        apply(h.store, Self.wide(2 * Family.chunkSeries) + [TestSample(.gauge, "g", 1)])
        h.snapshot()
        let restored = Harness(files)
        restored.snapshotter.load()
        apply(restored.store, [TestSample(.gauge, "g", 2)])
        restored.snapshot()
        let m = try files.manifest()
        #expect(Set(m.entries.map(\.segment)).count == 2, "the wide family's chunks stay where they were")
        #expect(m.entries.filter { $0.segment == m.segments.map(\.id).max() }.map(\.name) == [Array("g".utf8)])
    }

    @Test func aReload_writesTheWholeStateOnce_andRemovesThePredecessorsSegments() throws {
        let files = try Files()
        let before = Harness(files)
        apply(before.store, Self.wide(Family.chunkSeries + 1))
        before.snapshot()
        apply(before.store, [TestSample(.gauge, "g", 1)])
        before.snapshot()
        #expect(files.segments.count == 2)
        // The successor adopts the predecessor's aggregate (what Aggregate.takeOver hands on).
        let after = Harness(files)
        let store = after.store
        after.snapshotter.adopt(MetricStore.state(of: before.store.captureFamilies())) { (store.captureFamilies(), Snapshotter.Applied()) }
        let m = try files.manifest()
        #expect(Set(m.entries.map(\.segment)) == [3], "one new segment holds everything")
        #expect(files.segments == ["state.seg.3"], "the predecessor's segments are gone: \(files.names)")
        #expect(render(files.loaded()) == render(before.store))
    }

    @Test func segmentsMostlyDead_areCompactedAndRemoved() throws {
        let files = try Files()
        let h = Harness(files)
        let chunks = 8
        apply(h.store, Self.wide(chunks * Family.chunkSeries))
        h.snapshot()
        // Touch one chunk after another: each snapshot leaves less of the first segment live.
        for round in 0..<(3 * chunks) {
            apply(h.store, [TestSample(.counter, "wide_total", 1, labels: [("i", String((round % chunks) * Family.chunkSeries))])])
            h.snapshot()
            let m = try files.manifest()
            let live = m.entries.reduce(0) { $0 + $1.length }
            let onDisk = m.segments.reduce(0) { $0 + $1.size }
            #expect(onDisk <= 2 * live + live / UInt64(chunks), "round \(round): \(onDisk) bytes on disk for \(live) live")
            #expect(files.segments.count == m.segments.count, "round \(round): no segment left behind")
        }
        #expect(render(files.loaded()) == render(h.store))
    }

    @Test func removedSeriesAndFamilies_leaveTheState() throws {
        let files = try Files()
        let h = Harness(files)
        apply(h.store, Self.wide(10) + [TestSample(.gauge, "gone", 1), TestSample(.gauge, "kept", 1)])
        h.snapshot()
        _ = h.store.delete(matching: [try SeriesSelector(parsing: "gone")])
        _ = h.store.delete(matching: [try SeriesSelector(parsing: #"wide_total{i="3"}"#)])
        h.snapshot()
        let restored = files.loaded()
        #expect(render(restored) == render(h.store))
        #expect(!render(restored).contains("gone"))
        #expect(!render(restored).contains(#"i="3""#))
    }

    @Test func aKeptPart_countsItsSeriesAgeFromWhenItWasWritten() throws {
        var limits = SeriesLimits()
        limits.expireAfter = .seconds(60)
        let files = try Files()
        // A part written 50 s before the manifest that keeps it, its series idle 5 s then.
        let clock = SeriesLimitsTests.Clock()
        let store = MetricStore(limits: limits, clock: { clock.now })
        apply(store, [TestSample(.gauge, "idle", 1)])
        clock.advance(seconds: 5)
        let captured = store.captureFamilies()
        var segment = StateFile.Writer()
        StateFile.encode(MetricStore.familyState(captured.families[0], windows: [], now: captured.now, series: 0..<1), into: &segment)
        try StateFile.create(segment.out, at: StateManifest.segmentPath(files.path, 4))
        let now = wallClockNanos()
        var m = StateManifest(writtenAt: now)
        m.segments = [StateManifest.Segment(id: 4, writtenAt: now - 50_000_000_000, size: UInt64(segment.out.count))]
        m.entries = [StateManifest.Entry(name: Array("idle".utf8), chunk: 0, segment: 4, offset: 0, length: UInt64(segment.out.count),
                                         checksum: StateFile.checksum(segment.out[...]))]
        try StateFile.write(m.encode(), to: files.path)
        let after = SeriesLimitsTests.Clock()
        after.advance(seconds: 1000)
        let restored = MetricStore(limits: limits, clock: { after.now })
        Snapshotter(path: files.path, interval: .seconds(60), store: restored, context: Self.context()).load()
        #expect(restored.seriesCount == 1)
        after.advance(seconds: 6)   // 5 + 50 + 6 = 61 s idle: expired (without the 50 s it would be 11)
        #expect(restored.sweep() == 1)
    }

    @Test func aVersionTwoFile_loadsAndTheNextSnapshotWritesAManifest() throws {
        let files = try Files()
        let old = makeStore()
        apply(old, Self.wide(20))
        try StateFile.write(StateFile.encode(old.captureState()), to: files.path)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: StateManifest.segmentPath(files.path, 9)))   // an orphan
        let h = Harness(files)
        h.snapshotter.load()
        #expect(render(h.store) == render(old))
        #expect(files.segments.isEmpty, "a segment no manifest names is removed")
        apply(h.store, [TestSample(.gauge, "g", 1)])
        h.snapshot()
        #expect(StateFile.version(of: try #require(try StateFile.read(files.path))) == StateManifest.version)
        #expect(files.segments == ["state.seg.1"])
    }

    @Test(arguments: ["missing", "shorter", "flipped byte", "foreign part"])
    func aDamagedSegment_refusesTheStateWhole(_ damage: String) throws {
        let files = try Files()
        let h = Harness(files)
        apply(h.store, Self.wide(Family.chunkSeries + 1) + [TestSample(.gauge, "g", 1)])
        h.snapshot()
        apply(h.store, [TestSample(.gauge, "g", 2)])
        h.snapshot()
        let m = try files.manifest()
        let oldest = StateManifest.segmentPath(files.path, try #require(m.segments.map(\.id).min()))
        var bytes = try #require(try StateFile.read(oldest))
        switch damage {
        case "missing": unlink(oldest)
        case "shorter": try Data(bytes.dropLast()).write(to: URL(fileURLWithPath: oldest))
        case "flipped byte": bytes[bytes.count / 2] ^= 0x40; try Data(bytes).write(to: URL(fileURLWithPath: oldest))
        default:
            // A well-formed part, but not of the family the manifest names there.
            var m2 = m
            let i = try #require(m2.entries.firstIndex { $0.name == Array("g".utf8) })
            m2.entries[i].name = Array("h".utf8)
            try StateFile.write(m2.encode(), to: files.path)
        }
        let restored = Harness(files)
        restored.snapshotter.load()
        #expect(restored.store.seriesCount == 0, "\(damage): never half-loaded")
        #expect(files.names.contains { $0.hasPrefix("state.corrupt-") }, "\(damage): the manifest moved aside: \(files.names)")
        #expect(files.segments.isEmpty, "\(damage): its segments moved aside too: \(files.names)")
        apply(restored.store, [TestSample(.gauge, "g", 3)])
        restored.snapshot()
        let fresh = Harness(files)
        fresh.snapshotter.load()
        #expect(render(fresh.store) == render(restored.store), "\(damage): and the next state is whole")
    }
}
