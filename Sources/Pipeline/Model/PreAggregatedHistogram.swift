/// How a histogram sample carries its data.
public enum HistogramShape: UInt8, Sendable {
    /// One observation, `value` (the JSON wire format).
    case observation
    /// A delta the sender counted into explicit buckets (`BinnedHistogram`); `value` is the sum's delta.
    case binned
    /// A delta in exponential buckets (`ExponentialHistogram`); `value` is the sum's delta.
    case exponential
}

/// A histogram delta in explicit buckets, as OTLP's `HistogramDataPoint` carries it:
/// the bounds in the record's `buckets`, here the count and one count per bucket
/// (`bounds.count + 1`, the last for `+Inf`). Laid out in `SampleBatch.numbers` as
/// `[count, c0, c1, …]`.
public struct BinnedHistogram: Sendable, Equatable {
    public var count: Double
    public var counts: ArraySlice<Double>

    public init(count: Double, counts: ArraySlice<Double>) { self.count = count; self.counts = counts }

    /// Nil unless every number is a whole count up to 2^53 and `count` is the buckets' sum
    /// (as OTLP requires; a page whose buckets disagree with its count is invalid).
    public init?(numbers n: ArraySlice<Double>) {
        guard let c = n.first, n.allSatisfy(Self.isCount) else { return nil }
        count = c
        counts = n.dropFirst()
        guard counts.reduce(0, +) == c, Self.isExactTotal(c) else { return nil }
    }

    /// Counts beyond 2^53 are not exact as doubles: sums of them would not add up.
    public static let maxExact = 9_007_199_254_740_992.0

    /// Whether a sum of whole counts, added in any order, was exact: an addition that rounded had a
    /// true result above 2^53, and rounding is monotonic, so every sum after it is at least 2^53.
    @inline(__always)
    public static func isExactTotal(_ sum: Double) -> Bool { sum < maxExact }

    /// A whole number from 0 to `maxExact` (JSON senders may write any number).
    @inline(__always)
    public static func isCount(_ v: Double) -> Bool { v >= 0 && v <= maxExact && v == v.rounded(.towardZero) }

    /// Whether `bounds` and `numbers` (`[count, c0, c1, …]`) make a delta `add` takes exactly:
    /// bounds strictly increasing, one count per bucket and `+Inf`, whole counts summing to `count`.
    public static func isWellFormed(bounds: UnsafeBufferPointer<Double>, numbers: UnsafeBufferPointer<Double>) -> Bool {
        guard numbers.count == bounds.count + 2 else { return false }
        for k in 1..<max(1, bounds.count) where !(bounds[k - 1] < bounds[k]) { return false }
        var sum = 0.0
        for k in 1..<numbers.count {
            guard isCount(numbers[k]) else { return false }
            sum += numbers[k]
        }
        return sum == numbers[0] && isExactTotal(sum)
    }

    public var numbers: [Double] { [count] + counts }
}

/// A histogram delta in exponential buckets, as OTLP's `ExponentialHistogramDataPoint`
/// carries it: bucket `offset + i` of scale `scale` covers `(base^(offset+i), base^(offset+i+1)]`,
/// `base = 2^(2^-scale)`. Laid out in `SampleBatch.numbers` as
/// `[count, scale, zeroThreshold, zeroCount, positiveOffset, positiveCount, positive…, negativeOffset, negativeCount, negative…]`.
public struct ExponentialHistogram: Sendable, Equatable {
    public var count: Double
    public var scale: Int
    public var zeroThreshold: Double
    public var zeroCount: Double
    public var positiveOffset: Int
    public var positive: [Double]
    public var negativeOffset: Int
    public var negative: [Double]

    /// Scales Prometheus can hold after downscaling (a finer one is merged down to 8).
    public static let scales = -4...20
    /// Offsets beyond this are not a real sender's (they would overflow bucket keys).
    public static let maxOffset = 1 << 28

    public init(count: Double, scale: Int, zeroThreshold: Double, zeroCount: Double,
                positiveOffset: Int, positive: [Double], negativeOffset: Int, negative: [Double]) {
        self.count = count; self.scale = scale; self.zeroThreshold = zeroThreshold; self.zeroCount = zeroCount
        self.positiveOffset = positiveOffset; self.positive = positive; self.negativeOffset = negativeOffset; self.negative = negative
    }

    /// Nil for a layout that is not well formed: a scale out of `scales`, an offset
    /// out of ±`maxOffset`, a count that is not a whole number up to 2^53, or a `count`
    /// other than the zero bucket's and the buckets' sum.
    public init?(numbers n: ArraySlice<Double>) {
        var i = n.startIndex
        func next() -> Double? { guard i < n.endIndex else { return nil }; defer { i += 1 }; return n[i] }
        func integer(_ range: ClosedRange<Int>) -> Int? {
            guard let v = next(), v.isFinite, v == v.rounded(), v >= Double(range.lowerBound), v <= Double(range.upperBound) else { return nil }
            return Int(v)
        }
        func exact(_ v: Double) -> Bool { v.isFinite && v >= 0 && v <= BinnedHistogram.maxExact && v == v.rounded() }
        func counts() -> (Int, [Double])? {
            guard let offset = integer(-Self.maxOffset...Self.maxOffset), let length = integer(0...(n.endIndex - i)) else { return nil }
            let c = Array(n[i..<(i + length)])
            i += length
            guard c.allSatisfy(exact) else { return nil }
            return (offset, c)
        }
        guard let count = next(), exact(count), let scale = integer(Self.scales),
              let zt = next(), zt.isFinite, zt >= 0, let zc = next(), exact(zc),
              let (po, p) = counts(), let (no, neg) = counts(), i == n.endIndex,
              zc + p.reduce(0, +) + neg.reduce(0, +) == count, BinnedHistogram.isExactTotal(count) else { return nil }
        self.init(count: count, scale: scale, zeroThreshold: zt, zeroCount: zc, positiveOffset: po, positive: p, negativeOffset: no, negative: neg)
    }

    public var numbers: [Double] {
        [count, Double(scale), zeroThreshold, zeroCount, Double(positiveOffset), Double(positive.count)] + positive
            + [Double(negativeOffset), Double(negative.count)] + negative
    }
}
