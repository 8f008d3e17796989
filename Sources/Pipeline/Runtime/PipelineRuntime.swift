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
///
/// **Reload** (`reconfigure(to:)`). A stage is *rebuilt* when its YAML (after
/// `${VAR}` expansion, with what its config read: `StageDecl.fingerprint`) differs
/// or it is new; *restarted* (same instance, new threads) when it is unchanged but
/// its outputs must be wired anew — its consumers changed, or one of them gets a
/// new input buffer (its `inputs` or `buffer` changed); *kept* otherwise, threads
/// and all. A stage whose `inputs` and `buffer` are unchanged keeps its input
/// buffer, so its producers need no new wiring. Retiring runs in topological
/// order: sources among the touched stages stop; a touched stage with a new buffer
/// drains until its old one closes; one that keeps its buffer waits until its
/// touched producers are done, then its buffer is *held* — producers wait,
/// consumers take what is queued and stop — and its successor continues from the
/// same buffer and ticket. So no batch is lost, repeated or reordered per source.
/// Buffers that stay take their new producers before the old ones finish, so they
/// never close. Rebuilt stages take over from their predecessor of the same id
/// (`StatefulStage.takeOver`; stream positions through `Checkpoints.register`) and start; if one cannot, the previous instances
/// are started again (`rolledBack`).
public final class PipelineRuntime: Sendable {
    /// What callers can observe.
    public enum Phase: String, Sendable { case idle, starting, running, draining, stopped }

    /// What a reload did, by stage id.
    public struct Reconfiguration: Sendable, Equatable, CustomStringConvertible {
        /// Ran throughout: threads, buffer and state untouched.
        public var kept: [String] = []
        /// The same instance (state and counters kept) on new threads: a stage below it changed.
        public var restarted: [String] = []
        /// Built anew (options changed, or new); each took over from its predecessor.
        public var rebuilt: [String] = []
        public var removed: [String] = []

        public var changesNothing: Bool { restarted.isEmpty && rebuilt.isEmpty && removed.isEmpty }

        public var description: String {
            [("kept", kept), ("restarted", restarted), ("rebuilt", rebuilt), ("removed", removed)]
                .map { "\($0.0): \($0.1.isEmpty ? "-" : $0.1.joined(separator: ","))" }.joined(separator: "; ")
        }
    }

    public enum ReconfigurationError: Error, CustomStringConvertible {
        /// The runtime was not running; nothing changed.
        case notRunning(Phase)
        /// The new stages could not be built or started; the previous ones run again.
        case rolledBack(String)
        /// Neither the new stages nor the previous ones could start.
        case failed(String)

        public var description: String {
            switch self {
            case .notRunning(let p): "the pipeline is \(p.rawValue), not running"
            case .rolledBack(let why): "the new stages cannot start (\(why)); the previous ones run again"
            case .failed(let why): "neither the new stages nor the previous ones can start: \(why)"
            }
        }
    }

    /// A built stage and what belongs to the instance (kept when a reload only restarts it).
    private struct Instance: Sendable {
        let stage: Stage
        let owner: UInt64
        let stats: StageStats
        let dropLog: RateLimitedLog
        let logger: Logger
        /// The stage's `dead_letter` list (nil: none).
        let letters: DeadLetterQueue?
    }

    /// An instance wired into the graph, with the threads that run it.
    private struct Node: Sendable {
        /// The stage with what its role runs on: a source its output and stop control,
        /// a transform its input and output, a sink its input.
        enum Wiring: Sendable {
            case source(any Source, output: StageOutput, control: SourceControl)
            case transform(any Transform, input: BoundedBuffer<Batch>, output: StageOutput)
            case sink(any Sink, input: BoundedBuffer<Batch>)
        }

        let decl: StageDecl
        let instance: Instance
        let wiring: Wiring
        let run: NodeRun
        var stage: Stage { instance.stage }
        var input: BoundedBuffer<Batch>? {
            switch wiring {
            case .source: nil
            case .transform(_, let input, _), .sink(_, let input): input
            }
        }
        var output: StageOutput? {
            switch wiring {
            case .source(_, let output, _), .transform(_, _, let output): output
            case .sink: nil
            }
        }
        var control: SourceControl? { if case .source(_, _, let control) = wiring { control } else { nil } }
        var stats: StageStats { instance.stats }
        var dropLog: RateLimitedLog { instance.dropLog }
        var logger: Logger { instance.logger }
        var letters: DeadLetterQueue? { instance.letters }
    }

    /// Everything that changes, under one lock; a class so that the meta-metrics
    /// collector can read the current stages without holding the runtime.
    private final class Graph: Sendable {
        struct State {
            var phase: Phase = .idle
            var spec: PipelineSpec
            var nodes: [Node] = []
            /// Current stages whose threads have not all returned.
            var live = 0
            /// Stages a reload is draining: their end does not count against `live`.
            var retiring: Set<ObjectIdentifier> = []
            var finished: Set<ObjectIdentifier> = []
        }
        let state: Mutex<State>
        init(spec: PipelineSpec) { state = Mutex(State(spec: spec)) }
        var nodes: [Node] { state.withLock { $0.nodes } }
    }

    private let graph: Graph
    private let logger: Logger
    public let telemetry: Telemetry
    public let health: HealthBoard
    public let checkpoints: Checkpoints
    /// Bytes of batches in flight (`memory_budget`).
    package let memoryBudget: MemoryBudget
    public let peers = Peers()

    /// Broadcast when a stage or the whole pipeline stopped.
    private let changed = ConditionLock()
    /// Held by `reconfigure` and `stop`: a reload finishes before a stop begins.
    private let reconfiguring = Mutex(())

    /// Builds every stage. Throws `ConfigErrors` with every factory error, each
    /// prefixed with its stage.
    public init(spec: PipelineSpec, logger: Logger, telemetry: Telemetry = Telemetry(), health: HealthBoard = HealthBoard(),
                checkpoints: Checkpoints = Checkpoints()) throws {
        self.logger = logger
        self.telemetry = telemetry
        self.health = health
        self.checkpoints = checkpoints
        self.memoryBudget = MemoryBudget(limit: spec.memoryBudget)
        self.graph = Graph(spec: spec)
        let sinksBelow = Self.sinksBelow(spec)
        for d in spec.stages where d.role == .source { checkpoints.setSinks(sinksBelow[d.id] ?? [], of: d.id) }
        var instances: [String: Instance] = [:]
        var errors: [ConfigError] = []
        for d in spec.stages {
            do { instances[d.id] = try build(d) } catch { errors += error.errors }
        }
        guard errors.isEmpty else {
            for i in instances.values { telemetry.removeCollectors(owner: i.owner) }
            throw ConfigErrors(errors)
        }
        let nodes = wire(spec, ids: Set(spec.stages.map(\.id)), instances: instances, staying: [:])
        graph.state.withLock { $0.nodes = nodes }
        let graph = self.graph
        telemetry.addCollector { Self.collect(graph.nodes) }
    }

    public var phase: Phase { graph.state.withLock { $0.phase } }

    /// The running sink with this id.
    public func sink(_ id: String) -> (any Sink)? {
        for node in graph.nodes where node.decl.id == id { if case .sink(let s) = node.stage { return s } }
        return nil
    }

    /// Items (payloads) the current sources have emitted so far.
    public var sourceItemsEmitted: UInt64 {
        graph.nodes.filter { $0.decl.role == .source }.reduce(0) { $0 + $1.stats.itemsOut.value }
    }

    /// Starts sinks, then transforms, then sources, then their threads. On a
    /// stage's error, shuts down the ones already started and rethrows; the runtime
    /// is then stopped.
    public func start() throws {
        let nodes = graph.state.withLock { s -> [Node] in
            guard s.phase == .idle else { preconditionFailure("start() called while \(s.phase)") }
            s.phase = .starting
            return s.nodes
        }
        do { try startLifecycles(nodes.map { ($0.decl, $0.instance) }) } catch {
            graph.state.withLock { $0.phase = .stopped }
            changed.withLock { changed.broadcast() }
            throw error
        }
        startLetters(nodes)
        graph.state.withLock { s in
            for node in nodes.reversed() { spawn(node) }
            s.phase = .running
            s.live = nodes.count
        }
        logger.info("pipeline running", metadata: ["stages": "\(nodes.map(\.decl.id).joined(separator: ","))"])
    }

    /// Asks the sources to stop; everything already taken still flows to the sinks.
    /// Does nothing unless running; waits for a reload in progress.
    public func stop() {
        reconfiguring.withLock { _ in
            let nodes = graph.state.withLock { s -> [Node]? in
                guard s.phase == .running else { return nil }
                s.phase = .draining
                return s.nodes
            }
            guard let nodes else { return }
            logger.info("pipeline draining")
            for node in nodes { node.control?.requestStop() }
        }
    }

    /// Blocks until every stage has stopped (returns at once if never started).
    public func wait() {
        changed.lock()
        while true {
            let p = phase
            if p == .stopped || p == .idle { break }
            _ = changed.wait(seconds: 0.2)
        }
        changed.unlock()
        for node in graph.nodes { for t in node.run.takeThreads() { t.join() } }
    }

    /// Replaces the running pipeline by `spec`, touching only what changed (see
    /// **Reload** above). Returns what happened to each stage.
    public func reconfigure(to spec: PipelineSpec) throws(ReconfigurationError) -> Reconfiguration {
        try reconfiguring.withLock { _ throws(ReconfigurationError) -> Reconfiguration in try reconfigureLocked(spec) }
    }

    private func reconfigureLocked(_ spec: PipelineSpec) throws(ReconfigurationError) -> Reconfiguration {
        let (phase, oldSpec, old) = graph.state.withLock { ($0.phase, $0.spec, $0.nodes) }
        guard phase == .running else { throw .notRunning(phase) }
        var previous: [String: Node] = [:]
        for n in old { previous[n.decl.id] = n }
        func same(_ d: StageDecl) -> Node? { previous[d.id].flatMap { $0.decl.role == d.role ? $0 : nil } }
        let plan = ReloadPlan(from: oldSpec, to: spec)
        let (keepsBuffer, rebuild, touched, removed, report) = (plan.keepsBuffer, plan.rebuild, plan.touched, plan.removed, plan.report)
        memoryBudget.limit = spec.memoryBudget
        guard !report.changesNothing else { return report }

        // Refused before anything stops: a stage holding durable state that cannot take it over.
        for d in spec.stages where rebuild.contains(d.id) {
            if let p = same(d), !(lifecycle(p.stage) is any StatefulStage), Self.holdsDurableState(d, p.decl) {
                throw .rolledBack("\(d.path): \(Self.statelessRefusal)")
            }
        }
        let retiring = old.filter { touched.contains($0.decl.id) || removed.contains($0.decl.id) }
        let kept = old.filter { !touched.contains($0.decl.id) && !removed.contains($0.decl.id) }
        // Buffers that stay: the kept stages' and those of touched stages that keep
        // theirs. Each takes its new producers before the old ones finish, so it
        // never closes; its stage's inputs are the same in both files.
        var staying: [String: BoundedBuffer<Batch>] = [:]
        for n in old where keepsBuffer.contains(n.decl.id) || kept.contains(where: { $0.decl.id == n.decl.id }) {
            guard let input = n.input else { continue }
            staying[n.decl.id] = input
            let joining = n.decl.inputs.filter { touched.contains($0) }.count
            if joining > 0 { input.addProducers(joining) }
        }
        logger.info("reloading: draining the stages that change", metadata: ["reload": "\(report)"])
        retire(retiring, holding: Set(staying.keys))
        let replaced = retiring.filter { rebuild.contains($0.decl.id) || removed.contains($0.decl.id) }
        for r in replaced {
            lifecycle(r.stage).shutdown()
            r.letters?.stop()
            telemetry.removeCollectors(owner: r.instance.owner)
        }
        for id in removed { health.remove(id) }

        var reused: [String: Instance] = [:]
        for r in retiring where !rebuild.contains(r.decl.id) && !removed.contains(r.decl.id) { reused[r.decl.id] = r.instance }
        do {
            let fresh = try startInstances(spec, ids: rebuild, previous: previous)
            install(spec, ids: touched, instances: reused.merging(fresh) { a, _ in a }, fresh: Set(fresh.keys), kept: kept, staying: staying)
        } catch {
            let ids = Set(replaced.map(\.decl.id))
            do {
                let back = try startInstances(oldSpec, ids: ids, previous: previous)
                install(oldSpec, ids: Set(retiring.map(\.decl.id)), instances: reused.merging(back) { a, _ in a }, fresh: ids, kept: kept,
                        staying: staying)
            } catch let again {
                for b in staying.values { _ = b.release() }
                throw .failed("\(again)")
            }
            throw .rolledBack("\(error)")
        }
        return report
    }

    /// Stops the sources among `nodes` and waits, in topological order, until each
    /// has drained: a stage whose buffer stays (in `holding`) once its retiring
    /// producers are done — then its buffer is held, so it takes what is queued and
    /// stops while its producers wait — any other when its buffer closes.
    private func retire(_ nodes: [Node], holding: Set<String>) {
        let ids = Set(nodes.map { ObjectIdentifier($0.run) })
        graph.state.withLock { s in
            for n in nodes where !s.finished.contains(ObjectIdentifier(n.run)) { s.live -= 1 }
            s.retiring.formUnion(ids)
        }
        for n in nodes { n.control?.requestStop() }
        for n in nodes {   // topological: its retiring producers came first
            if holding.contains(n.decl.id) { n.input?.hold() }
            let id = ObjectIdentifier(n.run)
            changed.lock()
            while !graph.state.withLock({ $0.finished.contains(id) }) { _ = changed.wait(seconds: 0.2) }
            changed.unlock()
            for t in n.run.takeThreads() { t.join() }
        }
        graph.state.withLock { s in
            s.retiring.subtract(ids)
            s.finished.subtract(ids)
        }
    }

    /// Builds `ids` of `spec`, lets each take over from the stage it replaces, and
    /// starts them (sinks first). On an error nothing of it is left running.
    private func startInstances(_ spec: PipelineSpec, ids: Set<String>, previous: [String: Node]) throws -> [String: Instance] {
        let sinksBelow = Self.sinksBelow(spec)
        for d in spec.stages where d.role == .source { checkpoints.setSinks(sinksBelow[d.id] ?? [], of: d.id) }
        var built: [(StageDecl, Instance)] = []
        do {
            for d in spec.stages where ids.contains(d.id) {
                let instance = try build(d)
                built.append((d, instance))
                if let p = previous[d.id], p.decl.role == d.role { try takeOver(d, instance, from: p) }
            }
            try startLifecycles(built)
        } catch {
            for (_, i) in built { telemetry.removeCollectors(owner: i.owner) }
            throw error
        }
        return Dictionary(uniqueKeysWithValues: built.map { ($0.0.id, $0.1) })
    }

    /// A rebuilt stage continues its predecessor's state; one that holds durable
    /// state and cannot is refused (see `StatefulStage`).
    private func takeOver(_ d: StageDecl, _ instance: Instance, from p: Node) throws {
        let stage = lifecycle(instance.stage)
        if let stateful = stage as? any StatefulStage {
            do { try stateful.takeOver(from: lifecycle(p.stage)) } catch {
                throw ConfigErrors([ConfigError(path: d.path, message: "cannot take over the running stage's state: \(error)")])
            }
        } else if Self.holdsDurableState(d, p.decl) {
            throw ConfigErrors([ConfigError(path: d.path, message: Self.statelessRefusal)])
        }
    }

    /// A stage whose rebuild must carry state over: its sources' durable positions depend on it.
    private static func holdsDurableState(_ d: StageDecl, _ previous: StageDecl) -> Bool {
        d.config.needsRedelivery || previous.config.needsRedelivery
    }

    static let statelessRefusal = "holds durable state but cannot take it over in a reload (it is no StatefulStage); "
        + "restart the gateway to apply this change"

    /// Wires and runs `ids` of `spec` beside the `kept` stages, into the buffers
    /// that stay (released here) or new ones.
    private func install(_ spec: PipelineSpec, ids: Set<String>, instances: [String: Instance], fresh: Set<String>, kept: [Node],
                         staying: [String: BoundedBuffer<Batch>]) {
        let nodes = wire(spec, ids: ids, instances: instances, staying: staying)
        startLetters(nodes.filter { fresh.contains($0.decl.id) })
        // No consumer of a held buffer runs until spawned below: its next ticket is theirs.
        var first: [String: UInt64] = [:]
        for n in nodes { if let b = staying[n.decl.id] { first[n.decl.id] = b.release() } }
        graph.state.withLock { s in
            for node in nodes.reversed() { spawn(node, firstTicket: first[node.decl.id] ?? 0) }
            s.nodes = spec.stages.compactMap { d in nodes.first { $0.decl.id == d.id } ?? kept.first { $0.decl.id == d.id } }
            s.live += nodes.count
            s.spec = spec
        }
    }

    /// One stage instance, with what belongs to it.
    private func build(_ d: StageDecl) throws(ConfigErrors) -> Instance {
        var stageLogger = logger
        stageLogger[metadataKey: "stage"] = "\(d.id)"
        let context = StageContext(id: d.id, logger: stageLogger, telemetry: telemetry, health: health, workers: d.workers,
                                   checkpoints: checkpoints, memoryBudget: memoryBudget, peers: peers)
        let stage: Stage
        do { stage = try d.config.makeStage(context: context) } catch {
            throw ConfigErrors([ConfigError(path: d.path, line: d.line, message: "\(error)")])
        }
        var letters: DeadLetterQueue?
        if let dl = d.deadLetter {
            letters = DeadLetterQueue(config: dl, stage: d.id, logger: stageLogger)
        }
        return Instance(stage: stage, owner: context.owner, stats: StageStats(), dropLog: RateLimitedLog(logger: stageLogger),
                        logger: stageLogger, letters: letters)
    }

    /// Nodes for `ids` of `spec`, in its order: a non-source with the buffer that
    /// stays for it, else a new one (then its producers are all among `ids`);
    /// outputs into its consumers' buffers.
    private func wire(_ spec: PipelineSpec, ids: Set<String>, instances: [String: Instance],
                      staying: [String: BoundedBuffer<Batch>]) -> [Node] {
        let sinksBelow = Self.sinksBelow(spec)
        var inputs = staying
        for d in spec.stages where d.role != .source && ids.contains(d.id) && inputs[d.id] == nil {
            inputs[d.id] = BoundedBuffer(capacity: d.buffer.capacity, whenFull: d.buffer.whenFull, producers: d.inputs.count)
        }
        let checkpoints = self.checkpoints
        return spec.stages.filter { ids.contains($0.id) }.map { d in
            let instance = instances[d.id]!
            let targets = spec.stages.filter { $0.inputs.contains(d.id) }.flatMap { c in
                c.inputs.filter { $0 == d.id }.map { _ in (id: c.id, buffer: inputs[c.id]!) }
            }
            // A batch a full buffer discards never reaches the sinks below it: it is
            // resolved for them, or its source's position would stall there forever.
            let discarded: @Sendable (Acknowledgement, String) -> Void = { ack, target in
                for sink in sinksBelow[target] ?? [] { checkpoints.markDurable([ack], by: sink) }
            }
            func output(source: Bool) -> StageOutput {
                StageOutput(targets: targets, stats: instance.stats, telemetry: telemetry, dropLog: instance.dropLog, discarded: discarded,
                            emitted: source ? checkpoints : nil, budget: memoryBudget, charges: source)
            }
            let wiring: Node.Wiring = switch instance.stage {
            case .source(let s): .source(s, output: output(source: true), control: SourceControl())
            case .transform(let t): .transform(t, input: inputs[d.id]!, output: output(source: false))
            case .sink(let s): .sink(s, input: inputs[d.id]!)
            }
            return Node(decl: d, instance: instance, wiring: wiring, run: NodeRun())
        }
    }

    /// Starts the instances, sinks first; on an error shuts down the ones started.
    private func startLifecycles(_ stages: [(StageDecl, Instance)]) throws {
        var started: [any StageLifecycle] = []
        for (d, i) in stages.reversed() {
            let l = lifecycle(i.stage)
            do { try l.start() } catch {
                for s in started.reversed() { s.shutdown() }
                throw ConfigErrors([ConfigError(path: d.path, message: "\(error)")])
            }
            started.append(l)
        }
    }

    private func startLetters(_ nodes: [Node]) {
        for node in nodes { if let q = node.letters { q.start { try q.config.destination.makeWriter() } } }
    }

    private func lifecycle(_ stage: Stage) -> any StageLifecycle {
        switch stage {
        case .source(let s): s
        case .transform(let t): t
        case .sink(let s): s
        }
    }

    /// Starts the node's threads (under the state lock, so none finishes before it is counted).
    private func spawn(_ node: Node, firstTicket: UInt64 = 0) {
        let count: Int
        switch node.stage {
        case .source(let s): count = max(1, s.threadCount)
        default: count = node.decl.workers
        }
        let box = Counter(count)
        let reorderer = Reorderer<Batch>(capacity: 2 * count, first: firstTicket)
        node.run.add((0..<count).map { worker in
            OSThread.spawn(name: "\(node.decl.id)-\(worker)") { [self] in
                switch node.wiring {
                case .source(let source, let output, let control):
                    source.run(worker: worker, output: output, control: control)
                case .transform(let transform, let input, let output):
                    runTransform(transform, input: input, output: output, node: node, worker: worker, reorderer: reorderer)
                case .sink(let sink, let input):
                    runSink(sink, input: input, node: node, worker: worker, reorderer: reorderer)
                }
                if box.decrement() == 0 { stageFinished(node) }
            }
        })
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

    private func runTransform(_ transform: any Transform, input: BoundedBuffer<Batch>, output: StageOutput, node: Node, worker: Int,
                              reorderer: Reorderer<Batch>) {
        // `while case var` and `consume`: the batch must have exactly one owner, or
        // the stage's first write copies every buffer of it (copy-on-write).
        while case (var batch, let ticket)? = input.pop() {
            node.stats.itemsIn.add(UInt64(batch.itemCount))
            let acknowledgement = batch.acknowledgement, charged = batch.charged
            if node.letters != nil { batch.drops.letterBudget = DeadLetterQueue.perBatch }
            transform.process(&batch, worker: worker)
            batch.acknowledgement = acknowledgement   // whatever the stage did to the batch
            account(&batch, node: node)
            // An emptied batch still carries its acknowledgement to the sinks.
            let keep = batch.itemCount > 0 || acknowledgement != nil
            batch.charged = keep ? batch.memoryBytes : 0
            memoryBudget.adjust(from: charged, to: batch.charged)
            reorderer.complete(ticket, keep ? consume batch : nil) { output.emit($0) }
        }
    }

    private func runSink(_ sink: any Sink, input: BoundedBuffer<Batch>, node: Node, worker: Int, reorderer: Reorderer<Batch>) {
        let ordered = sink.wantsOrderedInput
        let checkpoints = self.checkpoints, id = node.decl.id, memoryBudget = self.memoryBudget
        func consume(_ batch: consuming Batch) {
            var batch = batch
            let acknowledgement = batch.acknowledgement
            if node.letters != nil { batch.drops.letterBudget = DeadLetterQueue.perBatch }
            let charged = batch.charged
            defer { memoryBudget.release(charged) }
            sink.consume(&batch, worker: worker)
            account(&batch, node: node)
            telemetry.recordProcessed(batch.liveItemsByOrigin)
            if let acknowledgement, !sink.retain(acknowledgement) { checkpoints.markDurable([acknowledgement], by: id) }
            // The decoder's next batch reuses the sample buffers.
            if batch.kind == .samples { BatchBuffers.recycle(&batch.samples, share: memoryBudget.readShare) }
        }
        // `consume`: one owner, or recycling the emptied buffers (and any write to them)
        // copies them into fresh memory.
        while case (let batch, let ticket)? = input.pop() {
            node.stats.itemsIn.add(UInt64(batch.itemCount))
            if ordered { reorderer.complete(ticket, consume batch) { consume($0) } } else { consume(consume batch) }
        }
    }

    /// The last thread of a stage returned: close its outputs. A stage a reload
    /// retires only reports it; when the last current stage is done, every stage
    /// is shut down in source-to-sink order.
    private func stageFinished(_ node: Node) {
        node.output?.finish()
        logger.debug("stage stopped", metadata: ["stage": "\(node.decl.id)"])
        let last = graph.state.withLock { s -> [Node]? in
            precondition(s.phase == .running || s.phase == .draining, "a stage finished while \(s.phase)")
            let id = ObjectIdentifier(node.run)
            s.finished.insert(id)
            if s.retiring.contains(id) { return nil }
            s.live -= 1
            return s.live == 0 ? s.nodes : nil
        }
        guard let nodes = last else {
            changed.withLock { changed.broadcast() }
            return
        }
        for n in nodes { lifecycle(n.stage).shutdown() }
        for n in nodes { n.letters?.stop() }
        graph.state.withLock { $0.phase = .stopped }
        changed.withLock { changed.broadcast() }
        logger.info("pipeline stopped")
    }

    /// For every stage: the stages that consume it (once per listing).
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
            family("stage_buffer_dropped_batches_total",
                    "Batches discarded by a full `when_full: drop_newest` buffer (their samples count as dropped, reason buffer_full).",
                    .counter) { $0.input.map { Double($0.droppedCount) } },
            family("stage_items_in_total", "Items (payloads or samples) the stage received.",
                    .counter) { $0.decl.role == .source ? nil : Double($0.stats.itemsIn.value) },
            family("stage_items_out_total", "Items (payloads or live samples) the stage emitted.",
                    .counter) { $0.decl.role == .sink ? nil : Double($0.stats.itemsOut.value) },
        ] + (nodes.contains { $0.letters != nil } ? [
            MetaFamily(name: Telemetry.prefix + "dead_letters_total",
                    help: "Rejected samples and payloads written to the stage's dead_letter list (result=written), or not (result=dropped: "
                        + "over 100 per batch or 10 000 queued, or Redis failed).", type: .counter,
                       samples: nodes.compactMap { n in n.letters }.flatMap { q in
                           [MetaSample(labels: [("result", "written"), ("stage", q.stage)], value: Double(q.written.value)),
                            MetaSample(labels: [("result", "dropped"), ("stage", q.stage)], value: Double(q.dropped.value))]
                       }),
        ] : [])
    }
}

/// The threads of one wiring of a stage.
private final class NodeRun: Sendable {
    private let threads = Mutex<[OSThread]>([])
    func add(_ t: [OSThread]) { threads.withLock { $0 += t } }
    /// The threads, once (to join them).
    func takeThreads() -> [OSThread] { threads.withLock { t in defer { t = [] }; return t } }
}

/// A countdown shared by a stage's threads.
private final class Counter: Sendable {
    private let value: Atomic<Int>
    init(_ n: Int) { value = Atomic(n) }
    func decrement() -> Int { value.subtract(1, ordering: .acquiringAndReleasing).newValue }
}
