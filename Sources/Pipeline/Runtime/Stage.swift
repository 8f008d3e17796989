import Logging

/// A stage's role in the graph.
public enum StageRole: String, Sendable {
    case source, transform, sink

    static let allRoles: [StageRole] = [.source, .transform, .sink]

    /// The top-level YAML map that declares stages of this role.
    public var section: String { rawValue + "s" }
}

/// Start and stop hooks every stage may implement.
public protocol StageLifecycle: AnyObject, Sendable {
    /// Called once before any batch flows (sinks first, sources last). Throwing
    /// aborts start-up with the error.
    func start() throws
    /// Called once after the stage's last batch (sources first, sinks last).
    func shutdown()
}

extension StageLifecycle {
    public func start() throws {}
    public func shutdown() {}
}

/// A stage whose state outlives a reload that rebuilds it (its options changed).
///
/// There is no default: a stage holds state across reloads only by saying how. A
/// sink whose config `needsRedelivery` holds what its sources' durable positions
/// depend on, so the runtime refuses to rebuild one that is not a `StatefulStage`
/// (the reload rolls back, naming the stage). Stream positions themselves are the
/// runtime's: a rebuilt source learns where its predecessor stopped when it
/// registers its stream (`StreamStart.continuing`).
public protocol StatefulStage: StageLifecycle {
    /// A reload replaced `previous` (same id and role, stopped and shut down) by
    /// this stage (built, not yet started): continue what it held, e.g. a sink's
    /// aggregate. Throwing refuses the reload; the previous stages run again.
    func takeOver(from previous: any StageLifecycle) throws
}

/// Produces batches. The runtime calls `run` on `threadCount` threads of its own and
/// expects each call to return soon after `control.isStopping` turns true — having
/// emitted everything it has already taken from the outside world.
public protocol Source: StageLifecycle {
    var threadCount: Int { get }
    func run(worker: Int, output: StageOutput, control: SourceControl)
}

extension Source {
    public var threadCount: Int { 1 }
}

/// Consumes a batch and hands it on, changed in place. Called concurrently on the
/// stage's `workers` threads, each with a batch it owns; the runtime restores input
/// order at the output. Drop samples with `batch.drop(sample:reason:)`: the runtime
/// counts and logs drops (rate-limited), the stage does neither.
///
/// `worker` is in `0..<context.workers`, and no two calls run with the same
/// `worker` at once: per-worker state needs no lock (`WorkerSlots` checks it).
public protocol Transform: StageLifecycle {
    func process(_ batch: inout Batch, worker: Int)
}

/// Consumes batches at the end of the graph. The runtime counts what a sink did
/// not drop as processed (`prom_stream_gateway_processed_metrics_total`), and
/// counts and logs its drops. `worker` follows the same contract as a transform's.
public protocol Sink: StageLifecycle {
    /// When true, `consume` is called one batch at a time in input order (which is
    /// source order, see `PipelineRuntime`), whatever `workers` says.
    var wantsOrderedInput: Bool { get }
    /// May drop samples with `batch.drop(sample:reason:)`; the runtime counts them.
    func consume(_ batch: inout Batch, worker: Int)
    /// The batch just consumed covered `acknowledgement` of a redelivering
    /// source's stream. Return false (the default) when its effect is as durable as
    /// it will get once applied: the runtime reports it durable at once. Return true
    /// to keep it, and report it with `context.checkpoints.markDurable` once the
    /// effect survives a crash (the `prometheus` sink: after the snapshot that
    /// contains it is on disk). Called on the consuming thread, in consume order.
    func retain(_ acknowledgement: Acknowledgement) -> Bool
}

extension Sink {
    public func retain(_ acknowledgement: Acknowledgement) -> Bool { false }
}

/// A built stage, as a config's factory returns it.
public enum Stage: Sendable {
    case source(any Source)
    case transform(any Transform)
    case sink(any Sink)
}

/// What the runtime hands a stage when it is built.
public struct StageContext: Sendable {
    /// The stage id (the YAML map key).
    public var id: String
    public var logger: Logger
    public var telemetry: Telemetry
    public var health: HealthBoard
    /// Durable positions of redelivering sources' streams.
    public var checkpoints: Checkpoints
    /// Threads the runtime runs this stage on (transforms and sinks).
    public var workers: Int
    /// This stage instance, for what it registers in `telemetry` (a reload that
    /// replaces the stage removes its collectors).
    public var owner: UInt64
    /// The pipeline's bytes in flight: a source sizes its reads from it (`readShare`).
    package var memoryBudget: MemoryBudget
    /// The pipeline's running stages that offer something to the others (`Peers`).
    public var peers: Peers

    package init(id: String, logger: Logger, telemetry: Telemetry, health: HealthBoard, workers: Int,
                checkpoints: Checkpoints = Checkpoints(), owner: UInt64 = Telemetry.newOwner(),
                memoryBudget: MemoryBudget = MemoryBudget(limit: PipelineSpec.defaultMemoryBudget), peers: Peers = Peers()) {
        self.id = id; self.logger = logger; self.telemetry = telemetry; self.health = health; self.workers = workers
        self.checkpoints = checkpoints; self.owner = owner; self.memoryBudget = memoryBudget; self.peers = peers
    }

    /// Reports more families at scrape time, for as long as this stage instance runs.
    public func addCollector(_ collector: @escaping @Sendable () -> [MetaFamily]) {
        telemetry.addCollector(owner: owner, collector)
    }
}
