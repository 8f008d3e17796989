import Synchronization

/// One series of a meta-metric.
public struct MetaSample: Sendable {
    public var labels: [(String, String)]
    public var value: Double
    public init(labels: [(String, String)], value: Double) { self.labels = labels; self.value = value }
}

/// One meta-metric family, as the sink renders it.
public struct MetaFamily: Sendable {
    public var name: String
    public var help: String
    public var type: MetricType
    public var samples: [MetaSample]
    public init(name: String, help: String, type: MetricType, samples: [MetaSample]) {
        self.name = name; self.help = help; self.type = type; self.samples = samples
    }
}

/// A monotonically increasing count a stage updates without locking.
public final class MetaCounter: Sendable {
    private let storage = Atomic<UInt64>(0)
    public init() {}
    @inline(__always) public func add(_ n: UInt64 = 1) { storage.add(n, ordering: .relaxed) }
    public var value: UInt64 { storage.load(ordering: .relaxed) }
}

/// A value a stage sets without locking.
public final class MetaGauge: Sendable {
    private let bits = Atomic<UInt64>(0)
    public init() {}
    public func set(_ v: Double) { bits.store(v.bitPattern, ordering: .relaxed) }
    public var value: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }
}

/// The gateway's own metrics: what the runtime and the stages count, collected at
/// scrape time.
///
/// A source registers an *origin* per label set it wants its samples counted
/// under (`redis_list`: `worker` and `queueKey`); every payload and sample carries
/// its origin index, and the runtime counts `dropped_metrics_total` (with a
/// `reason`) and `processed_metrics_total` under the origin's labels. The framework
/// knows no label names of its own. Counts arrive once per batch, never per sample.
public final class Telemetry: Sendable {
    public static let prefix = "prom_stream_gateway_"

    private struct DropKey: Hashable { var origin: UInt16; var reason: DropReason }
    private struct State {
        var origins: [[(String, String)]] = [[]]
        var drops: [DropKey: UInt64] = [:]
        var processed: [UInt64] = [0]
        /// With the stage that added each (0: none), so a reload can remove a replaced stage's.
        var collectors: [(owner: UInt64, collect: @Sendable () -> [MetaFamily])] = []
    }
    private let state = Mutex(State())   // protects everything above

    public init() {}

    /// Registers the labels that drops and processed counts of this origin carry;
    /// the same label set gets the same origin.
    public func registerOrigin(labels: [(String, String)]) -> UInt16 {
        state.withLock { s in
            if let i = s.origins.firstIndex(where: { $0.elementsEqual(labels, by: ==) }) { return UInt16(i) }
            precondition(s.origins.count < Int(UInt16.max), "too many origins")
            s.origins.append(labels)
            s.processed.append(0)
            return UInt16(s.origins.count - 1)
        }
    }

    package func record(drops: DropTally) {
        guard !drops.isEmpty else { return }
        state.withLock { s in
            for e in drops.entries { s.drops[DropKey(origin: e.origin, reason: e.reason), default: 0] += UInt64(e.count) }
        }
    }

    /// Counts items that reached a sink, per origin (the runtime calls it).
    public func recordProcessed(_ counts: [(origin: UInt16, count: Int)]) {
        guard !counts.isEmpty else { return }
        state.withLock { s in
            for (o, n) in counts where Int(o) < s.processed.count { s.processed[Int(o)] += UInt64(n) }
        }
    }

    /// Total drops so far, optionally for one reason.
    public func droppedTotal(reason: DropReason? = nil) -> UInt64 {
        state.withLock { s in s.drops.reduce(0) { $0 + ((reason == nil || $1.key.reason == reason) ? $1.value : 0) } }
    }

    public var processedTotal: UInt64 { state.withLock { $0.processed.reduce(0, +) } }

    /// Adds a callback that reports more families at scrape time; `owner` names the
    /// stage instance that added it (`StageContext.owner`).
    public func addCollector(owner: UInt64 = 0, _ collector: @escaping @Sendable () -> [MetaFamily]) {
        state.withLock { $0.collectors.append((owner, collector)) }
    }

    /// A stage instance is gone (replaced or removed by a reload): its families leave the page.
    public func removeCollectors(owner: UInt64) {
        guard owner != 0 else { return }
        state.withLock { $0.collectors.removeAll { $0.owner == owner } }
    }

    private static let owners = Atomic<UInt64>(0)
    /// A fresh owner token for one stage instance.
    public static func newOwner() -> UInt64 { owners.add(1, ordering: .relaxed).newValue }

    /// Everything, merged by family name and sorted by name. Series of one family
    /// with equal label sets (say, two sources on the same key) are summed into one,
    /// so the page never holds two lines for one series; NaN counts as absent.
    public func collect() -> [MetaFamily] {
        let (origins, drops, processed, collectors) = state.withLock { s in (s.origins, s.drops, s.processed, s.collectors) }
        var families: [MetaFamily] = []
        families.append(MetaFamily(
            name: Self.prefix + "dropped_metrics_total",
            help: "Samples (or queue elements) dropped, by origin and reason.",
            type: .counter,
            samples: drops.sorted { ($0.key.origin, $0.key.reason.name) < ($1.key.origin, $1.key.reason.name) }.map {
                MetaSample(labels: origins[Int($0.key.origin)] + [("reason", $0.key.reason.name)], value: Double($0.value))
            }))
        families.append(MetaFamily(
            name: Self.prefix + "processed_metrics_total",
            help: "Samples that reached a sink, by origin.",
            type: .counter,
            samples: processed.indices.dropFirst().map { MetaSample(labels: origins[$0], value: Double(processed[$0])) }))
        for c in collectors { families.append(contentsOf: c.collect()) }
        var merged: [String: MetaFamily] = [:]
        for f in families {
            if merged[f.name] == nil { merged[f.name] = f } else { merged[f.name]!.samples += f.samples }
        }
        return merged.values.map(Self.summingDuplicates).sorted { $0.name < $1.name }
    }

    private static func summingDuplicates(_ f: MetaFamily) -> MetaFamily {
        var out = f
        out.samples = []
        var index: [String: Int] = [:]
        for s in f.samples {
            let key = s.labels.sorted { $0.0 < $1.0 }.map { "\($0.0)\u{0}\($0.1)" }.joined(separator: "\u{1}")
            if let i = index[key] {
                let old = out.samples[i].value
                out.samples[i].value = old.isNaN ? s.value : s.value.isNaN ? old : old + s.value
            } else {
                index[key] = out.samples.count
                out.samples.append(s)
            }
        }
        return out
    }
}
