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
    /// A working example of the stage's own options (YAML, the stage's mapping
    /// without `type` and the common keys). A test decodes and validates every
    /// registered stage's example.
    static var example: String { get }

    /// Decodes the options; single-key checks go here (`options.fail(key, …)`), so
    /// that they are reported together with every other mistake of the file.
    init(options: OptionReader)
    /// Cross-field checks, after decoding (also when decoding found errors: check
    /// what you can). Throw `ConfigError.invalid(key:reason:)`, or `ConfigErrors`
    /// for several at once.
    func validate() throws
    /// Things only one stage of a pipeline may hold (a TCP port: `"tcp port 9091"`);
    /// `gateway validate` rejects a pipeline in which two stages claim the same one.
    var exclusiveResources: [(key: String, resource: String)] { get }
    /// A source that can deliver again what a crash lost (`redis_list` with `reliable`).
    var redelivers: Bool { get }
    /// A sink whose effect survives a crash only with redelivering sources
    /// (`prometheus` with a `state_file`); `gateway validate` warns otherwise.
    var needsRedelivery: Bool { get }
    /// A source whose shards' state a sink below it must keep (`redis_list` with
    /// `group`); `gateway validate` refuses one without such a sink.
    var needsShardState: Bool { get }
    /// A sink that keeps the shards' state of a source above it (`prometheus` with `state: redis`).
    var keepsShardState: Bool { get }
    /// A source that never reads an element longer than this (`redis_list`'s `max_element_bytes`).
    var elementLimit: (key: String, bytes: Int)? { get }
    /// A stage that takes payloads up to this many bytes (`json_decode`'s `max_payload_bytes`);
    /// `gateway validate` refuses one above a source's `elementLimit`.
    var payloadLimit: (key: String, bytes: Int)? { get }
    /// What the config read besides its options — the contents of a file it parsed
    /// at decode time — so that a reload that changes only the file still rebuilds
    /// the stage. Default: nothing.
    var externalFingerprint: String { get }
    func makeStage(context: StageContext) throws -> Stage
}

extension StageConfig {
    public var externalFingerprint: String { "" }
    public func validate() throws {}
    public var exclusiveResources: [(key: String, resource: String)] { [] }
    public var elementLimit: (key: String, bytes: Int)? { nil }
    public var payloadLimit: (key: String, bytes: Int)? { nil }
    public var redelivers: Bool { false }
    public var needsRedelivery: Bool { false }
    public var needsShardState: Bool { false }
    public var keepsShardState: Bool { false }

    /// Decodes through the concrete type (calling `init` on an existential
    /// metatype crashes the 6.3 compiler).
    public static func decode(_ options: OptionReader) -> any StageConfig { Self(options: options) }

    /// `example`, decoded and validated.
    public static func decodeExample() throws(ConfigErrors) -> Self {
        try PipelineSpec.decodeStage(Self.self, yaml: example)
    }
}

/// The stage types a binary knows. Swift has no link-time registry, so the gateway
/// lists its built-ins and a user adds theirs (`registry.register(MyConfig.self)`).
public struct StageRegistry: Sendable, ExpressibleByArrayLiteral {
    /// By role and type name: a source and a sink may share a name (`redis_list`).
    public private(set) var types: [String: any StageConfig.Type] = [:]
    /// Where the stages' `dead_letter` lists are written (nil: `dead_letter` is refused).
    public var deadLetters: (any DeadLetterDestination.Type)?

    public init(arrayLiteral elements: (any StageConfig.Type)...) {
        for e in elements { register(e) }
    }

    public mutating func register(_ type: any StageConfig.Type) {
        precondition(types[Self.key(type.role, type.type)] == nil, "\(type.role.rawValue) type `\(type.type)` registered twice")
        types[Self.key(type.role, type.type)] = type
    }

    static func key(_ role: StageRole, _ name: String) -> String { "\(role.rawValue)/\(name)" }

    public subscript(name: String, role role: StageRole) -> (any StageConfig.Type)? { types[Self.key(role, name)] }

    /// Registered type names of one role, sorted.
    public func names(role: StageRole) -> [String] {
        var out: [String] = []
        for t in types.values where t.role == role { out.append(t.type) }
        return out.sorted()
    }

    public var sorted: [any StageConfig.Type] {
        types.values.sorted { ($0.role.rawValue, $0.type) < ($1.role.rawValue, $1.type) }
    }
}
