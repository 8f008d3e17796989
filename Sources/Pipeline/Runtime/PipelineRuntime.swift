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
/// **Accounting.** After every `process` and `consume` the runtime adds the
/// batch's drops to `dropped_metrics_total` and logs them (one rate-limited
/// warning per stage, intended drops at debug); what a sink consumed and did not
/// drop is counted as processed. Stages count nothing themselves.
///
/// **Lifecycle.** idle → starting → running → draining → stopped (see `State`).
/// `start()` starts sinks first and sources last, outside the lock; if one throws,
/// the stages already started are shut down again and the runtime is stopped.
/// `stop()` asks sources to stop; a source returns after emitting what it already
/// took; each buffer closes when all its producers are done; workers drain their
/// buffer to the last batch and exit; stages are shut down once everything has
/// flowed to the sinks. Nothing queued is discarded. Back-pressure: with
/// `when_full: block` (the default) a full buffer blocks its producer, up to the
/// source, so the backlog waits upstream.
public final class PipelineRuntime: Sendable {
    /// What callers can observe.
    public enum Phase: String, Sendable { case idle, starting, running, draining, stopped }

    /// The lifecycle, with what each state owns. Every transition is one `switch`
    /// under `state`'s lock; a call in the wrong state is a programming error.
    private enum State {
        case idle
        case starting
        case running(threads: [OSThread], liveStages: Int)
        case draining(threads: [OSThread], liveStages: Int)
        /// `threads` still to be joined by `wait()`.
        case stopped(threads: [OSThread])

        var phase: Phase {
            switch self {
            case .idle: .idle
            case .starting: .starting
            case .running: .running
            case .draining: .draining
            case .stopped: .stopped
            }
        }
    }

    private struct Node: Sendable {
        let decl: StageDecl
        let stage: Stage
        let input: BoundedBuffer<Batch>?
        let output: StageOutput?
        let stats: StageStats
        let control: SourceControl?
        let dropLog: RateLimitedLog
        let logger: Logger
        /// The stage's `dead_letter` list (nil: none).
        let letters: DeadLetterQueue?
    }

    private let nodes: [Node]
    private let logger: Logger
    private let deadLetterFactory: DeadLetterWriterFactory?
    public let telemetry: Telemetry
    public let health: HealthBoard
    public let checkpoints: Checkpoints

    private let state = Mutex(State.idle)
    private let stoppedSignal = ConditionLock()

    /// Builds every stage. Throws `ConfigErrors` with every factory error, each
    /// prefixed with its stage.
    /// `deadLetters` makes the writers of the stages' `dead_letter` lists (a stage
    /// with one and no factory is an error).
    public init(spec: PipelineSpec, logger: Logger, telemetry: Telemetry = Telemetry(), health: HealthBoard = HealthBoard(),
                checkpoints: Checkpoints = Checkpoints(), deadLetters: DeadLetterWriterFactory? = nil) throws {
        self.deadLetterFactory = deadLetters
        self.logger = logger
        self.telemetry = telemetry
        self.health = health
        self.checkpoints = checkpoints
        let sinksBelow = Self.sinksBelow(spec)
        for d in spec.stages where d.role == .source { checkpoints.setSinks(sinksBelow[d.id] ?? [], of: d.id) }
        var inputs: [String: BoundedBuffer<Batch>] = [:]
        for d in spec.stages where d.role != .source {
            inputs[d.id] = BoundedBuffer(capacity: d.buffer.capacity, whenFull: d.buffer.whenFull, producers: d.inputs.count)
        }
        var nodes: [Node] = []
        var errors: [ConfigError] = []
        for d in spec.stages {
            var stageLogger = logger
            stageLogger[metadataKey: "stage"] = "\(d.id)"
            let context = StageContext(id: d.id, logger: stageLogger, telemetry: telemetry, health: health, workers: d.workers,
                                       checkpoints: checkpoints)
            let stage: Stage
            do { stage = try d.config.makeStage(context: context) } catch {
                errors.append(ConfigError(path: d.path, line: d.line, message: "\(error)"))
                continue
            }
            let stats = StageStats()
            let dropLog = RateLimitedLog(logger: stageLogger)
            let targets = spec.stages.filter { $0.inputs.contains(d.id) }.flatMap { c in
                c.inputs.filter { $0 == d.id }.map { _ in (id: c.id, buffer: inputs[c.id]!) }
            }
            // A batch a full buffer discards never reaches the sinks below it: it is
            // resolved for them, or its source's position would stall there forever.
            let discarded: @Sendable (Acknowledgement, String) -> Void = { [checkpoints] ack, target in
                for sink in sinksBelow[target] ?? [] { checkpoints.markDurable([ack], by: sink) }
            }
            let output = d.role == .sink ? nil : StageOutput(targets: targets, stats: stats, telemetry: telemetry, dropLog: dropLog,
                                                             discarded: discarded)
            var letters: DeadLetterQueue?
            if let dl = d.deadLetter {
                if deadLetters == nil {
                    errors.append(ConfigError(path: d.path, key: "dead_letter", line: d.line, message: "dead letters are not available in this program"))
                }
                letters = DeadLetterQueue(config: dl, stage: d.id, logger: stageLogger)
            }
            nodes.append(Node(decl: d, stage: stage, input: inputs[d.id], output: output, stats: stats,
                              control: d.role == .source ? SourceControl() : nil, dropLog: dropLog, logger: stageLogger, letters: letters))
        }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        self.nodes = nodes
        let snapshot = nodes
        telemetry.addCollector { Self.collect(snapshot) }
    }

    public var phase: Phase { state.withLock { $0.phase } }

    /// The sink with this id (a reload hands state from the old pipeline's sinks to the new one's).
    public func sink(_ id: String) -> (any Sink)? {
        for node in nodes where node.decl.id == id { if case .sink(let s) = node.stage { return s } }
        return nil
    }

    /// Items (payloads) all sources have emitted so far.
    public var sourceItemsEmitted: UInt64 {
        nodes.filter { $0.decl.role == .source }.reduce(0) { $0 + $1.stats.itemsOut.value }
    }

    /// Starts sinks, then transforms, then sources, then their threads. On a
    /// stage's error, shuts down the ones already started and rethrows; the runtime
    /// is then stopped.
    public func start() throws {
        state.withLock { s in
            guard case .idle = s else { preconditionFailure("start() called while \(s.phase)") }
            s = .starting
        }
        var started: [Node] = []
        do {
            for node in nodes.reversed() {
                try lifecycle(node.stage).start()
                started.append(node)
            }
        } catch {
            for node in started.reversed() { lifecycle(node.stage).shutdown() }
            state.withLock { $0 = .stopped(threads: []) }
            stoppedSignal.withLock { stoppedSignal.broadcast() }
            throw ConfigErrors([ConfigError(path: Array(nodes.reversed())[started.count].decl.path, message: "\(error)")])
        }
        if let factory = deadLetterFactory {
            for node in nodes { if let q = node.letters { q.start { try factory(q.config) } } }
        }
        state.withLock { s in
            var threads: [OSThread] = []
            for node in nodes.reversed() { threads += spawn(node) }
            s = .running(threads: threads, liveStages: nodes.count)
        }
        logger.info("pipeline running", metadata: ["stages": "\(nodes.map(\.decl.id).joined(separator: ","))"])
    }

    /// Asks the sources to stop; everything already taken still flows to the sinks.
    /// Does nothing unless running.
    public func stop() {
        let wasRunning = state.withLock { s -> Bool in
            guard case .running(let threads, let live) = s else { return false }
            s = .draining(threads: threads, liveStages: live)
            return true
        }
        guard wasRunning else { return }
        logger.info("pipeline draining")
        for node in nodes { node.control?.requestStop() }
    }

    /// Blocks until every stage has stopped (returns at once if never started).
    public func wait() {
        stoppedSignal.lock()
        while true {
            let p = phase
            if p == .stopped || p == .idle { break }
            stoppedSignal.wait(seconds: 0.2)
        }
        stoppedSignal.unlock()
        let threads = state.withLock { s -> [OSThread] in
            guard case .stopped(let threads) = s else { return [] }
            s = .stopped(threads: [])
            return threads
        }
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

    /// Counts and logs what the stage dropped from `batch`, then forgets it.
    private func account(_ batch: inout Batch, node: Node) {
        guard !batch.drops.isEmpty else { return }
        telemetry.record(drops: batch.drops)
        node.letters?.enqueue(batch.drops)
        if batch.drops.allIntended {
            node.logger.debug("\(batch.drops.summary)")
        } else {
            node.dropLog.warning(batch.drops.summary)   // built only when it is logged
        }
        batch.drops.removeAll()
    }

    private func runTransform(_ transform: any Transform, node: Node, worker: Int, reorderer: Reorderer<Batch>) {
        let input = node.input!, output = node.output!
        // `while case var` and `consume`: the batch must have exactly one owner, or
        // the stage's first write copies every buffer of it (copy-on-write).
        while case (var batch, let ticket)? = input.pop() {
            node.stats.itemsIn.add(UInt64(batch.itemCount))
            let acknowledgement = batch.acknowledgement
            if node.letters != nil { batch.drops.letterBudget = DeadLetterQueue.perBatch }
            transform.process(&batch, worker: worker)
            batch.acknowledgement = acknowledgement   // whatever the stage did to the batch
            account(&batch, node: node)
            // An emptied batch still carries its acknowledgement to the sinks.
            let keep = batch.itemCount > 0 || acknowledgement != nil
            reorderer.complete(ticket, keep ? consume batch : nil) { output.emit($0) }
        }
    }

    private func runSink(_ sink: any Sink, node: Node, worker: Int, reorderer: Reorderer<Batch>) {
        let input = node.input!
        let ordered = sink.wantsOrderedInput
        let checkpoints = self.checkpoints, id = node.decl.id
        func consume(_ batch: consuming Batch) {
            var batch = batch
            let acknowledgement = batch.acknowledgement
            if node.letters != nil { batch.drops.letterBudget = DeadLetterQueue.perBatch }
            sink.consume(&batch, worker: worker)
            account(&batch, node: node)
            telemetry.recordProcessed(batch.liveItemsByOrigin)
            if let acknowledgement, !sink.retain(acknowledgement) { checkpoints.markDurable([acknowledgement], by: id) }
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
        let last = state.withLock { s -> Bool in
            switch s {
            case .running(let threads, let live):
                s = .running(threads: threads, liveStages: live - 1)
                return live == 1
            case .draining(let threads, let live):
                s = .draining(threads: threads, liveStages: live - 1)
                return live == 1
            default:
                preconditionFailure("a stage finished while \(s.phase)")
            }
        }
        guard last else { return }
        for n in nodes { lifecycle(n.stage).shutdown() }
        for n in nodes { n.letters?.stop() }
        state.withLock { s in
            switch s {
            case .running(let threads, _), .draining(let threads, _): s = .stopped(threads: threads)
            default: preconditionFailure("stopping while \(s.phase)")
            }
        }
        stoppedSignal.withLock { stoppedSignal.broadcast() }
        logger.info("pipeline stopped")
    }

    /// For every stage: the sinks its batches reach.
    private static func sinksBelow(_ spec: PipelineSpec) -> [String: [String]] {
        var below: [String: Set<String>] = [:]
        for d in spec.stages.reversed() {   // topological order reversed: consumers first
            var set: Set<String> = d.role == .sink ? [d.id] : []
            for c in spec.stages where c.inputs.contains(d.id) { set.formUnion(below[c.id] ?? []) }
            below[d.id] = set
        }
        return below.mapValues { $0.sorted() }
    }

    private static func collect(_ nodes: [Node]) -> [MetaFamily] {
        func family(_ name: String, _ help: String, _ type: MetricType, _ pick: (Node) -> Double?) -> MetaFamily {
            MetaFamily(name: Telemetry.prefix + name, help: help, type: type,
                       samples: nodes.compactMap { n in pick(n).map { MetaSample(labels: [("stage", n.decl.id)], value: $0) } })
        }
        return [
            family("stage_buffer_fill", "Batches waiting in the stage's input buffer.", .gauge) { $0.input.map { Double($0.fill) } },
            family("stage_buffer_capacity", "Capacity of the stage's input buffer, in batches.", .gauge) { $0.input.map { Double($0.capacity) } },
            family("stage_buffer_dropped_batches_total", "Batches discarded by a full `when_full: drop_newest` buffer (their samples count as dropped, reason buffer_full).", .counter) { $0.input.map { Double($0.droppedCount) } },
            family("stage_items_in_total", "Items (payloads or samples) the stage received.", .counter) { $0.decl.role == .source ? nil : Double($0.stats.itemsIn.value) },
            family("stage_items_out_total", "Items (payloads or live samples) the stage emitted.", .counter) { $0.decl.role == .sink ? nil : Double($0.stats.itemsOut.value) },
        ] + (nodes.contains { $0.letters != nil } ? [
            MetaFamily(name: Telemetry.prefix + "dead_letters_total", help: "Rejected samples and payloads written to the stage's dead_letter list (result=written), or not (result=dropped: over 100 per batch or 10 000 queued, or Redis failed).", type: .counter,
                       samples: nodes.compactMap { n in n.letters }.flatMap { q in
                           [MetaSample(labels: [("result", "written"), ("stage", q.stage)], value: Double(q.written.value)),
                            MetaSample(labels: [("result", "dropped"), ("stage", q.stage)], value: Double(q.dropped.value))]
                       }),
        ] : [])
    }
}

/// A countdown shared by a stage's threads.
private final class Counter: Sendable {
    private let value: Atomic<Int>
    init(_ n: Int) { value = Atomic(n) }
    func decrement() -> Int { value.subtract(1, ordering: .acquiringAndReleasing).newValue }
}
