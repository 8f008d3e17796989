/// Which parts of the aggregate a snapshot writes again, and which it keeps where
/// the state file already holds them (a pure decision; `SnapshotPlanTests`).
///
/// A part is a chunk of `Family.chunkSeries` series of one family. It is written
/// again when its stamp differs from the one written: a new family or chunk, a
/// sample applied to the chunk, an edit of the whole family (help set, series
/// removed), a family of the same name made anew. A summary with quantiles is
/// always written: its windows age with time, not with samples. Parts left in a
/// segment whose live bytes fell under half of it are written again too, so the
/// segments never hold much more than twice what is live.
struct SnapshotPlan: Equatable {
    struct Key: Hashable, Sendable { var name: [UInt8]; var chunk: UInt32 }
    struct Stamp: Equatable, Sendable { var incarnation: UInt64; var edits: UInt64; var chunkEdits: UInt64 }
    struct Part: Equatable { var key: Key; var stamp: Stamp; var always = false }
    /// What the state file holds for a part.
    struct Written: Equatable, Sendable { var stamp: Stamp; var entry: StateManifest.Entry }

    enum Step: Equatable { case write, keep(StateManifest.Entry) }

    /// One step per part, in the parts' order.
    var steps: [Step]

    init(parts: [Part], written: [Key: Written], segmentSizes: [UInt64: UInt64]) {
        steps = parts.map { p in
            guard !p.always, let w = written[p.key], w.stamp == p.stamp else { return .write }
            return .keep(w.entry)
        }
        var live: [UInt64: UInt64] = [:]
        for case .keep(let e) in steps { live[e.segment, default: 0] += e.length }
        let sparse = Set(live.filter { id, bytes in bytes * 2 < (segmentSizes[id] ?? 0) }.keys)
        guard !sparse.isEmpty else { return }
        steps = steps.map { step in
            if case .keep(let e) = step, sparse.contains(e.segment) { return .write }
            return step
        }
    }

    /// The parts of captured families, in order.
    static func parts(of families: [Family]) -> [(family: Int, series: Range<Int>, part: Part)] {
        var out: [(Int, Range<Int>, Part)] = []
        for (i, f) in families.enumerated() {
            var start = 0, chunk: UInt32 = 0
            while start < f.series.count {
                let end = min(start + Family.chunkSeries, f.series.count)
                let stamp = Stamp(incarnation: f.incarnation, edits: f.edits, chunkEdits: f.chunkEdits[Int(chunk)])
                out.append((i, start..<end, Part(key: Key(name: f.name, chunk: chunk), stamp: stamp, always: !f.windows.isEmpty)))
                start = end
                chunk += 1
            }
        }
        return out
    }
}
