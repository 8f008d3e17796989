import Foundation

/// How the histograms of names matching one `native_histograms` glob are kept as
/// native (sparse, exponential) histograms — client_golang's semantics: bucket
/// boundaries are powers of `2^(2^-schema)`, observations within
/// `±zero_threshold` count in the zero bucket, and a series that would hold more
/// than `max_buckets` populated buckets halves its resolution (schema − 1, down
/// to −4) until it fits.
public struct NativeHistogramOptions: Sendable, Equatable {
    public static let defaultSchema = 3
    /// client_golang's `DefNativeHistogramZeroThreshold` (2^-128).
    public static let defaultZeroThreshold = 2.938735877055719e-39
    public static let defaultMaxBuckets = 160

    public var schema: Int
    public var zeroThreshold: Double
    /// 0: no limit.
    public var maxBuckets: Int

    public init(schema: Int = defaultSchema, zeroThreshold: Double = defaultZeroThreshold, maxBuckets: Int = defaultMaxBuckets) {
        self.schema = schema; self.zeroThreshold = zeroThreshold; self.maxBuckets = maxBuckets
    }

    /// client_golang's `pickSchema`: the coarsest schema whose bucket growth is at
    /// most `bucketFactor` (1.1 → 3, 2 → 0); nil unless `bucketFactor > 1`.
    public static func schema(bucketFactor: Double) -> Int? {
        guard bucketFactor > 1, bucketFactor.isFinite else { return nil }
        let floor = log2(log2(bucketFactor)).rounded(.down)
        if floor <= -8 { return 8 }
        if floor >= 4 { return -4 }
        return -Int(floor)
    }
}

/// Populated buckets of one sign, sorted by key.
public struct SparseBuckets: Sendable, Equatable {
    var keys: [Int32] = []
    var counts: [UInt64] = []

    public var count: Int { keys.count }

    /// Adds one at `key`; true when the bucket is new.
    @inline(__always)
    mutating func add(_ key: Int32) -> Bool {
        var lo = 0, hi = keys.count
        while lo < hi { let mid = (lo + hi) / 2; if keys[mid] < key { lo = mid + 1 } else { hi = mid } }
        if lo < keys.count && keys[lo] == key { counts[lo] += 1; return false }
        keys.insert(key, at: lo)
        counts.insert(1, at: lo)
        return true
    }

    /// Halves the resolution: bucket `k` goes to `(k + (k > 0 ? 1 : 0)) / 2`
    /// (truncating), as client_golang's `doubleBucketWidth` merges them.
    mutating func halve() {
        var newKeys: [Int32] = [], newCounts: [UInt64] = []
        newKeys.reserveCapacity(keys.count)
        newCounts.reserveCapacity(keys.count)
        for (k, c) in zip(keys, counts) {
            let merged = (k > 0 ? k + 1 : k) / 2
            if newKeys.last == merged { newCounts[newCounts.count - 1] += c } else { newKeys.append(merged); newCounts.append(c) }
        }
        keys = newKeys
        counts = newCounts
    }

    /// The protobuf encoding: spans (the first offset absolute, later ones the gap
    /// after the previous span) and count deltas. Gaps of one or two empty buckets
    /// continue a span with zeros, as client_golang does.
    public func spansAndDeltas() -> (spans: [(offset: Int32, length: UInt32)], deltas: [Int64]) {
        var spans: [(offset: Int32, length: UInt32)] = []
        var deltas: [Int64] = []
        var previous: Int64 = 0
        var next: Int32 = 0
        for (n, (key, count)) in zip(keys, counts).enumerated() {
            let gap = key - next
            if n == 0 || gap > 2 {
                spans.append((gap, 0))
            } else {
                for _ in 0..<gap { spans[spans.count - 1].length += 1; deltas.append(-previous); previous = 0 }
            }
            spans[spans.count - 1].length += 1
            deltas.append(Int64(count) - previous)
            previous = Int64(count)
            next = key + 1
        }
        return (spans, deltas)
    }
}

/// One series' native buckets (its `_count` and `_sum` are the family's columns).
public struct NativeHistogram: Sendable, Equatable {
    public internal(set) var schema: Int8
    public internal(set) var zeroCount: UInt64 = 0
    public internal(set) var positive = SparseBuckets()
    public internal(set) var negative = SparseBuckets()

    init(schema: Int) { self.schema = Int8(schema) }

    mutating func observe(_ v: Double, options: NativeHistogramOptions) {
        let created: Bool
        if v > options.zeroThreshold {
            created = positive.add(Self.key(v, schema: Int(schema)))
        } else if v < -options.zeroThreshold {
            created = negative.add(Self.key(v, schema: Int(schema)))
        } else {
            zeroCount += 1
            return
        }
        guard created, options.maxBuckets > 0 else { return }
        while positive.count + negative.count > options.maxBuckets && schema > -4 {
            positive.halve()
            negative.halve()
            schema -= 1
        }
    }

    /// The bucket of `|v|` (finite, non-zero): the `k` with
    /// `2^((k-1)·2^-schema) < |v| <= 2^(k·2^-schema)`, computed from the binary
    /// exponent as client_golang does, so boundaries agree with Prometheus.
    static func key(_ v: Double, schema: Int) -> Int32 {
        let a = abs(v)
        let frac = a.significand / 2   // Go's math.Frexp: a = frac · 2^exp, frac in [0.5, 1)
        let exp = Int(a.exponent) + 1
        if schema > 0 {
            let bounds = boundsTable[schema]
            var lo = 0, hi = bounds.count
            while lo < hi { let mid = (lo + hi) / 2; if bounds[mid] < frac { lo = mid + 1 } else { hi = mid } }
            return Int32(lo + (exp - 1) * bounds.count)
        }
        var key = exp
        if frac == 0.5 { key -= 1 }
        let offset = (1 << -schema) - 1
        return Int32((key + offset) >> -schema)
    }

    /// For schema 1…8: `2^(i/2^schema − 1)` for i in 0..<2^schema (fractions in [0.5, 1)).
    static let boundsTable: [[Double]] = (0...8).map { s in
        s == 0 ? [] : (0..<(1 << s)).map { i in exp2(Double(i) / Double(1 << s) - 1) }
    }

}
