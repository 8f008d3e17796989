import Yams

/// The input buffer of a transform or sink.
public struct BufferConfig: Sendable, Equatable {
    /// Default batches a stage's input buffer holds (a batch is up to a few thousand samples).
    public static let defaultCapacity = 32
    public var capacity: Int = defaultCapacity
    public var whenFull: WhenFull = .block
    public init(capacity: Int = defaultCapacity, whenFull: WhenFull = .block) {
        self.capacity = capacity; self.whenFull = whenFull
    }
}

/// One declared stage after decoding and validation.
public struct StageDecl: Sendable {
    public var id: String
    public var role: StageRole
    public var configType: any StageConfig.Type
    public var config: any StageConfig
    public var inputs: [String]
    public var workers: Int
    public var buffer: BufferConfig
    public var line: Int?
}

/// A checked pipeline: every stage decoded, every edge known to connect matching
/// item kinds, no cycles, no unused stage. Build it with `PipelineSpec.load`.
public struct PipelineSpec: Sendable {
    /// In topological order: sources first, each stage after all of its inputs.
    public var stages: [StageDecl]

    public func stage(_ id: String) -> StageDecl? { stages.first { $0.id == id } }

    /// One line: `3 sources, 2 transforms, 1 sink: queue -> decode -> prometheus`.
    public var summary: String {
        let counts = [StageRole.source, .transform, .sink].map { role in
            let n = stages.filter { $0.role == role }.count
            return "\(n) \(role.rawValue)\(n == 1 ? "" : "s")"
        }
        let edges = stages.flatMap { s in s.inputs.map { "\($0) -> \(s.id)" } }
        return counts.joined(separator: ", ") + "; " + edges.joined(separator: ", ")
    }

    /// Options every transform and sink has, handled by the runtime.
    static let commonKeys: Set<String> = ["type", "inputs", "workers", "buffer"]

    /// Expands `${VAR}`, parses YAML, decodes and checks every stage and edge,
    /// and reports all problems at once.
    public static func load(yaml text: String, environment: [String: String], registry: StageRegistry) throws(ConfigErrors) -> PipelineSpec {
        let expanded: String
        switch expandEnvironment(text, environment: environment) {
        case .success(let s): expanded = s
        case .failure(let e): throw e
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: expanded)
        } catch let error as YamlError {
            throw ConfigErrors([yamlError(error)])
        } catch {
            throw ConfigErrors([ConfigError(message: "cannot parse YAML: \(error)")])
        }
        guard let top = root?.mapping else {
            throw ConfigErrors([ConfigError(line: root?.mark?.line, message: "the file must be a mapping with `sources`, `transforms` and `sinks`")])
        }
        var errors: [ConfigError] = []
        var decls: [StageDecl] = []

        var sectionsSeen: Set<String> = []
        for (k, v) in top {
            let key = k.scalar?.string ?? ""
            guard let role = [StageRole.source, .transform, .sink].first(where: { $0.section == key }) else {
                errors.append(ConfigError(key: key, line: k.mark?.line, message: "unknown top-level key (expected sources, transforms, sinks)"))
                continue
            }
            guard sectionsSeen.insert(key).inserted else {
                errors.append(ConfigError(key: key, line: k.mark?.line, message: "duplicate key")); continue
            }
            if v.scalar?.string == "" || v.scalar?.string == "~" || v.scalar?.string == "null" { continue }
            guard let stages = v.mapping else {
                errors.append(ConfigError(key: key, line: v.mark?.line, message: "expected a mapping of stage id to stage"))
                continue
            }
            var idsSeen: Set<String> = []
            for (idNode, body) in stages {
                let id = idNode.scalar?.string ?? ""
                let path = "\(key).\(id)"
                if !idsSeen.insert(id).inserted || decls.contains(where: { $0.id == id }) {
                    errors.append(ConfigError(path: path, line: idNode.mark?.line, message: "stage id used twice"))
                    continue
                }
                if let decl = decodeStage(id: id, path: path, role: role, body: body, line: idNode.mark?.line, registry: registry, errors: &errors) {
                    decls.append(decl)
                }
            }
        }
        if !sectionsSeen.contains("sources") { errors.append(ConfigError(key: "sources", message: "at least one source is required")) }
        if !sectionsSeen.contains("sinks") { errors.append(ConfigError(key: "sinks", message: "at least one sink is required")) }

        let ordered = checkGraph(decls, errors: &errors)
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        return PipelineSpec(stages: ordered)
    }

    private static func yamlError(_ error: YamlError) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigError(line: mark.line, message: "invalid YAML: \(problem)")
        default:
            return ConfigError(message: "invalid YAML: \(error)")
        }
    }

    private static func decodeStage(id: String, path: String, role: StageRole, body: Node, line: Int?,
                                    registry: StageRegistry, errors: inout [ConfigError]) -> StageDecl? {
        guard let mapping = body.mapping else {
            errors.append(ConfigError(path: path, line: line, message: "expected a mapping with at least `type`"))
            return nil
        }
        let isSource = role == .source
        // Sources own `workers` (their meaning differs); the runtime owns it elsewhere.
        let reader = OptionReader(mapping: mapping, path: path, line: line,
                                  ignoring: isSource ? ["type"] : commonKeys)
        guard let typeNode = mapping["type"], let typeName = typeNode.scalar?.string else {
            errors.append(ConfigError(path: path, key: "type", line: line, message: "missing required key `type`"))
            return nil
        }
        guard let configType = registry[typeName] else {
            let known = registry.names(role: role).joined(separator: ", ")
            errors.append(ConfigError(path: path, key: "type", line: typeNode.mark?.line,
                                      message: "unknown \(role.rawValue) type `\(typeName)` (known: \(known))"))
            return nil
        }
        guard configType.role == role else {
            errors.append(ConfigError(path: path, key: "type", line: typeNode.mark?.line,
                                      message: "`\(typeName)` is a \(configType.role.rawValue), not a \(role.rawValue); declare it under `\(configType.role.section)`"))
            return nil
        }
        var inputs: [String] = []
        var workers = 1
        var buffer = BufferConfig()
        if !isSource {
            let common = OptionReader(mapping: mapping, path: path, line: line)
            inputs = common.stringList("inputs", doc: "Stage ids this stage reads from.")
            if mapping["inputs"] != nil, inputs.isEmpty {
                common.fail("inputs", "must name at least one stage")
            }
            workers = common.int("workers", default: 1, range: 1...256, doc: "Threads this stage runs on.")
            let b = common.section("buffer", doc: "The input buffer.")
            buffer.capacity = b.int("capacity", default: BufferConfig.defaultCapacity, range: 1...1_000_000, doc: "Batches the input buffer holds.")
            buffer.whenFull = b.choice("when_full", default: WhenFull.block, doc: "What a full buffer does with a new batch.")
            b.finishReading()
            errors += common.errors + b.errors
        }
        let config = decodeConfig(configType, reader: reader, errors: &errors)
        return StageDecl(id: id, role: role, configType: configType, config: config, inputs: inputs,
                         workers: workers, buffer: buffer, line: line)
    }

    /// Decodes and validates one stage's options outside a pipeline file — for
    /// programs that build stages themselves (benchmarks, the fuzz harness, an
    /// embedding application). `yaml` is the stage's mapping; the common keys
    /// (`type`, `inputs`, `workers`, `buffer`) are ignored.
    public static func decodeStage<C: StageConfig>(_ type: C.Type, yaml text: String,
                                                   environment: [String: String] = [:]) throws(ConfigErrors) -> C {
        let expanded: String
        switch expandEnvironment(text, environment: environment) {
        case .success(let s): expanded = s
        case .failure(let e): throw e
        }
        let node: Node?
        do { node = try Yams.compose(yaml: expanded) } catch let error as YamlError {
            throw ConfigErrors([yamlError(error)])
        } catch {
            throw ConfigErrors([ConfigError(message: "cannot parse YAML: \(error)")])
        }
        guard let mapping = node?.mapping else { throw ConfigErrors([ConfigError(path: C.type, message: "expected a mapping")]) }
        var errors: [ConfigError] = []
        let config = decodeConfig(C.self, reader: OptionReader(mapping: mapping, path: C.type, line: node?.mark?.line, ignoring: commonKeys),
                                  errors: &errors)
        guard errors.isEmpty, let typed = config as? C else { throw ConfigErrors(errors) }
        return typed
    }

    /// Generic so the config is a concrete type here (existential `init` and
    /// `validate` crash the 6.3 compiler's SIL generation).
    private static func decodeConfig<C: StageConfig>(_ type: C.Type, reader: OptionReader, errors: inout [ConfigError]) -> any StageConfig {
        let config = C(options: reader)
        reader.finishReading()
        errors += reader.errors
        guard reader.errors.isEmpty else { return config }
        do { try config.validate() } catch {
            reader.record(error as? ConfigError ?? ConfigError(message: "\(error)"))
            errors += reader.errors
        }
        return config
    }

    /// Checks edges (known ids, kinds, no cycles, nothing unused); returns the stages
    /// in topological order.
    private static func checkGraph(_ decls: [StageDecl], errors: inout [ConfigError]) -> [StageDecl] {
        let byID = Dictionary(decls.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var consumers: [String: Int] = [:]
        for d in decls {
            let path = "\(d.role.section).\(d.id)"
            for input in d.inputs {
                guard let upstream = byID[input] else {
                    errors.append(ConfigError(path: path, key: "inputs", line: d.line, message: "unknown input `\(input)`"))
                    continue
                }
                consumers[input, default: 0] += 1
                if upstream.role == .sink {
                    errors.append(ConfigError(path: path, key: "inputs", line: d.line, message: "`\(input)` is a sink and emits nothing"))
                } else if let out = upstream.configType.outputKind, let want = d.configType.inputKind, out != want {
                    errors.append(ConfigError(path: path, key: "inputs", line: d.line,
                        message: "`\(input)` emits \(out.rawValue) but `\(d.configType.type)` takes \(want.rawValue)" +
                                 (want == .samples && out == .payloads ? " (put a json_decode transform between them)" : "")))
                }
            }
            if d.role != .source, d.inputs.isEmpty, d.inputs == [] {
                errors.append(ConfigError(path: path, key: "inputs", line: d.line, message: "missing required key `inputs`"))
            }
        }
        for d in decls where d.role != .sink && consumers[d.id] == nil {
            errors.append(ConfigError(path: "\(d.role.section).\(d.id)", line: d.line, message: "\(d.role.rawValue) is not used as an input by any stage"))
        }
        // Kahn's algorithm; what remains is on a cycle.
        var indegree = Dictionary(decls.map { ($0.id, $0.inputs.filter { byID[$0] != nil }.count) }, uniquingKeysWith: { a, _ in a })
        var ready = decls.filter { indegree[$0.id] == 0 }.map(\.id)
        var order: [StageDecl] = []
        while let id = ready.first {
            ready.removeFirst()
            order.append(byID[id]!)
            for d in decls where d.inputs.contains(id) {
                indegree[d.id, default: 0] -= d.inputs.filter { $0 == id }.count
                if indegree[d.id] == 0 { ready.append(d.id) }
            }
        }
        for d in decls where !order.contains(where: { $0.id == d.id }) {
            errors.append(ConfigError(path: "\(d.role.section).\(d.id)", key: "inputs", line: d.line, message: "is part of a cycle"))
        }
        return order
    }
}
