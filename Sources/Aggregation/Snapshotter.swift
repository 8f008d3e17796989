import Logging
import Pipeline
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Keeps the `prometheus` sink's aggregate on disk: loads it at start, writes it
/// every `snapshot_interval` (and once more at shutdown) off the ingest path, and
/// reports to `Checkpoints` what each write made durable. A write rewrites only the
/// parts that changed (`SnapshotPlan`) into one new segment, then the manifest
/// (`StateManifest`, which argues the crash safety).
///
/// Consistency: a snapshot is taken under the sink's apply lock, so it holds
/// exactly the batches applied so far and the stream positions they reached — the
/// two are never a batch apart. A write that fails (directory gone, disk full,
/// read-only) is logged (rate-limited), counted, shown in `/ready`'s JSON, and
/// acknowledges nothing; the next interval tries again.
public final class Snapshotter: Sendable {
    let path: String
    let interval: Duration
    private let store: MetricStore
    private let context: StageContext
    private let warnings: RateLimitedLog

    /// Guarded by the sink's apply lock (passed in by the sink): what was applied.
    public struct Applied: Sendable {
        public var positions: [UInt16: UInt64] = [:]
        public var changes: UInt64 = 0
        public init() {}
    }

    private struct Stats { var lastSeconds = Double.nan; var captureSeconds = Double.nan; var lastBytes = Double.nan;
            var writtenBytes = Double.nan; var lastSuccess = Double.nan; var errors: UInt64 = 0 }
    /// What the files on disk hold (the snapshot thread's; a Mutex for `Sendable`).
    private struct Disk {
        var segments: [UInt64: StateManifest.Segment] = [:]
        var written: [SnapshotPlan.Key: SnapshotPlan.Written] = [:]
        var nextSegment: UInt64?
    }
    private let disk = Mutex(Disk())

    /// How long the last capture held the apply lock (the sink reports it).
    public func recordCapture(seconds: Double) { stats.withLock { $0.captureSeconds = seconds } }
    private let stats = Mutex(Stats())
    /// Per stream, what has been reported durable (written by the snapshot thread only).
    private let reported = Mutex<[UInt16: UInt64]>([:])
    private let lastWrittenChange = Mutex<UInt64>(UInt64.max)
    /// The positions the loaded file held: every later file keeps them (raised by
    /// what is applied since), or a snapshot written before the first new batch
    /// would forget where the aggregate ends and a restart would apply that again.
    private let restoredPositions = Mutex<[String: UInt64]>([:])
    private let loop = Mutex<(thread: OSThread, control: SourceControl)?>(nil)

    public init(path: String, interval: Duration, store: MetricStore, context: StageContext) {
        self.path = path
        self.interval = interval
        self.store = store
        self.context = context
        self.warnings = RateLimitedLog(logger: context.logger, interval: .seconds(10))
        context.addCollector { [self] in
            let s = stats.withLock { $0 }
            let p = Telemetry.prefix
            let age = s.lastSuccess.isNaN ? Double.nan : max(0, Self.wallSeconds() - s.lastSuccess)
            return [
                MetaFamily(name: p + "snapshot_seconds", help: "Duration of the last state-file write.", type: .gauge,
                        samples: [MetaSample(labels: [], value: s.lastSeconds)]),
                MetaFamily(name: p + "snapshot_capture_seconds",
                        help: "How long the last snapshot held the apply lock (ingestion waits that long).", type: .gauge,
                        samples: [MetaSample(labels: [], value: s.captureSeconds)]),
                MetaFamily(name: p + "snapshot_bytes", help: "Size of the state on disk after the last write (manifest and segments).",
                        type: .gauge, samples: [MetaSample(labels: [], value: s.lastBytes)]),
                MetaFamily(name: p + "snapshot_written_bytes",
                        help: "Bytes the last snapshot wrote (the parts that changed and the manifest).", type: .gauge,
                        samples: [MetaSample(labels: [], value: s.writtenBytes)]),
                MetaFamily(name: p + "snapshot_last_success_timestamp_seconds", help: "When the state file was last written (Unix time).",
                        type: .gauge, samples: [MetaSample(labels: [], value: s.lastSuccess)]),
                MetaFamily(name: p + "snapshot_age_seconds", help: "Seconds since the state file was last written.", type: .gauge,
                        samples: [MetaSample(labels: [], value: age)]),
                MetaFamily(name: p + "snapshot_errors_total", help: "State-file writes that failed.", type: .counter,
                        samples: [MetaSample(labels: [], value: Double(s.errors))]),
            ]
        }
    }

    static func wallSeconds() -> Double { Double(wallClockNanos()) / 1e9 }

    var healthID: String { "\(context.id) state file" }

    /// Loads the file into the (empty) store and tells `Checkpoints` where its
    /// streams end. A state that cannot be read is moved aside (the manifest and its
    /// segments, with a `.corrupt-<time>` suffix) and the sink starts empty: a bad
    /// file never stops the gateway.
    public func load() {
        context.health.set(healthID, ready: true, detail: path)
        let bytes: [UInt8]?
        do { bytes = try StateFile.read(path) } catch {
            context.logger.error("cannot read the state file; starting empty", metadata: ["file": "\(path)", "error": "\(error)"])
            return
        }
        guard let bytes else {
            context.logger.info("no state file yet; starting empty", metadata: ["file": "\(path)"])
            StateManifest.removeSegments(beside: path, keeping: [])
            return
        }
        do throws(StateFile.Corrupt) {
            let manifest = StateFile.version(of: bytes) == StateManifest.version ? try StateManifest.decode(bytes) : nil
            let state: StoreState
            if let manifest { state = try manifest.load(from: path) } else { state = try StateFile.decode(bytes) }
            store.restore(state)
            for (stream, through) in state.positions { context.checkpoints.restore(stream: stream, through: through) }
            restoredPositions.withLock { r in for (stream, through) in state.positions { r[stream] = through } }
            if let manifest { remember(manifest) }
            StateManifest.removeSegments(beside: path, keeping: Set(manifest?.segments.map(\.id) ?? []))
            context.logger.info("restored the aggregate", metadata: ["file": "\(path)", "series": "\(state.seriesCount)", "bytes": "\(bytes.count)"])
        } catch {
            let suffix = ".corrupt-\(Int(Self.wallSeconds()))"
            let moved = rename(path, path + suffix) == 0
            for id in StateManifest.segmentsOnDisk(beside: path) {
                let segment = StateManifest.segmentPath(path, id)
                rename(segment, segment + suffix)
            }
            context.logger.error("the state file is not usable; \(moved ? "moved it aside" : "could not move it aside") and starting empty",
                                 metadata: ["file": "\(path)", "reason": "\(error)", "aside": "\(moved ? path + suffix : "-")"])
        }
    }

    /// After a load: what the loaded parts hold is what the restored families are,
    /// so the first snapshot rewrites only what changes after it.
    private func remember(_ manifest: StateManifest) {
        let families = store.familyCopies()
        var stamps: [SnapshotPlan.Key: SnapshotPlan.Stamp] = [:]
        for p in SnapshotPlan.parts(of: families) { stamps[p.part.key] = p.part.stamp }
        disk.withLock { d in
            d.segments = Dictionary(manifest.segments.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for e in manifest.entries {
                let key = SnapshotPlan.Key(name: e.name, chunk: e.chunk)
                if let stamp = stamps[key] { d.written[key] = SnapshotPlan.Written(stamp: stamp, entry: e) }
            }
            d.nextSegment = (manifest.segments.map(\.id).max() ?? 0) + 1
        }
    }

    /// A reload: the previous sink's aggregate (with its positions) instead of the
    /// file, then written at once — the positions count as durable from here on.
    public func adopt(_ state: StoreState, take: @Sendable () -> (CapturedFamilies, Applied)) {
        context.health.set(healthID, ready: true, detail: path)
        store.restore(state)
        restoredPositions.withLock { r in for (stream, through) in state.positions { r[stream] = through } }
        write(take)
    }

    /// The positions a state written now holds: those restored, raised by what was applied.
    public func positions(_ applied: Applied) -> [(stream: String, through: UInt64)] {
        var positions = restoredPositions.withLock { $0 }
        for (stream, through) in applied.positions {
            guard let name = context.checkpoints.streamName(stream) else { continue }
            positions[name] = max(positions[name] ?? 0, through)
        }
        return positions.map { ($0.key, $0.value) }.sorted { $0.stream < $1.stream }
    }

    public func startLoop(_ take: @escaping @Sendable () -> (CapturedFamilies, Applied)) {
        let control = SourceControl()
        let thread = OSThread.spawn(name: "snapshot") { [self] in
            while !control.isStopping {
                control.sleep(seconds: interval.inSeconds)
                if control.isStopping { break }
                write(take)
            }
        }
        loop.withLock { $0 = (thread, control) }
    }

    /// Stops the loop and writes a final snapshot.
    public func stop(_ take: @escaping @Sendable () -> (CapturedFamilies, Applied)) {
        if let l = loop.withLock({ l in defer { l = nil }; return l }) {
            l.control.requestStop()
            l.thread.join()
        }
        write(take)
    }

    /// One snapshot: take it (under the apply lock, inside `take`), write the parts
    /// that changed and the manifest, and report the positions it holds as durable.
    public func write(_ take: @Sendable () -> (CapturedFamilies, Applied)) {
        let (captured, applied) = take()
        guard lastWrittenChange.withLock({ $0 }) != applied.changes else { return }   // nothing new
        let start = monotonicNanos()
        var d = disk.withLock { $0 }
        let parts = SnapshotPlan.parts(of: captured.families)
        let plan = SnapshotPlan(parts: parts.map(\.part), written: d.written, segmentSizes: d.segments.mapValues(\.size))
        let id = d.nextSegment ?? (StateManifest.segmentsOnDisk(beside: path).max() ?? 0) + 1
        var manifest = StateManifest(writtenAt: wallClockNanos(), positions: positions(applied))
        var segment = StateFile.Writer()
        var written: [SnapshotPlan.Key: SnapshotPlan.Written] = [:]
        for (p, step) in zip(parts, plan.steps) {
            var entry: StateManifest.Entry
            switch step {
            case .keep(let e): entry = e
            case .write:
                let f = captured.families[p.family]
                let offset = segment.out.count
                StateFile.encode(MetricStore.familyState(f, windows: captured.windows[p.family], now: captured.now, series: p.series),
                                 into: &segment)
                entry = StateManifest.Entry(name: f.name, chunk: p.part.key.chunk, segment: id, offset: UInt64(offset),
                                            length: UInt64(segment.out.count - offset), checksum: StateFile.checksum(segment.out[offset...]))
            }
            manifest.entries.append(entry)
            written[p.part.key] = SnapshotPlan.Written(stamp: p.part.stamp, entry: entry)
        }
        for used in Set(manifest.entries.map(\.segment)).sorted() {
            manifest.segments.append(used == id ? StateManifest.Segment(id: id, writtenAt: manifest.writtenAt, size: UInt64(segment.out.count))
                                                : d.segments[used]!)   // kept entries come from `d`
        }
        let bytes = manifest.encode()
        do {
            if !segment.out.isEmpty {
                d.nextSegment = id + 1   // kept on failure too: a failed segment's number is not taken again
                try StateFile.create(segment.out, at: StateManifest.segmentPath(path, id))
                StateFile.syncDirectory(of: path)   // the segment's name is durable before the manifest names it
                FaultInjection.point("snapshot_after_segment")
            }
            try StateFile.write(bytes, to: path)
        } catch {
            disk.withLock { $0.nextSegment = d.nextSegment }
            stats.withLock { $0.errors += 1 }
            context.health.set(healthID, ready: true, detail: "\(path): snapshot failing: \(error)")
            warnings.warning("cannot write the state file; nothing is acknowledged until it works: \(error)")
            return
        }
        FaultInjection.point("snapshot_after_rename")
        StateManifest.removeSegments(beside: path, keeping: Set(manifest.segments.map(\.id)))
        d.segments = Dictionary(manifest.segments.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        d.written = written
        disk.withLock { $0 = d }
        let seconds = Double(monotonicNanos() - start) / 1e9
        let total = Double(bytes.count) + Double(manifest.segments.reduce(0) { $0 + $1.size })
        stats.withLock {
            $0.lastSeconds = seconds; $0.lastBytes = total; $0.writtenBytes = Double(segment.out.count + bytes.count)
            $0.lastSuccess = Self.wallSeconds()
        }
        context.health.set(healthID, ready: true, detail: path)
        lastWrittenChange.withLock { $0 = applied.changes }
        let acks: [Acknowledgement] = reported.withLock { r in
            var out: [Acknowledgement] = []
            for (stream, through) in applied.positions where through > (r[stream] ?? 0) {
                let from = r[stream].map { $0 + 1 } ?? 1
                out.append(Acknowledgement(stream: stream, first: from, through: through))
                r[stream] = through
            }
            return out
        }
        context.checkpoints.markDurable(acks, by: context.id)
    }
}
