import Logging

/// A stage's role in the graph.
public enum StageRole: String, Sendable {
    case source, transform, sink

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
/// order at the output. Drop samples with `batch.drop(sample:reason:)`.
public protocol Transform: StageLifecycle {
    func process(_ batch: inout Batch, worker: Int)
}

/// Consumes batches at the end of the graph.
public protocol Sink: StageLifecycle {
    /// When true, `consume` is called one batch at a time in input order (which is
    /// source order, see `PipelineRuntime`), whatever `workers` says.
    var wantsOrderedInput: Bool { get }
    /// May drop samples with `batch.drop(sample:reason:)`; the runtime counts them.
    func consume(_ batch: inout Batch, worker: Int)
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
    /// Threads the runtime runs this stage on (transforms and sinks).
    public var workers: Int

    public init(id: String, logger: Logger, telemetry: Telemetry, health: HealthBoard, workers: Int) {
        self.id = id; self.logger = logger; self.telemetry = telemetry; self.health = health; self.workers = workers
    }
}

/// A stage type: its options (decoded by `init(options:)`, which also documents
/// them), its checks, and its factory. Register the type in a `StageRegistry`.
public protocol StageConfig: Sendable {
    /// The YAML `type:` value, declared once.
    static var type: String { get }
    static var role: StageRole { get }
    /// One line for `gateway stages`.
    static var summary: String { get }
    /// What the stage consumes; nil for sources.
    static var inputKind: ItemKind? { get }
    /// What the stage emits; nil for sinks.
    static var outputKind: ItemKind? { get }

    init(options: OptionReader)
    /// Cross-field checks, after decoding. Name the key in the error.
    func validate() throws
    func makeStage(context: StageContext) throws -> Stage
}

extension StageConfig {
    public func validate() throws {}

    /// Decodes through the concrete type (calling `init` on an existential
    /// metatype crashes the 6.3 compiler).
    public static func decode(_ options: OptionReader) -> any StageConfig { Self(options: options) }
}

/// The stage types a binary knows. Swift has no link-time registry, so the gateway
/// lists its built-ins and a user adds theirs (`registry.register(MyConfig.self)`).
public struct StageRegistry: Sendable, ExpressibleByArrayLiteral {
    public private(set) var types: [String: any StageConfig.Type] = [:]

    public init(arrayLiteral elements: (any StageConfig.Type)...) {
        for e in elements { register(e) }
    }

    public mutating func register(_ type: any StageConfig.Type) {
        precondition(types[type.type] == nil, "stage type `\(type.type)` registered twice")
        types[type.type] = type
    }

    public subscript(name: String) -> (any StageConfig.Type)? { types[name] }

    /// Registered type names of one role, sorted.
    public func names(role: StageRole) -> [String] {
        var out: [String] = []
        for (name, t) in types where t.role == role { out.append(name) }
        return out.sorted()
    }

    public var sorted: [any StageConfig.Type] {
        types.values.sorted { ($0.role.rawValue, $0.type) < ($1.role.rawValue, $1.type) }
    }
}
