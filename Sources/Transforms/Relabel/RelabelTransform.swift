import Patterns
import Pipeline

/// Rewrites, keeps or drops samples by their labels, with the semantics of
/// Prometheus's `metric_relabel_configs` (`model/relabel`): `__name__` is the
/// metric name (renaming a metric is `target_label: __name__`), `__type__` the
/// metric type (readable, not writable). A missing label reads as empty; writing an
/// empty value deletes the label; a `replace` whose expanded target is not a valid
/// label name leaves the sample unchanged. Dropped samples count as
/// `reason="relabel_drop"`.
///
/// Regexes are PCRE2 with JIT (Go's RE2 syntax is mostly a subset). Each worker
/// caches every rule's outcome per distinct input string (up to
/// `cache_size` entries per rule, then the cache starts over), so a rule costs a
/// hash lookup per sample once the label values repeat — they do for metrics.
///
/// Does not sort labels: put `sort_labels` after it.
public struct RelabelConfig: StageConfig {
    public static let type = "relabel"
    public static let role = StageRole.transform
    public static let summary = "Rewrites, keeps or drops samples by labels (Prometheus metric_relabel_configs semantics)."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = .samples
    public static let example = """
        rules:
          - { source_labels: [__name__], regex: "(.*)_ms", target_label: __name__, replacement: "${1}_milliseconds" }
          - { action: labeldrop, regex: "pod_uid" }
        """

    /// Applied in order; must not be empty.
    public var rules: [RelabelRule]
    /// Cached outcomes per rule and worker.
    public var cacheSize: Int
    let declaredRules: Int

    public init(options o: OptionReader) {
        cacheSize = o.int("cache_size", default: 8192, range: 0...10_000_000, doc: "Outcomes cached per rule and worker (0: no cache).")
        let readers = o.sections("rules", doc:
            "Relabel rules: action, source_labels, separator, regex, target_label, replacement, modulus (as in Prometheus).")
        declaredRules = readers.count
        if o.mode == .describe {
            let r = OptionReader(describing: "rules[]")
            _ = RelabelRule(options: r)
            o.merge(r)
        }
        rules = readers.compactMap { r in
            let rule = RelabelRule(options: r)
            o.merge(r)
            return rule
        }
    }

    public func validate() throws {
        guard declaredRules > 0 else { throw ConfigError.invalid(key: "rules", reason: "must not be empty") }
    }

    public func makeStage(context: StageContext) throws -> Stage {
        .transform(RelabelTransform(rules: rules, cacheSize: cacheSize, workers: context.workers))
    }
}

public final class RelabelTransform: Transform {
    let rules: [RelabelRule]
    let cacheSize: Int
    /// One per worker: the runtime never runs two batches on one worker at once.
    private let slots: WorkerSlots<WorkerState>

    public init(rules: [RelabelRule], cacheSize: Int = 8192, workers: Int = 1) {
        self.rules = rules
        self.cacheSize = cacheSize
        slots = WorkerSlots(count: max(1, workers)) { _ in WorkerState(rules: rules) }
    }

    /// What a worker reuses from sample to sample, lent by `slots` for a batch
    /// (through a pointer: the hot loop pays no dynamic exclusivity checks).
    struct WorkerState {
        var name = ByteSpan.empty
        var labels: [LabelRef] = []
        var changed = false
        var value: [UInt8] = []
        var scratch: [UInt8] = []
        var matchData: [PCRE2MatchData] = []
        /// Per rule: input string (joined value, or label name) → index in `outcomes`.
        var cacheKeys: [ByteKeyTable] = []
        var outcomes: [[Outcome]] = []

        /// `gaveUp`: the regex hit its match limit (`PCRE2Regex.GaveUp`); the sample is dropped.
        enum Outcome: Equatable { case none, matched, set([UInt8], [UInt8]), rename([UInt8]), gaveUp }
        /// Set when a rule's regex gave up on the current sample.
        var gaveUp = false

        init() {}

        init(rules: [RelabelRule]) {
            matchData = rules.map { $0.regex.makeMatchData() }
            cacheKeys = Array(repeating: ByteKeyTable(), count: rules.count)
            outcomes = Array(repeating: [], count: rules.count)
        }
    }

    public func process(_ batch: inout Batch, worker: Int) {
        slots.with(worker) { ws in process(&batch, &ws) }
    }

    private func process(_ batch: inout Batch, _ ws: inout WorkerState) {
        for i in batch.samples.records.indices where !batch.samples.records[i].isDropped {
            let r = batch.samples.records[i]
            ws.name = r.name
            ws.labels.removeAll(keepingCapacity: true)
            ws.labels.append(contentsOf: batch.samples.labels[r.labelRange])
            ws.changed = false
            ws.gaveUp = false
            var keep = true
            for index in rules.indices where !apply(index, &ws, &batch.samples, type: r.type) || ws.gaveUp {
                keep = false
                break
            }
            if !keep {
                batch.drop(sample: i, reason: ws.gaveUp ? .regexLimit : .relabelDrop)
            } else if ws.changed {
                batch.samples.records[i].name = ws.name
                batch.samples.records[i].labelStart = UInt32(batch.samples.labels.count)
                batch.samples.records[i].labelCount = UInt32(ws.labels.count)
                batch.samples.labels.append(contentsOf: ws.labels)
            }
        }
    }

    // MARK: One rule

    /// Applies rule `index`; false drops the sample.
    private func apply(_ index: Int, _ ws: inout WorkerState, _ s: inout SampleBatch, type: MetricType) -> Bool {
        let rule = rules[index]
        switch rule.action {
        case .labelmap, .labeldrop, .labelkeep:
            applyToNames(index, &ws, &s)
            return true
        default: break
        }
        // The joined source value.
        ws.value.removeAll(keepingCapacity: true)
        for (k, label) in rule.sourceBytes.enumerated() {
            if k > 0 { ws.value.append(contentsOf: rule.separatorBytes) }
            get(label, &ws, s, type: type)
        }
        switch rule.action {
        case .keep, .drop:
            let outcome = cached(index, &ws) { value, data in
                do { return try value.withUnsafeBytes { try rule.regex.matches($0, data) } ? .matched : .none } catch { return .gaveUp }
            }
            if outcome == .gaveUp { ws.gaveUp = true; return false }
            return (rule.action == .keep) == (outcome == .matched)
        case .keepequal, .dropequal:
            let value = ws.value
            ws.value.removeAll(keepingCapacity: true)
            get(rule.targetBytes, &ws, s, type: type)
            return (rule.action == .keepequal) == (ws.value == value)
        case .replace:
            let outcome = cached(index, &ws) { value, data in Self.replace(rule, value, data) }
            if case .set(let target, let value) = outcome { set(target, value, &ws, &s) }
            if outcome == .gaveUp { ws.gaveUp = true }
            return true
        case .lowercase, .uppercase:
            let converted = String(decoding: ws.value, as: UTF8.self)
            set(rule.targetBytes, Array((rule.action == .uppercase ? converted.uppercased() : converted.lowercased()).utf8), &ws, &s)
            return true
        case .hashmod:
            let outcome = cached(index, &ws) { value, _ in
                let digest = MD5.digest(value)
                var h: UInt64 = 0
                for b in digest[8..<16] { h = h << 8 | UInt64(b) }
                return .set(rule.targetBytes, Array(String(h % rule.modulus).utf8))
            }
            if case .set(let target, let value) = outcome { set(target, value, &ws, &s) }
            return true
        default:
            return true
        }
    }

    private static func replace(_ rule: RelabelRule, _ value: [UInt8], _ data: PCRE2MatchData) -> WorkerState.Outcome {
        value.withUnsafeBytes { subject in
            let found: [Range<Int>?]?
            do { found = try rule.regex.match(subject, data) } catch { return .gaveUp }
            guard let groups = found else { return .none }
            var target: [UInt8] = []
            rule.target.expand(subject: subject, groups: groups, into: &target)
            guard target.withUnsafeBytes(NameSyntax.isValidLabelName) else { return .none }
            var out: [UInt8] = []
            rule.replacementTemplate.expand(subject: subject, groups: groups, into: &out)
            return .set(target, out)
        }
    }

    /// labelmap, labeldrop, labelkeep: the regex runs over label names.
    private func applyToNames(_ index: Int, _ ws: inout WorkerState, _ s: inout SampleBatch) {
        let rule = rules[index]
        var k = 0
        var renamed: [(ByteSpan, [UInt8])] = []
        while k < ws.labels.count {
            ws.value.removeAll(keepingCapacity: true)
            s.withBytes(ws.labels[k].name) { ws.value.append(contentsOf: $0) }
            let outcome = cached(index, &ws) { name, data in
                name.withUnsafeBytes { name in
                    let found: [Range<Int>?]?
                    do { found = try rule.regex.match(name, data) } catch { return .gaveUp }
                    guard let groups = found else { return .none }
                    guard rule.action == .labelmap else { return .matched }
                    var out: [UInt8] = []
                    rule.replacementTemplate.expand(subject: name, groups: groups, into: &out)
                    return .rename(out)
                }
            }
            switch (rule.action, outcome) {
            case (_, .gaveUp):
                ws.gaveUp = true
                return
            case (.labeldrop, .matched), (.labelkeep, .none):
                ws.labels.remove(at: k)
                ws.changed = true
                continue
            case (.labelmap, .rename(let newName)):
                renamed.append((ws.labels[k].value, newName))
            default: break
            }
            k += 1
        }
        // labelmap copies values to the new names after scanning, as Prometheus does.
        for (valueSpan, newName) in renamed {
            var value: [UInt8] = []
            s.withBytes(valueSpan) { value.append(contentsOf: $0) }
            set(newName, value, &ws, &s)
        }
    }

    /// The outcome of rule `index` for the input in `ws.value`, computed once per
    /// distinct input (`compute` gets the input and the rule's match data).
    @inline(__always)
    private func cached(_ index: Int, _ ws: inout WorkerState,
                        _ compute: ([UInt8], PCRE2MatchData) -> WorkerState.Outcome) -> WorkerState.Outcome {
        guard cacheSize > 0 else { return compute(ws.value, ws.matchData[index]) }
        let hash = ws.value.withUnsafeBytes { hashBytes($0) }
        let hit = ws.value.withUnsafeBytes { ws.cacheKeys[index].find($0, hash: hash) }
        if let hit { return ws.outcomes[index][hit] }
        let outcome = compute(ws.value, ws.matchData[index])
        if ws.cacheKeys[index].count >= cacheSize {
            ws.cacheKeys[index].removeAll()
            ws.outcomes[index].removeAll(keepingCapacity: true)
        }
        let value = ws.value
        if value.withUnsafeBytes({ ws.cacheKeys[index].insert($0, hash: hash) }) != nil { ws.outcomes[index].append(outcome) }
        return outcome
    }

    // MARK: The sample's label set

    private static let nameLabel = Array("__name__".utf8)
    private static let typeLabel = Array("__type__".utf8)

    /// Appends the value of `label` (empty when missing) to `ws.value`.
    private func get(_ label: [UInt8], _ ws: inout WorkerState, _ s: SampleBatch, type: MetricType) {
        if label == Self.nameLabel { s.withBytes(ws.name) { ws.value.append(contentsOf: $0) }; return }
        if label == Self.typeLabel { ws.value.append(contentsOf: type.name.utf8); return }
        s.bytes.withUnsafeBytes { arena in
            label.withUnsafeBytes { wanted in
                for l in ws.labels where l.name.count == wanted.count
                    && memcmp(arena.baseAddress! + Int(l.name.start), wanted.baseAddress!, wanted.count) == 0 {
                    ws.value.append(contentsOf: arena[span: l.value])
                    return
                }
            }
        }
    }

    /// Sets a label (empty value deletes it), or renames the metric for `__name__`.
    private func set(_ label: [UInt8], _ value: [UInt8], _ ws: inout WorkerState, _ s: inout SampleBatch) {
        if label == Self.typeLabel { return }
        ws.changed = true
        if label == Self.nameLabel { ws.name = s.appendBytes(value); return }
        let existing = ws.labels.firstIndex { l in s.withBytes(l.name) { $0.elementsEqual(label) } }
        if value.isEmpty {
            if let existing { ws.labels.remove(at: existing) }
        } else if let existing {
            ws.labels[existing].value = s.appendBytes(value)
        } else {
            ws.labels.append(LabelRef(name: s.appendBytes(label), value: s.appendBytes(value)))
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension DropReason {
    /// Dropped on purpose by a `relabel` rule (not an error: logged at debug).
    public static let relabelDrop = DropReason("relabel_drop", intended: true)
    /// A rule's regex gave up on a value (`PCRE2MatchData.matchLimit` steps): what the rule
    /// would have done is unknown, so the sample is dropped rather than passed on unrelabeled.
    public static let regexLimit = DropReason("regex_limit")
}
