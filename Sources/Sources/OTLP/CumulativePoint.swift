/// The cumulative state of one stream: what the next point is subtracted from.
enum CumulativePoint: CumulativeValue, Equatable {
    case number(Double)
    case histogram(count: UInt64, sum: Double, bounds: [Double], buckets: [UInt64])
    case exponential(ExponentialCounts)
    case summary(count: UInt64, sum: Double)

    /// Nil (a reset) when a count went down, the layout changed, or the kind changed.
    func minus(_ previous: CumulativePoint) -> CumulativePoint? {
        switch (self, previous) {
        case (.number(let v), .number(let p)):
            return v.minus(p).map { .number($0) }
        case (.histogram(let c, let s, let b, let k), .histogram(let pc, let ps, let pb, let pk)):
            guard b == pb, k.count == pk.count, c >= pc, zip(k, pk).allSatisfy({ $0 >= $1 }) else { return nil }
            return .histogram(count: c - pc, sum: s - ps, bounds: b, buckets: zip(k, pk).map { $0 - $1 })
        case (.exponential(let e), .exponential(let p)):
            return e.minus(p).map { .exponential($0) }
        case (.summary(let c, let s), .summary(let pc, let ps)):
            guard c >= pc else { return nil }
            return .summary(count: c - pc, sum: s - ps)
        default:
            return nil
        }
    }
}

/// Exponential buckets as counted so far (OTLP's layout: bucket `offset + i`).
struct ExponentialCounts: Equatable, Sendable {
    // The two arrays are stored first, where the other cases of `CumulativePoint` hold numbers.
    // Stored last, `negative` lay in bytes only this case uses, and Swift kept the enum's case
    // tag in its pointer's spare bits: LeakSanitizer then saw no reference to the array and
    // reported it leaked from the stream table (make fuzz-otlp; a false report, but it stopped
    // every run). Now no case has a pointer of its own to tag.
    var positive: [UInt64]
    var negative: [UInt64]
    var count: UInt64
    var sum: Double
    var scale: Int
    var zeroCount: UInt64
    var zeroThreshold: Double
    var positiveOffset: Int
    var negativeOffset: Int

    init(count: UInt64, sum: Double, scale: Int, zeroCount: UInt64, zeroThreshold: Double, positiveOffset: Int, positive: [UInt64],
         negativeOffset: Int, negative: [UInt64]) {
        self.positive = positive; self.negative = negative; self.count = count; self.sum = sum; self.scale = scale
        self.zeroCount = zeroCount; self.zeroThreshold = zeroThreshold; self.positiveOffset = positiveOffset; self.negativeOffset = negativeOffset
    }

    /// The same counts at a coarser `scale` (bucket `i` → `i >> d`, as OTLP downscales).
    func downscaled(to target: Int) -> ExponentialCounts {
        guard target < scale else { return self }
        let d = scale - target
        func merge(_ offset: Int, _ counts: [UInt64]) -> (Int, [UInt64]) {
            guard !counts.isEmpty else { return (0, []) }
            let first = offset >> d, last = (offset + counts.count - 1) >> d
            var out = [UInt64](repeating: 0, count: last - first + 1)
            for (i, c) in counts.enumerated() { out[((offset + i) >> d) - first] &+= c }
            return (first, out)
        }
        var e = self
        (e.positiveOffset, e.positive) = merge(positiveOffset, positive)
        (e.negativeOffset, e.negative) = merge(negativeOffset, negative)
        e.scale = target
        return e
    }

    func minus(_ previous: ExponentialCounts) -> ExponentialCounts? {
        guard count >= previous.count, zeroCount >= previous.zeroCount else { return nil }
        let scale = min(self.scale, previous.scale)
        let a = downscaled(to: scale), b = previous.downscaled(to: scale)
        func subtract(_ o: Int, _ c: [UInt64], _ po: Int, _ pc: [UInt64]) -> (Int, [UInt64])? {
            guard !pc.isEmpty else { return (o, c) }
            guard !c.isEmpty else { return pc.allSatisfy { $0 == 0 } ? (o, c) : nil }
            let lo = min(o, po), hi = max(o + c.count, po + pc.count)
            var out = [UInt64](repeating: 0, count: hi - lo)
            for (i, x) in c.enumerated() { out[o + i - lo] = x }
            for (i, x) in pc.enumerated() {
                guard out[po + i - lo] >= x else { return nil }
                out[po + i - lo] -= x
            }
            return (lo, out)
        }
        guard let (po, p) = subtract(a.positiveOffset, a.positive, b.positiveOffset, b.positive),
              let (no, n) = subtract(a.negativeOffset, a.negative, b.negativeOffset, b.negative) else { return nil }
        return ExponentialCounts(count: count - previous.count, sum: sum - previous.sum, scale: scale, zeroCount: zeroCount - previous.zeroCount,
                                 zeroThreshold: zeroThreshold, positiveOffset: po, positive: p, negativeOffset: no, negative: n)
    }
}
