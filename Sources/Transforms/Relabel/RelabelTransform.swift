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

    /// Applied in order; must not be empty.
    public var rules: [RelabelRule]
    /// Cached outcomes per rule and worker.
    public var cacheSize: Int
    let declaredRules: Int

    public init(options o: OptionReader) {
        cacheSize = o.int("cache_size", default: 8192, range: 0...10_000_000, doc: "Outcomes cached per rule and worker (0: no cache).")
        let readers = o.sections("rules", doc: "Relabel rules: action, source_labels, separator, regex, target_label, replacement, modulus (as in Prometheus).")
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
    private let states: [WorkerState]

    public init(rules: [RelabelRule], cacheSize: Int = 8192, workers: Int = 1) {
        self.rules = rules
        self.cacheSize = cacheSize
        states = (0..<max(1, workers)).map { _ in WorkerState(rules: rules) }
    }

    /// What a worker reuses from sample to sample. Touched by one worker only.
    final class WorkerState: @unchecked Sendable {
        var name = ByteSpan.empty
        var labels: [LabelRef] = []
        var changed = false
        var value: [UInt8] = []
        var scratch: [UInt8] = []
        let matchData: [PCRE2MatchData]
        /// Per rule: input string (joined value, or label name) → outcome.
        var replaceCache: [[[UInt8]: Outcome]]

        enum Outcome: Equatable { case none, matched, set([UInt8], [UInt8]), rename([UInt8]) }

        init(rules: [RelabelRule]) {
            matchData = rules.map { $0.regex.makeMatchData() }
            replaceCache = Array(repeating: [:], count: rules.count)
        }
    }

    public func process(_ batch: inout Batch, worker: Int) {
        let ws = states[worker % states.count]
        for i in batch.samples.records.indices where !batch.samples.records[i].isDropped {
            let r = batch.samples.records[i]
            ws.name = r.name
            ws.labels.removeAll(keepingCapacity: true)
            ws.labels.append(contentsOf: batch.samples.labels[r.labelRange])
            ws.changed = false
            var keep = true
            for (index, rule) in rules.enumerated() where !apply(rule, index, ws, &batch.samples, type: r.type) {
                keep = false
                break
            }
            if !keep {
                batch.drop(sample: i, reason: .relabelDrop)
            } else if ws.changed {
                batch.samples.records[i].name = ws.name
                batch.samples.records[i].labelStart = UInt32(batch.samples.labels.count)
                batch.samples.records[i].labelCount = UInt32(ws.labels.count)
                batch.samples.labels.append(contentsOf: ws.labels)
            }
        }
    }

    // MARK: One rule

    /// Applies `rule`; false drops the sample.
    private func apply(_ rule: RelabelRule, _ index: Int, _ ws: WorkerState, _ s: inout SampleBatch, type: MetricType) -> Bool {
        switch rule.action {
        case .labelmap, .labeldrop, .labelkeep:
            applyToNames(rule, index, ws, &s)
            return true
        default: break
        }
        // The joined source value.
        ws.value.removeAll(keepingCapacity: true)
        for (k, label) in rule.sourceBytes.enumerated() {
            if k > 0 { ws.value.append(contentsOf: rule.separatorBytes) }
            get(label, ws, s, type: type, into: &ws.value)
        }
        switch rule.action {
        case .keep, .drop:
            let matched = cached(index, ws) { ws.value.withUnsafeBytes { rule.regex.matches($0, ws.matchData[index]) } ? .matched : .none } == .matched
            return (rule.action == .keep) == matched
        case .keepequal, .dropequal:
            ws.scratch.removeAll(keepingCapacity: true)
            get(Array(rule.targetLabel.utf8), ws, s, type: type, into: &ws.scratch)
            return (rule.action == .keepequal) == (ws.scratch == ws.value)
        case .replace:
            let outcome = cached(index, ws) { replace(rule, index, ws) }
            if case .set(let target, let value) = outcome { set(target, value, ws, &s) }
            return true
        case .lowercase, .uppercase:
            let upper = rule.action == .uppercase
            let converted = String(decoding: ws.value, as: UTF8.self)
            set(Array(rule.targetLabel.utf8), Array((upper ? converted.uppercased() : converted.lowercased()).utf8), ws, &s)
            return true
        case .hashmod:
            let outcome = cached(index, ws) {
                let digest = MD5.digest(ws.value)
                var h: UInt64 = 0
                for b in digest[8..<16] { h = h << 8 | UInt64(b) }
                return .set(Array(rule.targetLabel.utf8), Array(String(h % rule.modulus).utf8))
            }
            if case .set(let target, let value) = outcome { set(target, value, ws, &s) }
            return true
        default:
            return true
        }
    }

    private func replace(_ rule: RelabelRule, _ index: Int, _ ws: WorkerState) -> WorkerState.Outcome {
        ws.value.withUnsafeBytes { subject in
            guard let groups = rule.regex.match(subject, ws.matchData[index]) else { return .none }
            var target: [UInt8] = []
            rule.target.expand(subject: subject, groups: groups, into: &target)
            guard target.withUnsafeBytes(NameSyntax.isValidLabelName) else { return .none }
            var value: [UInt8] = []
            rule.replacementTemplate.expand(subject: subject, groups: groups, into: &value)
            return .set(target, value)
        }
    }

    /// labelmap, labeldrop, labelkeep: the regex runs over label names.
    private func applyToNames(_ rule: RelabelRule, _ index: Int, _ ws: WorkerState, _ s: inout SampleBatch) {
        var k = 0
        var renamed: [(ByteSpan, [UInt8])] = []
        while k < ws.labels.count {
            ws.value.removeAll(keepingCapacity: true)
            s.withBytes(ws.labels[k].name) { ws.value.append(contentsOf: $0) }
            let outcome = cached(index, ws) {
                ws.value.withUnsafeBytes { name in
                    guard let groups = rule.regex.match(name, ws.matchData[index]) else { return .none }
                    guard rule.action == .labelmap else { return .matched }
                    var out: [UInt8] = []
                    rule.replacementTemplate.expand(subject: name, groups: groups, into: &out)
                    return .rename(out)
                }
            }
            switch (rule.action, outcome) {
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
            set(newName, value, ws, &s)
        }
    }

    @inline(__always)
    private func cached(_ index: Int, _ ws: WorkerState, _ compute: () -> WorkerState.Outcome) -> WorkerState.Outcome {
        guard cacheSize > 0 else { return compute() }
        if let hit = ws.replaceCache[index][ws.value] { return hit }
        let outcome = compute()
        if ws.replaceCache[index].count >= cacheSize { ws.replaceCache[index].removeAll(keepingCapacity: true) }
        ws.replaceCache[index][ws.value] = outcome
        return outcome
    }

    // MARK: The sample's label set

    private static let nameLabel = Array("__name__".utf8)
    private static let typeLabel = Array("__type__".utf8)

    private func get(_ label: [UInt8], _ ws: WorkerState, _ s: SampleBatch, type: MetricType, into out: inout [UInt8]) {
        if label == Self.nameLabel { s.withBytes(ws.name) { out.append(contentsOf: $0) }; return }
        if label == Self.typeLabel { out.append(contentsOf: type.name.utf8); return }
        for l in ws.labels where s.withBytes(l.name, { $0.elementsEqual(label) }) {
            s.withBytes(l.value) { out.append(contentsOf: $0) }
            return
        }
    }

    /// Sets a label (empty value deletes it), or renames the metric for `__name__`.
    private func set(_ label: [UInt8], _ value: [UInt8], _ ws: WorkerState, _ s: inout SampleBatch) {
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
