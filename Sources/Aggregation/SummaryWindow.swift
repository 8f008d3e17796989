import Pipeline

/// Streaming targeted-quantile estimator (Cormode, Korn, Muthukrishnan, Srivastava:
/// "Effective computation of biased quantiles over data streams", ICDE 2005 —
/// CKMS), as the official Go client uses for summaries.
///
/// Keeps a compressed list of (value, width g, delta) tuples whose rank error stays
/// within `2·ε·r/q` below and `2·ε·(n−r)/(1−q)` above each target quantile `q`.
/// Observations are buffered and merged in sorted runs. Not thread-safe: the
/// owning store serialises access.
struct QuantileStream: Sendable {
    struct Tuple: Sendable { var value: Double; var width: Double; var delta: Double }
    /// (quantile, epsilon): the family's own array, shared by every stream of every series.
    let targets: [(Double, Double)]
    private(set) var tuples: [Tuple] = []
    private(set) var buffer: [Double] = []
    private(set) var n: Double = 0
    /// In a window: how many of the window's latest observations (`SummaryWindow.recent`)
    /// this stream has not merged yet; its own `buffer` then stays empty.
    var shared = 0
    static let bufferCapacity = 500

    init(targets: [(Double, Double)]) {
        self.targets = targets   // buffer grows on demand: most series are quiet
    }

    /// A stream as a state file recorded it.
    init(targets: [(Double, Double)], tuples: [Tuple], buffer: [Double], n: Double) {
        self.init(targets: targets)
        self.tuples = tuples
        self.buffer = buffer
        self.n = n
    }

    var count: Double { n + Double(buffer.count) }

    /// Allowed rank uncertainty at rank `r` (the invariant f(r, n)).
    private func allowance(_ r: Double) -> Double {
        var m = Double.greatestFiniteMagnitude
        for (quantile, epsilon) in targets {
            let f = quantile * n <= r ? 2 * epsilon * r / quantile : 2 * epsilon * (n - r) / (1 - quantile)
            if f < m { m = f }
        }
        return m
    }

    mutating func insert(_ v: Double) {
        buffer.append(v)
        if buffer.count == Self.bufferCapacity { flush() }
    }

    mutating func reset() {
        tuples.removeAll(keepingCapacity: true)
        buffer.removeAll(keepingCapacity: true)
        n = 0
    }

    /// Merges the sorted buffer into the tuple list.
    mutating func flush() {
        guard !buffer.isEmpty else { return }
        buffer.sort()
        merge(sorted: buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Merges a sorted run of observations into the tuple list in one pass, then compresses.
    mutating func merge(sorted run: [Double]) {
        var merged: [Tuple] = []
        merged.reserveCapacity(tuples.count + run.count)
        var i = 0
        var rank: Double = 0
        for v in run {
            while i < tuples.count && tuples[i].value <= v {
                rank += tuples[i].width
                merged.append(tuples[i])
                i += 1
            }
            // A new minimum or maximum has an exact rank; anywhere else it may be off
            // by the local allowance.
            let delta = (i == 0 || i == tuples.count) ? 0 : max(0, allowance(rank).rounded(.down) - 1)
            merged.append(Tuple(value: v, width: 1, delta: delta))
            n += 1
            rank += 1
        }
        while i < tuples.count { merged.append(tuples[i]); i += 1 }
        tuples = merged
        compress()
    }

    /// Merges neighbours whose combined uncertainty stays within the allowance.
    private mutating func compress() {
        guard tuples.count > 2 else { return }
        var out: [Tuple] = []
        out.reserveCapacity(tuples.count)
        // Walk from the top; the last tuple (maximum) is always kept.
        var x = tuples[tuples.count - 1]
        var r = n - 1 - x.width
        for i in stride(from: tuples.count - 2, through: 0, by: -1) {
            let c = tuples[i]
            if i > 0 && c.width + x.width + x.delta <= allowance(r) {
                x.width += c.width
            } else {
                out.append(x)
                x = c
            }
            r -= c.width
        }
        out.append(x)
        out.reverse()
        tuples = out
    }

    /// Fewer observations than one buffer: the answer is exact, from them.
    static func exact(_ q: Double, sorted: [Double]) -> Double {
        let i = max(0, Int((Double(sorted.count) * q).rounded(.up)) - 1)
        return sorted[min(i, sorted.count - 1)]
    }

    /// The estimate for quantile `q`; NaN when empty.
    mutating func query(_ q: Double) -> Double {
        if tuples.isEmpty && !buffer.isEmpty {
            buffer.sort()
            return Self.exact(q, sorted: buffer)
        }
        flush()
        guard !tuples.isEmpty else { return .nan }
        let target = (q * n).rounded(.up) + (allowance((q * n).rounded(.up)) / 2).rounded(.up)
        var rank: Double = 0
        var previous = tuples[0]
        for c in tuples.dropFirst() {
            rank += previous.width
            if rank + c.width + c.delta > target { return previous.value }
            previous = c
        }
        return previous.value
    }
}

/// A summary's quantiles over a sliding window: `ageBuckets` streams each see every
/// observation; the oldest ("head") is queried, and every `maxAge / ageBuckets` it is
/// reset and the next-oldest becomes head — so answers cover between
/// `maxAge·(1−1/ageBuckets)` and `maxAge` of history, as in the Go client.
///
/// The streams see the same observations, so the ones they have not merged yet are kept
/// once (`recent`, the latest ones) and each stream counts how many of them are its own
/// (`shared`: fewer for a stream reset since): one buffer per series instead of one per
/// stream (measured: 605 → 461 bytes of RSS per summary series). A stream merges its share,
/// sorted, when it reaches `QuantileStream.bufferCapacity` or is queried, as it merged its
/// own buffer: the answers are the same (tested against a buffer per stream).
///
/// Reference type so the store's snapshot can skip it (quantiles are computed
/// under the shard lock at snapshot time). Not thread-safe.
public final class SummaryWindow: @unchecked Sendable {
    private var streams: [QuantileStream]
    private var recent: [Double] = []
    private var head = 0
    private var headExpires: UInt64
    private let bucketNanos: UInt64
    let objectives: [(Double, Double)]

    /// Everything a state file keeps: the streams, which one is head, and how long
    /// until it rotates (relative, so it survives a restart's new clock). A stream's
    /// unmerged observations are its `buffer` plus the last `shared` of `recent`
    /// (`unmerged(_:)`: what the file holds per stream).
    public struct State: Sendable {
        var streams: [QuantileStream]
        var recent: [Double] = []
        var head: Int
        var rotatesIn: UInt64

        func unmerged(_ stream: QuantileStream) -> [Double] { Array(recent.suffix(stream.shared)) + stream.buffer }
    }

    /// A copy (copy-on-write arrays: O(1)); the caller holds the lock that
    /// serialises this window.
    func state(now: UInt64) -> State {
        State(streams: streams, recent: recent, head: head, rotatesIn: headExpires > now ? headExpires - now : 0)
    }

    /// `elapsed`: how long ago `state` was taken (a restart's downtime, a shard's time in Redis): the
    /// window ages by it as by wall time, so a restart does not keep observations past `maxAge`.
    init(objectives: [(Double, Double)], maxAge: Duration, ageBuckets: Int, now: UInt64, state: State, elapsed: UInt64 = 0) {
        self.objectives = objectives
        let total = UInt64(max(0.001, maxAge.inSeconds) * 1e9)
        bucketNanos = max(1, total / UInt64(max(1, ageBuckets)))
        var streams = state.streams
        if streams.count == max(1, ageBuckets) {
            head = min(max(0, state.head), streams.count - 1)
            let left = min(state.rotatesIn, bucketNanos)
            // Past due: as far in the past as it fell due, so the first rotation turns every bucket that aged out.
            headExpires = left > elapsed ? now + (left - elapsed) : (now > elapsed - left ? now - (elapsed - left) : 0)
        } else {   // another window layout now: keep the observations, restart the rotation
            streams = Array(repeating: state.streams.first ?? QuantileStream(targets: objectives), count: max(1, ageBuckets))
            headExpires = now + bucketNanos
        }
        // Unmerged observations as a file holds them, one list per stream (an older build
        // kept a buffer per stream, the head's sorted by its last query): shared again
        // when they nest, as they do when every stream saw the same observations; else
        // each stream merges its own.
        let lists = streams.map { state.unmerged($0) }
        let shared = Self.nested(lists)
        for i in streams.indices {
            let mine = lists[i]
            streams[i] = QuantileStream(targets: objectives, tuples: streams[i].tuples, buffer: [], n: streams[i].n)
            if shared != nil { streams[i].shared = mine.count } else if !mine.isEmpty { streams[i].merge(sorted: mine.sorted()) }
        }
        self.streams = streams
        recent = shared ?? []
        rotate(now)
    }

    /// One list whose last `lists[i].count` elements are, as a multiset, `lists[i]` for
    /// every `i` — which only the order of a stream's unmerged observations could tell
    /// apart, and that order never matters (they are sorted before any use); nil when the
    /// lists do not nest.
    static func nested(_ lists: [[Double]]) -> [Double]? {
        var recent: [Double] = [], sortedRecent: [Double] = []
        for list in lists.sorted(by: { $0.count < $1.count }) {
            var extra: [Double] = [], j = 0
            for v in list.sorted() {
                if j < sortedRecent.count && sortedRecent[j] == v { j += 1 } else { extra.append(v) }
            }
            guard j == sortedRecent.count else { return nil }   // not all of the shorter list is in this one
            recent = extra + recent
            sortedRecent = (sortedRecent + extra).sorted()
        }
        return recent
    }

    init(objectives: [(Double, Double)], maxAge: Duration, ageBuckets: Int, now: UInt64) {
        self.objectives = objectives
        streams = Array(repeating: QuantileStream(targets: objectives), count: max(1, ageBuckets))
        let total = UInt64(max(0.001, maxAge.inSeconds) * 1e9)
        bucketNanos = max(1, total / UInt64(max(1, ageBuckets)))
        headExpires = now + bucketNanos
    }

    func observe(_ v: Double, now: UInt64) {
        rotate(now)
        recent.append(v)
        var merged = false
        for i in streams.indices {
            streams[i].shared += 1
            if streams[i].shared == QuantileStream.bufferCapacity { merge(i); merged = true }
        }
        if merged { trim() }
    }

    /// Current estimates, in `objectives` order.
    func quantiles(now: UInt64) -> [Double] {
        rotate(now)
        let h = streams[head]
        if h.tuples.isEmpty && h.shared > 0 {
            let sorted = recent.suffix(h.shared).sorted()
            return objectives.map { QuantileStream.exact($0.0, sorted: sorted) }
        }
        if h.shared > 0 { merge(head); trim() }
        return objectives.map { streams[head].query($0.0) }
    }

    /// Stream `i` merges its share of `recent`.
    private func merge(_ i: Int) {
        streams[i].merge(sorted: recent.suffix(streams[i].shared).sorted())
        streams[i].shared = 0
    }

    /// Forgets the observations no stream still needs.
    private func trim() {
        let needed = streams.reduce(0) { max($0, $1.shared) }
        if recent.count > needed { recent.removeFirst(recent.count - needed) }
    }

    private func rotate(_ now: UInt64) {
        var rotations = 0
        while now >= headExpires && rotations <= streams.count {
            streams[head].reset()
            streams[head].shared = 0
            head = (head + 1) % streams.count
            headExpires += bucketNanos
            rotations += 1
        }
        if rotations > 0 { trim() }
        if now >= headExpires { headExpires = now + bucketNanos }   // idle for a long time
    }
}
