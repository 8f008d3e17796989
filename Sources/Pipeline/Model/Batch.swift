/// What flows on an edge of the pipeline. Each stage type declares the kind it
/// takes and emits, so a miswired config is rejected when it is loaded.
public enum ItemKind: String, Sendable, CaseIterable {
    /// Raw queue elements (`PayloadBatch`), as a source pops them.
    case payloads
    /// Decoded samples (`SampleBatch`).
    case samples
}

/// The unit that moves between stages. Stages mutate it in place (`inout`), so a
/// linear pipeline reuses the same buffers end to end.
public struct Batch: Sendable {
    public var kind: ItemKind
    public var payloads = PayloadBatch()
    public var samples = SampleBatch()
    /// Drops counted by the stage now holding the batch; the runtime flushes them.
    package var drops = DropTally()
    /// What of its source's stream the batch covers, for sources that redeliver;
    /// the runtime keeps it across every stage.
    public var acknowledgement: Acknowledgement?
    /// Bytes this batch holds of the pipeline's `MemoryBudget` (set by the runtime).
    public var charged = 0

    public init(kind: ItemKind) { self.kind = kind }

    public init(payloads: PayloadBatch) {
        self.kind = .payloads
        self.payloads = payloads
    }

    public init(samples: SampleBatch) {
        self.kind = .samples
        self.samples = samples
    }

    /// Number of items of the batch's kind (payloads or samples, dropped included).
    public var itemCount: Int { kind == .payloads ? payloads.count : samples.count }

    /// Samples not dropped so far.
    public var liveSampleCount: Int {
        var n = 0
        for r in samples.records where !r.isDropped { n += 1 }
        return n
    }

    /// Live items (payloads, or samples not dropped) per origin, in runs.
    public var liveItemsByOrigin: [(origin: UInt16, count: Int)] {
        var out: [(origin: UInt16, count: Int)] = []
        func add(_ o: UInt16) {
            if let last = out.last, last.origin == o { out[out.count - 1].count += 1 } else { out.append((o, 1)) }
        }
        if kind == .payloads {
            for o in payloads.origins { add(o) }
        } else {
            for r in samples.records where !r.isDropped { add(r.origin) }
        }
        return out
    }

    /// Drops sample `index` and counts it under `reason`. Idempotent.
    public mutating func drop(sample index: Int, reason: DropReason) {
        guard !samples.records[index].isDropped else { return }
        samples.records[index].isDropped = true
        drops.add(origin: samples.records[index].origin, reason: reason, note: samples.excerpt(index), payload: Array(samples.excerpt(index).utf8))
    }
}
