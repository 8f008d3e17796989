import Pipeline
import Synchronization

/// A cumulative value that a later one of the same stream can be subtracted from.
protocol CumulativeValue: Sendable {
    /// `self − previous`, or nil when `self` is not a continuation (a lower count: a reset).
    func minus(_ previous: Self) -> Self?
}

extension Double: CumulativeValue {
    func minus(_ previous: Double) -> Double? { self >= previous ? self - previous : nil }
}

/// What the stream table decided for one cumulative point (a pure value, table-tested).
enum DeltaStep<V: CumulativeValue>: Sendable {
    /// Add `V` (the first point of a recently started stream, a continuation, or a restart counting from zero).
    case add(V, Reason)
    /// Nothing to add: the first point of a stream whose start is unknown or older than the gateway; it is the baseline.
    case baseline
    /// Older than what the stream already counted (a retried or reordered export): dropped.
    case stale

    enum Reason: Equatable, Sendable { case first, delta, reset }

    /// The next point of a stream whose last counted point was `previous` (nil: a new
    /// stream). `recent` says whether a start time lets the first point count from zero.
    static func decide(previous: (start: UInt64, time: UInt64, value: V)?, start: UInt64, time: UInt64, value: V,
                       recent: (UInt64) -> Bool) -> DeltaStep {
        guard let p = previous else { return start != 0 && recent(start) ? .add(value, .first) : .baseline }
        if time != 0 && p.time != 0 && time < p.time { return .stale }
        if start != 0 && p.start != 0 && start != p.start { return start > p.start ? .add(value, .reset) : .stale }
        if let d = value.minus(p.value) { return .add(d, .delta) }
        return .add(value, .reset)
    }
}

/// Cumulative points turned into deltas per stream, as the Collector's
/// `cumulativetodelta` does (`initial_value: auto`). A stream is the resource's
/// attributes, the scope, the metric and the point's attributes, kept as a 128-bit
/// hash (two 64-bit hashes: a collision among a million streams is ~10⁻²⁶ likely).
///
/// - The first point of a stream counts from zero when its start time is after the
///   gateway started and within `ttl` of the point; otherwise it is the baseline and
///   adds nothing (what happened before it is unknown).
/// - A lower value or a later start time is a restart: the point counts from zero.
/// - A point older than the last one counted is dropped (`stale`).
/// - Streams idle longer than `ttl` are forgotten; at `capacity`, a new stream's point
///   is dropped (`stream_limit`) until idle ones expire.
///
/// The table is memory only: after a gateway restart, every cumulative stream starts
/// from a baseline (the increments between the last export before and the first after
/// are not counted). Delta senders lose nothing.
final class StreamTable: Sendable {
    typealias V = CumulativePoint
    struct Entry: Sendable { var start: UInt64, time: UInt64, seen: UInt64, value: V }

    private let streams = Mutex<[StreamKey: Entry]>([:])
    /// When a full table was last swept (written under `streams`' lock).
    private let lastFullSweep = Atomic<UInt64>(0)
    let ttl: UInt64
    let capacity: Int
    let startedAt: UInt64
    private let clock: @Sendable () -> UInt64

    init(ttl: Duration, capacity: Int, startedAt: UInt64 = wallClockNanos(), clock: @escaping @Sendable () -> UInt64 = monotonicNanos) {
        self.ttl = UInt64(ttl.components.seconds) * 1_000_000_000 + UInt64(ttl.components.attoseconds / 1_000_000_000)
        self.capacity = capacity
        self.startedAt = startedAt
        self.clock = clock
    }

    var count: Int { streams.withLock { $0.count } }

    /// Decides a batch of points under one lock; `body` gets each point's step.
    func step(_ points: [(key: StreamKey, start: UInt64, time: UInt64, value: V)], _ body: (Int, DeltaStep<V>?) -> Void) {
        let now = clock()
        let ttl = self.ttl, startedAt = self.startedAt
        streams.withLock { table in
            for (i, p) in points.enumerated() {
                let previous = table[p.key]
                if previous == nil, table.count >= capacity {
                    // Full: expire idle streams, at most once a second (a flood of new streams
                    // must not make every point walk the whole table).
                    if now &- lastFullSweep.load(ordering: .relaxed) >= 1_000_000_000 {
                        lastFullSweep.store(now, ordering: .relaxed)
                        table = table.filter { now &- $0.value.seen <= ttl }
                    }
                    if table.count >= capacity { body(i, nil); continue }
                }
                let step = DeltaStep<V>.decide(previous: previous.map { ($0.start, $0.time, $0.value) }, start: p.start, time: p.time,
                                               value: p.value, recent: { s in s >= startedAt && (p.time == 0 || p.time &- s <= ttl) })
                if case .stale = step {} else { table[p.key] = Entry(start: p.start, time: p.time, seen: now, value: p.value) }
                body(i, step)
            }
        }
    }

    /// Forgets streams idle longer than `ttl`; returns how many.
    @discardableResult
    func sweep() -> Int {
        let now = clock()
        return streams.withLock { table in
            let before = table.count
            table = table.filter { now &- $0.value.seen <= ttl }
            return before - table.count
        }
    }
}

/// A stream's identity as two 64-bit hashes.
struct StreamKey: Hashable, Sendable { var a: UInt64, b: UInt64 }

/// The stream key of a point: both hashes over the same identity bytes.
struct StreamKeyBuilder {
    private var bytes: [UInt8] = []

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    mutating func add(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
        bytes.append(0xFF)   // never in UTF-8: a separator no text can fake
    }

    mutating func add(_ attributes: OTLPAttributes) {
        for (k, v) in attributes.sorted(by: { $0.key < $1.key }) { add(k); add(v) }
        bytes.append(0xFE)
    }

    var key: StreamKey {
        bytes.withUnsafeBytes { StreamKey(a: hashBytes($0), b: hashBytes($0, seed: 0xD6E8_FEB8_6659_FD93)) }
    }
}
