import Logging
import Synchronization

/// Runs a `PipelineSpec`: builds every stage, joins them with bounded buffers and
/// runs each on threads of its own.
///
/// **Threads.** A source runs on `threadCount` threads; a transform or sink on
/// `workers` threads that pop from its input buffer.
///
/// **Order.** A buffer hands out a ticket with every batch (its dequeue position).
/// A transform's workers process in parallel and hand results to a `Reorderer`,
/// which emits them strictly in ticket order, so each transform's output order
/// equals its input order whatever its `workers`. A sink that `wantsOrderedInput`
/// consumes in ticket order the same way. By induction every sink sees each
/// source's batches in the order the source emitted them; two sources feeding one
/// stage interleave, each in its own order. A slow batch holds back the emission
/// (not the processing) of later ones.
///
/// **Lifecycle.** idle → running → draining → stopped. `stop()` asks sources to
/// stop; a source returns after emitting what it already took; each buffer closes
/// when all its producers are done; workers drain their buffer to the last batch
/// and exit; stages are shut down once everything has flowed to the sinks. Nothing
/// queued is discarded. Back-pressure: with `when_full: block` (the default) a full
/// buffer blocks its producer, up to the source, so the backlog waits upstream.
public final class PipelineRuntime: Sendable {
    public enum State: String, Sendable { case idle, running, draining, stopped }

    private struct Node: Sendable {
        let decl: StageDecl
        let stage: Stage
        let input: BoundedBuffer<Batch>?
        let output: StageOutput?
        let stats: StageStats
        let control: SourceControl?
    }

    private let nodes: [Node]
    private let logger: Logger
    public let telemetry: Telemetry
    public let health: HealthBoard

    private struct Run { var state: State = .idle; var threads: [OSThread] = []; var liveStages = 0 }
    private let run = Mutex(Run())           // lifecycle, protected by itself
    private let stoppedSignal = ConditionLock()

    /// Builds every stage. Throws the first factory error, prefixed with the stage id.
    public init(spec: PipelineSpec, logger: Logger, telemetry: Telemetry = Telemetry(), health: HealthBoard = HealthBoard()) throws {
        self.logger = logger
        self.telemetry = telemetry
        self.health = health
        var inputs: [String: BoundedBuffer<Batch>] = [:]
        for d in spec.stages where d.role != .source {
            inputs[d.id] = BoundedBuffer(capacity: d.buffer.capacity, whenFull: d.buffer.whenFull, producers: d.inputs.count)
        }
        var nodes: [Node] = []
        for d in spec.stages {
            var stageLogger = logger
            stageLogger[metadataKey: "stage"] = "\(d.id)"
            let context = StageContext(id: d.id, logger: stageLogger, telemetry: telemetry, health: health, workers: d.workers)
            let stage: Stage
            do { stage = try d.config.makeStage(context: context) } catch {
                throw ConfigErrors([ConfigError(path: "\(d.role.section).\(d.id)", line: d.line, message: "\(error)")])
            }
            let stats = StageStats()
            let targets = spec.stages.filter { $0.inputs.contains(d.id) }.flatMap { c in c.inputs.filter { $0 == d.id }.map { _ in inputs[c.id]! } }
            let output = d.role == .sink ? nil : StageOutput(targets: targets, stats: stats)
            nodes.append(Node(decl: d, stage: stage, input: inputs[d.id], output: output, stats: stats,
                              control: d.role == .source ? SourceControl() : nil))
        }
        self.nodes = nodes
        let snapshot = nodes
        telemetry.addCollector { Self.collect(snapshot) }
    }

    public var state: State { run.withLock { $0.state } }

    /// Items (payloads) all sources have emitted so far.
    public var sourceItemsEmitted: UInt64 {
        nodes.filter { $0.decl.role == .source }.reduce(0) { $0 + $1.stats.itemsOut.value }
    }

    /// Starts sinks, then transforms, then sources.
    public func start() throws {
        try run.withLock { r in
            guard r.state == .idle else { return }
            for node in nodes.reversed() { try lifecycle(node.stage).start() }
            r.state = .running
            r.liveStages = nodes.count
            for node in nodes.reversed() { r.threads += spawn(node) }
        }
        logger.info("pipeline running", metadata: ["stages": "\(nodes.map(\.decl.id).joined(separator: ","))"])
    }

    /// Asks the sources to stop; everything already taken still flows to the sinks.
    public func stop() {
        let wasRunning = run.withLock { r -> Bool in
            guard r.state == .running else { return false }
            r.state = .draining
            return true
        }
        guard wasRunning else { return }
        logger.info("pipeline draining")
        for node in nodes { node.control?.requestStop() }
    }

    /// Blocks until every stage has stopped.
    public func wait() {
        stoppedSignal.lock()
        while state != .stopped && state != .idle { stoppedSignal.wait(seconds: 0.2) }
        stoppedSignal.unlock()
        let threads = run.withLock { r in defer { r.threads = [] }; return r.threads }
        for t in threads { t.join() }
    }

    private func lifecycle(_ stage: Stage) -> any StageLifecycle {
        switch stage {
        case .source(let s): s
        case .transform(let t): t
        case .sink(let s): s
        }
    }

    private func spawn(_ node: Node) -> [OSThread] {
        let count: Int
        switch node.stage {
        case .source(let s): count = max(1, s.threadCount)
        default: count = node.decl.workers
        }
        let box = Counter(count)
        let reorderer = Reorderer<Batch>(capacity: 2 * count)
        return (0..<count).map { worker in
            OSThread.spawn(name: "\(node.decl.id)-\(worker)") { [self] in
                switch node.stage {
                case .source(let source):
                    source.run(worker: worker, output: node.output!, control: node.control!)
                case .transform(let transform):
                    runTransform(transform, node: node, worker: worker, reorderer: reorderer)
                case .sink(let sink):
                    runSink(sink, node: node, worker: worker, reorderer: reorderer)
                }
                if box.decrement() == 0 { stageFinished(node) }
            }
        }
    }

    private func runTransform(_ transform: any Transform, node: Node, worker: Int, reorderer: Reorderer<Batch>) {
        let input = node.input!, output = node.output!
        // `while case var` and `consume`: the batch must have exactly one owner, or
        // the stage's first write copies every buffer of it (copy-on-write).
        while case (var batch, let ticket)? = input.pop() {
            node.stats.itemsIn.add(UInt64(batch.itemCount))
            transform.process(&batch, worker: worker)
            telemetry.record(drops: batch.drops)
            batch.drops.removeAll()
            reorderer.complete(ticket, batch.itemCount > 0 ? consume batch : nil) { output.emit($0) }
        }
    }

    private func runSink(_ sink: any Sink, node: Node, worker: Int, reorderer: Reorderer<Batch>) {
        let input = node.input!
        let ordered = sink.wantsOrderedInput
        let telemetry = self.telemetry
        func consume(_ batch: consuming Batch) {
            var batch = batch
            sink.consume(&batch, worker: worker)
            telemetry.record(drops: batch.drops)
        }
        while case (let batch, let ticket)? = input.pop() {
            node.stats.itemsIn.add(UInt64(batch.itemCount))
            if ordered { reorderer.complete(ticket, batch) { consume($0) } } else { consume(batch) }
        }
    }

    /// The last thread of a stage returned: close its outputs; when the sinks are
    /// done, shut every stage down in source-to-sink order.
    private func stageFinished(_ node: Node) {
        node.output?.finish()
        logger.debug("stage stopped", metadata: ["stage": "\(node.decl.id)"])
        let last = run.withLock { r -> Bool in
            r.liveStages -= 1
            return r.liveStages == 0
        }
        guard last else { return }
        for n in nodes { lifecycle(n.stage).shutdown() }
        run.withLock { $0.state = .stopped }
        stoppedSignal.withLock { stoppedSignal.broadcast() }
        logger.info("pipeline stopped")
    }

    private static func collect(_ nodes: [Node]) -> [MetaFamily] {
        func family(_ name: String, _ help: String, _ type: MetricType, _ pick: (Node) -> Double?) -> MetaFamily {
            MetaFamily(name: Telemetry.prefix + name, help: help, type: type,
                       samples: nodes.compactMap { n in pick(n).map { MetaSample(labels: [("stage", n.decl.id)], value: $0) } })
        }
        return [
            family("stage_buffer_fill", "Batches waiting in the stage's input buffer.", .gauge) { $0.input.map { Double($0.fill) } },
            family("stage_buffer_capacity", "Capacity of the stage's input buffer, in batches.", .gauge) { $0.input.map { Double($0.capacity) } },
            family("stage_buffer_dropped_batches_total", "Batches discarded by a full `when_full: drop_newest` buffer.", .counter) { $0.input.map { Double($0.droppedCount) } },
            family("stage_items_in_total", "Items (payloads or samples) the stage received.", .counter) { $0.decl.role == .source ? nil : Double($0.stats.itemsIn.value) },
            family("stage_items_out_total", "Items (payloads or live samples) the stage emitted.", .counter) { $0.decl.role == .sink ? nil : Double($0.stats.itemsOut.value) },
        ]
    }
}

/// A countdown shared by a stage's threads.
private final class Counter: Sendable {
    private let value: Atomic<Int>
    init(_ n: Int) { value = Atomic(n) }
    func decrement() -> Int { value.subtract(1, ordering: .acquiringAndReleasing).newValue }
}
