import Aggregation
import Pipeline
import Synchronization

/// The aggregate a sink holds, with what keeps it: the apply lock and the positions
/// applied, the state file (`Snapshotter`) or per-shard state in Redis
/// (`ShardedState`), the expiry sweeper, and what a reload hands on. A sink that
/// aggregates (`prometheus`, `remote_write`) owns one and adds only how it gives the
/// aggregate away.
public final class Aggregate: Sendable {
    public let store: MetricStore
    let options: AggregateOptions
    let context: StageContext
    private let applying = ApplyLock()
    let snapshotter: Snapshotter?
    let sharded: ShardedState?
    /// The expiry sweeper and the heap trim: threads that run until `shutdown`.
    private let loops = Mutex<[(thread: OSThread, control: SourceControl)]>([])
    private let expired = MetaCounter()
    /// A reload hands the previous sink's aggregate to this one (before `start`).
    private let adopted = Mutex<StoreState?>(nil)
    /// Holds a share of the state file's lock (`StateFileLock`), from `start` to `shutdown`.
    private let locked = Mutex(false)

    public init(options: AggregateOptions, context: StageContext) {
        self.options = options
        self.context = context
        let store = MetricStore(summaryMaxAge: options.summaryMaxAge, summaryAgeBuckets: options.summaryAgeBuckets, limits: options.limits,
                                nativeHistograms: options.nativeHistograms)
        self.store = store
        snapshotter = options.stateFile.map { Snapshotter(path: $0, interval: options.snapshotInterval, store: store, context: context) }
        sharded = options.stateInRedis ? ShardedState(store: store, applying: applying, context: context, interval: options.snapshotInterval) : nil
    }

    /// With a state file or shard state, a batch is acknowledged once a snapshot holds it.
    public var retains: Bool { snapshotter != nil || sharded != nil }

    /// The aggregate's own meta-metrics: series by type, expired, the limit.
    public func metaFamilies() -> [MetaFamily] {
        let p = Telemetry.prefix
        var families = [
            MetaFamily(name: p + "series", help: "Series held by the aggregator, by metric type.", type: .gauge,
                       samples: MetricType.allCases.map { MetaSample(labels: [("type", $0.name)], value: Double(store.seriesCount($0))) }),
            MetaFamily(name: p + "series_expired_total", help: "Series removed by expire_after.", type: .counter,
                       samples: [MetaSample(labels: [], value: Double(expired.value))]),
        ]
        if options.limits.maxSeries > 0 {
            families.append(MetaFamily(name: p + "series_limit",
                                       help: "max_series: samples that would create more series are dropped as series_limit.",
                                       type: .gauge, samples: [MetaSample(labels: [], value: Double(options.limits.maxSeries))]))
        }
        return families
    }

    public func start() throws {
        if let path = options.stateFile, !locked.withLock({ $0 }) {
            do { try StateFileLock.acquire(path) } catch { throw ConfigError.invalid(key: "state_file", reason: error.description) }
            locked.withLock { $0 = true }
        }
        if let handed = adopted.withLock({ a in defer { a = nil }; return a }) {
            if let snapshotter {
                snapshotter.adopt(handed) { [self] in takeSnapshot() }
            } else {
                store.restore(handed)
            }
            context.logger.info("kept the aggregate across the reload", metadata: ["series": "\(handed.seriesCount)"])
        } else if let snapshotter {
            snapshotter.load()
        }
        snapshotter?.startLoop { [self] in takeSnapshot() }
        if let sharded { context.checkpoints.shards.attach(holder: sharded) }
        let limits = options.limits
        if limits.expireAfter != nil || !limits.expireByName.isEmpty {
            let shortest = ([limits.expireAfter].compactMap { $0 } + limits.expireByName.map(\.after)).min() ?? .seconds(1)
            let period = min(1.0, max(0.01, shortest.inSeconds / 4))
            startLoop("expiry") { [self] control in
                while !control.isStopping {
                    let removed = store.sweep()
                    if removed > 0 { expired.add(UInt64(removed)); removedSeries() }
                    control.sleep(seconds: period)
                }
            }
        }
        startLoop("heap-trim") { [store] control in
            var last = 0
            while !control.isStopping {
                control.sleep(seconds: HeapTrim.period)
                let series = store.seriesCount
                if HeapTrim.due(last: last, series: series) { HeapTrim.trim(); last = series }
            }
        }
    }

    private func startLoop(_ name: String, _ body: @escaping @Sendable (SourceControl) -> Void) {
        let control = SourceControl()
        let thread = OSThread.spawn(name: name) { body(control) }
        loops.withLock { $0.append((thread, control)) }
    }

    public func shutdown() {
        snapshotter?.stop { [self] in takeSnapshot() }
        if let path = options.stateFile, locked.withLock({ l in defer { l = false }; return l }) { StateFileLock.release(path) }
        if let sharded { context.checkpoints.shards.detach(holder: sharded) }
        for loop in loops.withLock({ l in defer { l = [] }; return l }) {
            loop.control.requestStop()
            loop.thread.join()
        }
    }

    public func consume(_ batch: inout Batch) {
        guard batch.kind == .samples || sharded != nil else { return }
        applying.withLock { a in
            if let sharded, !sharded.admit(&batch) { return }
            guard batch.kind == .samples else { return }
            store.apply(&batch, scratch: &a.scratch)
            a.applied.changes &+= 1
            if let ack = batch.acknowledgement, ack.through >= ack.first {
                a.applied.positions[ack.stream] = max(a.applied.positions[ack.stream] ?? 0, ack.through)
            }
        }
        FaultInjection.point("after_apply")
    }

    /// Removes the series any selector selects (the admin API), under the apply lock.
    public func delete(matching selectors: [SeriesSelector]) -> (count: Int, series: [String]) {
        let deleted = applying.withLock { a in
            let d = store.delete(matching: selectors)
            if d.count > 0 { a.applied.changes &+= 1 }
            return d
        }
        if deleted.count > 0 { sharded?.removedSeries() }
        return deleted
    }

    /// Series left outside a batch (expired): the next snapshot must be written though no batch
    /// came, or a restart would bring them back from the last one.
    private func removedSeries() {
        applying.withLock { $0.applied.changes &+= 1 }
        sharded?.removedSeries()
    }

    /// A reload: this aggregate (not yet started) continues `previous` (stopped, its
    /// final snapshot written): its series, whatever options changed, as a restart
    /// with its state file would, and the stream positions its state file records.
    /// The runtime's `Checkpoints` already hold the live positions.
    public func takeOver(from previous: Aggregate) {
        adopted.withLock { $0 = previous.handOver() }
        if let sharded, let before = previous.sharded { sharded.adopt(before) }
    }

    private func handOver() -> StoreState {
        let (captured, applied) = applying.withLock { a in (store.captureFamilies(), a.applied) }
        var state = MetricStore.state(of: captured)
        if let snapshotter {
            state.positions = snapshotter.positions(applied)
        } else {
            state.positions = applied.positions.compactMap { stream, through in
                context.checkpoints.streamName(stream).map { ($0, through) }
            }.sorted { $0.stream < $1.stream }
        }
        return state
    }

    /// The store and the positions it holds: copied under the apply lock (cheap,
    /// copy-on-write); the snapshotter lays out what changed after it.
    func takeSnapshot() -> (CapturedFamilies, Snapshotter.Applied) {
        let t0 = monotonicNanos()
        let (captured, applied) = applying.withLock { a in (store.captureFamilies(), a.applied) }
        snapshotter?.recordCapture(seconds: Double(monotonicNanos() - t0) / 1e9)
        return (captured, applied)
    }
}

/// The apply lock: the series-key buffer and what was applied (consume is
/// serialised anyway; a snapshot takes it to see no half-applied batch). A class so
/// the aggregate and its `ShardedState` share it.
final class ApplyLock: Sendable {
    struct State { var scratch: [UInt8] = []; var applied = Snapshotter.Applied() }
    private let state = Mutex(State())
    func withLock<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }
}

/// A sink that owns an `Aggregate`: a reload may hand it to a sink of either type.
public protocol AggregateHolding: AnyObject {
    var aggregate: Aggregate { get }
}

/// A sink whose series the admin API deletes. Each adds itself to the pipeline's `Peers` while it
/// runs, so the API of any `prometheus` sink reaches them all (a `remote_write` sink's too).
public protocol SeriesDeleting: AnyObject, Sendable {
    /// Removes the series any selector selects; how many.
    func deleteSeries(matching selectors: [SeriesSelector]) -> Int
}
