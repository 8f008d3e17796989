import Yams

/// One declared stage after decoding and validation.
public struct StageDecl: Sendable {
    public var id: String
    public var role: StageRole
    public var configType: any StageConfig.Type
    public var config: any StageConfig
    public var inputs: [String]
    public var workers: Int
    public var buffer: BufferConfig
    public var deadLetter: DeadLetterConfig? = nil
    public var line: Int?
    /// The stage's YAML after `${VAR}` expansion, and what its config read besides
    /// (`StageConfig.externalFingerprint`): a reload rebuilds the stage when it differs.
    public var fingerprint: String = ""
    /// `sources.queue`, as errors name the stage.
    public var path: String { "\(role.section).\(id)" }
}

/// A checked pipeline: every stage decoded, every edge known to connect matching
/// item kinds, no cycles, no unused stage. Build it with `PipelineSpec.load`.
public struct PipelineSpec: Sendable {
    /// In topological order: sources first, each stage after all of its inputs.
    public var stages: [StageDecl]
    /// Environment variables the file refers to outside comments (set or not).
    public var environmentVariablesUsed: Set<String> = []
    /// What runs but probably not as meant (`gateway validate` prints them).
    public var warnings: [String] = []
    /// Bytes of batches in flight between the sources and the sinks (`memory_budget`).
    public var memoryBudget = PipelineSpec.defaultMemoryBudget
    /// 32 MiB: `make bench-memory` drains arrays of 1 to 5 000 samples per element
    /// within about the one-sample peak RSS with it, at the same rate (docs/operating.md, "Memory in flight").
    public static let defaultMemoryBudget = 32 << 20

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

    /// Expands `${VAR}` inside the parsed YAML, decodes and checks every stage and
    /// edge, and reports all problems at once.
    public static func load(yaml text: String, environment: [String: String], registry: StageRegistry) throws(ConfigErrors) -> PipelineSpec {
        var expansion = EnvironmentTemplate.Expansion()
        let root = try parse(text, environment: environment, expansion: &expansion)
        guard let top = root?.mapping else {
            throw ConfigErrors(expansion.errors + [ConfigError(line: root?.mark?.line,
                    message: "the file must be a mapping with `sources`, `transforms` and `sinks`")])
        }
        var errors = expansion.errors
        var decls: [StageDecl] = []

        var sectionsSeen: Set<String> = []
        var memoryBudget = defaultMemoryBudget
        for (k, v) in top {
            let key = k.scalar?.string ?? ""
            if key == "memory_budget" {
                if let text = v.scalar?.string, let bytes = OptionReader.parseByteSize(text), bytes >= 1 << 20 {
                    memoryBudget = bytes
                } else {
                    let got = v.scalar?.string ?? "a non-scalar"
                    errors.append(ConfigError(key: key, line: v.mark?.line, message: "expected a size of at least 1MiB like 64MiB, got `\(got)`"))
                }
                continue
            }
            guard let role = [StageRole.source, .transform, .sink].first(where: { $0.section == key }) else {
                let hint = OptionReader.closest(to: key, in: ["sources", "transforms", "sinks"]).map { "did you mean `\($0)`? " } ?? ""
                let why = "unknown top-level key (\(hint)expected sources, transforms, sinks, memory_budget)"
                errors.append(ConfigError(key: key, line: k.mark?.line, message: why))
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
                if let decl = decodeStage(id: id, path: path, role: role, body: body, line: idNode.mark?.line, registry: registry,
                                          provenance: expansion.provenance, errors: &errors) {
                    decls.append(decl)
                }
            }
        }
        if !sectionsSeen.contains("sources") { errors.append(ConfigError(key: "sources", message: "at least one source is required")) }
        if !sectionsSeen.contains("sinks") { errors.append(ConfigError(key: "sinks", message: "at least one sink is required")) }

        checkResources(decls, errors: &errors)
        let ordered = checkGraph(decls, registry: registry, errors: &errors)
        checkShardState(ordered, errors: &errors)
        checkElementLimits(ordered, errors: &errors)
        // A value made from an unset variable is already reported as such.
        errors.removeAll { !$0.variables.isEmpty && $0.variables.contains(where: expansion.unset.contains) }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        return PipelineSpec(stages: ordered, environmentVariablesUsed: expansion.used, warnings: redeliveryWarnings(ordered),
                            memoryBudget: memoryBudget)
    }

    /// Parses `text` and expands its environment references.
    private static func parse(_ text: String, environment: [String: String],
                              expansion: inout EnvironmentTemplate.Expansion) throws(ConfigErrors) -> Node? {
        let template = EnvironmentTemplate(text)
        let root: Node?
        do {
            root = try Yams.compose(yaml: template.text)
        } catch let error as YamlError {
            throw ConfigErrors([describe(error, text: text)])
        } catch {
            throw ConfigErrors([ConfigError(message: "cannot parse YAML: \(error)")])
        }
        return root.map { template.expand($0, environment: environment, into: &expansion) }
    }

    /// A YAML syntax error as a line and a message (a duplicate key at its second
    /// occurrence); for other YAML files the gateway reads too.
    public static func describe(_ error: YamlError, text: String) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigError(line: mark.line, message: "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams points at the first occurrence; the mistake is the second one.
            let key = duplicates.sorted().first ?? ""
            let first = context.mark.line
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let second = lines.indices.dropFirst(first).first { i in
                let t = lines[i].drop { $0 == " " || $0 == "-" || $0 == "{" || $0 == "," }
                return t.hasPrefix("\(key):") || t.hasPrefix("\"\(key)\":") || lines[i].contains(" \(key):") && lines[i].contains("{")
            }.map { $0 + 1 }
            return ConfigError(key: key, line: second ?? first, message: "duplicate key\(second != nil ? " (first at line \(first))" : "")")
        default:
            return ConfigError(message: "invalid YAML: \(error)")
        }
    }

    private static func decodeStage(id: String, path: String, role: StageRole, body: Node, line: Int?, registry: StageRegistry,
                                    provenance: [EnvironmentTemplate.Position: [String]], errors: inout [ConfigError]) -> StageDecl? {
        guard let mapping = body.mapping else {
            errors.append(ConfigError(path: path, line: line, message: "expected a mapping with at least `type`"))
            return nil
        }
        let reader = OptionReader(mapping: mapping, path: path, line: line, ignoring: ["type"], provenance: provenance)
        guard let typeNode = mapping["type"], let typeName = typeNode.scalar?.string else {
            errors.append(ConfigError(path: path, key: "type", line: line, message: "missing required key `type`"))
            return nil
        }
        guard let configType = registry[typeName, role: role] else {
            if let other = StageRole.allRoles.lazy.compactMap({ registry[typeName, role: $0] }).first {
                errors.append(ConfigError(path: path, key: "type", line: typeNode.mark?.line,
                                          message: "`\(typeName)` is a \(other.role.rawValue), not a \(role.rawValue); declare it under "
                                              + "`\(other.role.section)`"))
                return nil
            }
            let known = registry.names(role: role)
            let hint = OptionReader.closest(to: typeName, in: known).map { "did you mean `\($0)`? " } ?? ""
            errors.append(ConfigError(path: path, key: "type", line: typeNode.mark?.line,
                                      message: "unknown \(role.rawValue) type `\(typeName)` (\(hint)known: \(known.joined(separator: ", ")))"))
            return nil
        }
        let common = role == .source ? CommonOptions() : CommonOptions.read(reader, deadLetters: registry.deadLetters)
        let config = decodeConfig(configType, reader: reader, errors: &errors)
        let yaml = (try? Yams.serialize(node: body)) ?? ""
        return StageDecl(id: id, role: role, configType: configType, config: config, inputs: common.inputs,
                         workers: common.workers, buffer: common.buffer, deadLetter: common.deadLetter, line: line,
                         fingerprint: yaml + "\u{0}" + config.externalFingerprint)
    }

    /// Decodes and validates one stage's options outside a pipeline file — for
    /// programs that build stages themselves (benchmarks, the fuzz harness, an
    /// embedding application) and for `StageConfig.example`. `yaml` is the stage's
    /// mapping; `type` and the common keys (`inputs`, `workers`, `buffer`) are ignored.
    public static func decodeStage<C: StageConfig>(_ type: C.Type, yaml text: String,
                                                   environment: [String: String] = [:]) throws(ConfigErrors) -> C {
        var expansion = EnvironmentTemplate.Expansion()
        let node = try parse(text, environment: environment, expansion: &expansion)
        guard expansion.errors.isEmpty else { throw ConfigErrors(expansion.errors) }
        let mapping: Node.Mapping
        if let m = node?.mapping { mapping = m } else if node == nil || node?.scalar?.string == "" { mapping = [:] } else {
            throw ConfigErrors([ConfigError(path: C.type, message: "expected a mapping")])
        }
        var errors: [ConfigError] = []
        let reader = OptionReader(mapping: mapping, path: C.type, line: node?.mark?.line,
                                  ignoring: ["type", "inputs", "workers", "buffer"], provenance: expansion.provenance)
        let config = decodeConfig(C.self, reader: reader, errors: &errors)
        guard errors.isEmpty, let typed = config as? C else { throw ConfigErrors(errors) }
        return typed
    }

    /// Generic so the config is a concrete type here (existential `init` and
    /// `validate` crash the 6.3 compiler's SIL generation). `validate()` runs even
    /// when decoding found errors, so a file's mistakes come out in one round; its
    /// errors on keys that already have one are left out.
    private static func decodeConfig<C: StageConfig>(_ type: C.Type, reader: OptionReader, errors: inout [ConfigError]) -> any StageConfig {
        let config = C(options: reader)
        reader.finishReading()
        let decodeErrors = reader.errors
        let failedKeys = Set(decodeErrors.compactMap(\.key))
        do { try config.validate() } catch let many as ConfigErrors {
            for e in many.errors where !failedKeys.contains(e.key ?? "") { reader.record(e) }
        } catch {
            let e = error as? ConfigError ?? ConfigError(message: "\(error)")
            if !failedKeys.contains(e.key ?? "") { reader.record(e) }
        }
        errors += reader.errors
        return config
    }

    /// A sink that persists, fed by a source that cannot redeliver: what that
    /// source popped and a crash lost before the next snapshot is gone.
    private static func redeliveryWarnings(_ decls: [StageDecl]) -> [String] {
        var above: [String: Set<String>] = [:]
        for d in decls {   // topological order: inputs first
            var set: Set<String> = d.role == .source ? [d.id] : []
            for i in d.inputs { set.formUnion(above[i] ?? []) }
            above[d.id] = set
        }
        var out: [String] = []
        for d in decls where d.config.needsRedelivery {
            for s in (above[d.id] ?? []).sorted() {
                guard let source = decls.first(where: { $0.id == s }), !source.config.redelivers else { continue }
                out.append("\(d.path) keeps its aggregate across restarts, but \(source.path) cannot deliver again what a crash loses (set "
                    + "`reliable: true` on it for exactly-once)")
            }
        }
        return out
    }

    /// A source whose shards' state lives in a sink needs such a sink below it.
    private static func checkShardState(_ decls: [StageDecl], errors: inout [ConfigError]) {
        // A shard-state sink keeps only the group's shards: a source above it that has
        // none (an otlp source, a plain list) would have its samples saved into whatever
        // shard their name falls in and its batches never reported durable.
        for sink in decls where sink.role == .sink && sink.config.keepsShardState {
            var above: Set<String> = [], frontier = sink.inputs
            while let id = frontier.popLast() {
                guard above.insert(id).inserted, let d = decls.first(where: { $0.id == id }) else { continue }
                frontier += d.inputs
            }
            for source in decls where source.role == .source && above.contains(source.id) && !source.config.needsShardState {
                let why = "keeps the state of a group's shards, but \(source.path) above it has no shards: give its samples a sink of their own"
                errors.append(ConfigError(path: sink.path, key: "state", line: sink.line, message: why))
            }
        }
        for source in decls where source.config.needsShardState {
            var below: Set<String> = [source.id], keepers: [StageDecl] = []
            for d in decls where d.inputs.contains(where: below.contains) {   // topological order
                below.insert(d.id)
                if d.role == .sink && d.config.keepsShardState { keepers.append(d) }
            }
            if keepers.count > 1 {
                let why = "is the second sink with `state: redis` below \(source.path) (after \(keepers[0].path)): "
                    + "both would write the shards' state keys"
                errors.append(ConfigError(path: keepers[1].path, key: "state", line: keepers[1].line, message: why))
            }
            if keepers.isEmpty {
                let why = "needs a prometheus sink with `state: redis` below it (the shards' state lives in Redis, written by that sink)"
                errors.append(ConfigError(path: source.path, key: "group", line: source.line, message: why))
            }
        }
    }

    /// A stage below a source that cuts elements cannot take larger ones: they never arrive whole.
    private static func checkElementLimits(_ decls: [StageDecl], errors: inout [ConfigError]) {
        for source in decls {
            guard let cut = source.config.elementLimit else { continue }
            var below: Set<String> = [source.id]
            for d in decls where d.inputs.contains(where: below.contains) {   // topological order
                below.insert(d.id)
                guard let taken = d.config.payloadLimit, taken.bytes > cut.bytes else { continue }
                let why = "\(taken.bytes) bytes is more than \(cut.key) of \(source.path) (\(cut.bytes)): larger elements are cut there, never read; "
                    + "raise \(cut.key) too"
                errors.append(ConfigError(path: d.path, key: taken.key, line: d.line, message: why))
            }
        }
    }

    /// Two stages claiming one exclusive resource (a TCP port) cannot both run.
    private static func checkResources(_ decls: [StageDecl], errors: inout [ConfigError]) {
        var owner: [String: StageDecl] = [:]
        for d in decls {
            for (key, resource) in d.config.exclusiveResources {
                if let first = owner[resource] {
                    errors.append(ConfigError(path: d.path, key: key, line: d.line, message: "\(resource) is also used by \(first.path)"))
                } else {
                    owner[resource] = d
                }
            }
        }
    }

    /// Checks edges (known ids, kinds, no cycles, nothing unused); returns the stages
    /// in topological order.
    private static func checkGraph(_ decls: [StageDecl], registry: StageRegistry, errors: inout [ConfigError]) -> [StageDecl] {
        let byID = Dictionary(decls.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var consumers: [String: Int] = [:]
        for d in decls {
            for input in d.inputs {
                guard let upstream = byID[input] else {
                    let hint = OptionReader.closest(to: input, in: Array(byID.keys)).map { " (did you mean `\($0)`?)" } ?? ""
                    errors.append(ConfigError(path: d.path, key: "inputs", line: d.line, message: "unknown input `\(input)`\(hint)"))
                    continue
                }
                consumers[input, default: 0] += 1
                if upstream.role == .sink {
                    errors.append(ConfigError(path: d.path, key: "inputs", line: d.line, message: "`\(input)` is a sink and emits nothing"))
                } else if let out = upstream.configType.outputKind, let want = d.configType.inputKind, out != want {
                    let bridges = registry.sorted.filter { $0.role == .transform && $0.inputKind == out && $0.outputKind == want }
                        .map { "`\($0.type)`" }
                    errors.append(ConfigError(path: d.path, key: "inputs", line: d.line,
                        message: "`\(input)` emits \(out.rawValue) but `\(d.configType.type)` takes \(want.rawValue)" +
                                 (bridges.isEmpty ? "" : " (put a \(bridges.joined(separator: " or ")) transform between them)")))
                }
            }
        }
        for d in decls where d.role != .sink && consumers[d.id] == nil {
            errors.append(ConfigError(path: d.path, line: d.line, message: "\(d.role.rawValue) is not used as an input by any stage"))
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
        // What Kahn's algorithm left is on a cycle or downstream of one; peel off
        // the downstream stages (nothing left consumes them) to name only the cycle.
        var left = decls.filter { d in !order.contains(where: { $0.id == d.id }) }
        while let i = left.firstIndex(where: { d in !left.contains { $0.inputs.contains(d.id) } }) { left.remove(at: i) }
        for d in left {
            errors.append(ConfigError(path: d.path, key: "inputs", line: d.line, message: "is part of a cycle"))
        }
        return order
    }
}
