import Logging
import Pipeline
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Keeps the `prometheus` sink's aggregate on disk: loads it at start, writes it
/// every `snapshot_interval` (and once more at shutdown) off the ingest path, and
/// reports to `Checkpoints` what each write made durable.
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
            var lastSuccess = Double.nan; var errors: UInt64 = 0 }

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
                MetaFamily(name: p + "snapshot_bytes", help: "Size of the last state file written.", type: .gauge,
                        samples: [MetaSample(labels: [], value: s.lastBytes)]),
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
    /// streams end. A file that cannot be read as a state is moved aside and the
    /// sink starts empty: a bad file never stops the gateway.
    public func load() {
        context.health.set(healthID, ready: true, detail: path)
        let bytes: [UInt8]?
        do { bytes = try StateFile.read(path) } catch {
            context.logger.error("cannot read the state file; starting empty", metadata: ["file": "\(path)", "error": "\(error)"])
            return
        }
        guard let bytes else {
            context.logger.info("no state file yet; starting empty", metadata: ["file": "\(path)"])
            return
        }
        do {
            let state = try StateFile.decode(bytes)
            store.restore(state)
            for (stream, through) in state.positions { context.checkpoints.restore(stream: stream, through: through) }
            restoredPositions.withLock { r in for (stream, through) in state.positions { r[stream] = through } }
            context.logger.info("restored the aggregate", metadata: ["file": "\(path)", "series": "\(state.seriesCount)", "bytes": "\(bytes.count)"])
        } catch {
            let aside = "\(path).corrupt-\(Int(Self.wallSeconds()))"
            let moved = rename(path, aside) == 0
            context.logger.error("the state file is not usable; \(moved ? "moved it aside" : "could not move it aside") and starting empty",
                                 metadata: ["file": "\(path)", "reason": "\(error)", "aside": "\(moved ? aside : "-")"])
        }
    }

    /// A reload: the previous sink's aggregate (with its positions) instead of the
    /// file, then written at once — the positions count as durable from here on.
    public func adopt(_ state: StoreState, take: @Sendable () -> (StoreState, Applied)) {
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

    public func startLoop(_ take: @escaping @Sendable () -> (StoreState, Applied)) {
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
    public func stop(_ take: @escaping @Sendable () -> (StoreState, Applied)) {
        if let l = loop.withLock({ l in defer { l = nil }; return l }) {
            l.control.requestStop()
            l.thread.join()
        }
        write(take)
    }

    /// One snapshot: take it (under the apply lock, inside `take`), write it, and
    /// report the positions it holds as durable.
    func write(_ take: @Sendable () -> (StoreState, Applied)) {
        var (state, applied) = take()
        guard lastWrittenChange.withLock({ $0 }) != applied.changes else { return }   // nothing new
        state.positions = positions(applied)
        let start = monotonicNanos()
        let bytes = StateFile.encode(state)
        do {
            try StateFile.write(bytes, to: path)
        } catch {
            stats.withLock { $0.errors += 1 }
            context.health.set(healthID, ready: true, detail: "\(path): snapshot failing: \(error)")
            warnings.warning("cannot write the state file; nothing is acknowledged until it works: \(error)")
            return
        }
        FaultInjection.point("snapshot_after_rename")
        let seconds = Double(monotonicNanos() - start) / 1e9
        stats.withLock { $0.lastSeconds = seconds; $0.lastBytes = Double(bytes.count); $0.lastSuccess = Self.wallSeconds() }
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
