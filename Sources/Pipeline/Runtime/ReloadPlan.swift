/// What a reload does with each stage, decided from the running file and the new one
/// alone — a value, table-tested (`ReloadPlanTests`); `PipelineRuntime.reconfigure`
/// carries it out.
///
/// - **kept**: same options and same consumers; threads, buffer and state untouched.
/// - **restarted**: same options, but its consumers changed (or one gets a new input
///   buffer): the same instance runs on new threads, wired to them.
/// - **rebuilt**: options changed (its fingerprint), or the stage is new; a stage whose
///   id now names another role is new too.
/// - **removed**: in the running file only.
///
/// A stage (not a source) keeps its input buffer when its inputs and buffer options are
/// the same: its producers then need no new wiring.
struct ReloadPlan: Equatable {
    var keepsBuffer: Set<String> = []
    var rebuild: Set<String> = []
    /// Rebuilt or restarted: every stage whose threads stop.
    var touched: Set<String> = []
    var removed: Set<String> = []
    var report = PipelineRuntime.Reconfiguration()

    init(from old: PipelineSpec, to new: PipelineSpec) {
        var previous: [String: StageDecl] = [:]
        for d in old.stages { previous[d.id] = d }
        func same(_ d: StageDecl) -> StageDecl? { previous[d.id].flatMap { $0.role == d.role ? $0 : nil } }
        keepsBuffer = Set(new.stages.filter { d in
            d.role != .source && same(d).map { $0.inputs == d.inputs && $0.buffer == d.buffer } == true
        }.map(\.id))
        let newBuffer = Set(new.stages.filter { $0.role != .source && !keepsBuffer.contains($0.id) }.map(\.id))
        let consumersNow = Self.consumers(old), consumersNext = Self.consumers(new)
        for d in new.stages {
            if let p = same(d), p.fingerprint == d.fingerprint {
                let next = consumersNext[d.id] ?? []
                if (consumersNow[d.id] ?? []) != next || next.contains(where: newBuffer.contains) { touched.insert(d.id) }
            } else {
                rebuild.insert(d.id)
                touched.insert(d.id)
            }
        }
        removed = Set(old.stages.map(\.id).filter { new.stage($0) == nil })
        for d in new.stages {
            if rebuild.contains(d.id) {
                report.rebuilt.append(d.id)
            } else if touched.contains(d.id) {
                report.restarted.append(d.id)
            } else {
                report.kept.append(d.id)
            }
        }
        report.removed = old.stages.map(\.id).filter { removed.contains($0) }
    }

    /// Stage id → the ids reading from it, sorted.
    static func consumers(_ spec: PipelineSpec) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for c in spec.stages { for i in c.inputs { out[i, default: []].append(c.id) } }
        return out.mapValues { $0.sorted() }
    }
}
