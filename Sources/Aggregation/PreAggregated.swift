import Pipeline

/// Adding histogram deltas a sender already counted into buckets (OTLP) — the
/// pre-aggregated counterpart of `observe`. A family keeps one layout:
///
/// - explicit buckets add to a classic family; bucket `k` of the sample is counted
///   in the family's bucket that holds its upper bound (exact when the layouts agree,
///   which they do for one instrument; a changed layout is approximated, not dropped);
///   a family kept as a native histogram too cannot take them (its native buckets
///   would disagree with its count): `bad_buckets`;
/// - exponential buckets add to a family that is native only (no classic bounds),
///   downscaled to the coarser of the two schemas; anything else is `bad_buckets`.
extension Family {
    /// The options of a family created by an exponential sample: the sample's scale
    /// (at most 8, Prometheus's finest) and zero threshold.
    static func nativeOptions(for e: ExponentialHistogram) -> NativeHistogramOptions {
        NativeHistogramOptions(schema: min(8, e.scale),
                               zeroThreshold: e.zeroThreshold > 0 ? e.zeroThreshold : NativeHistogramOptions.defaultZeroThreshold)
    }

    /// Whether a sample of `shape` can add to this family.
    func accepts(_ shape: HistogramShape) -> Bool {
        switch shape {
        case .observation: true
        case .binned: native == nil
        case .exponential: native != nil && bounds.isEmpty
        }
    }

    mutating func add(_ b: BinnedHistogram, bounds sampleBounds: ArraySlice<Double>, sum: Double, series i: Int) -> DropReason? {
        guard b.counts.count == sampleBounds.count + 1, (values[i] + sum).isFinite, (counts[i] + b.count).isFinite else {
            return b.counts.count == sampleBounds.count + 1 ? .valueOverflow : .badBuckets
        }
        let n = bounds.count
        let base = i * (n + 1)
        if sampleBounds.elementsEqual(bounds) {
            for (k, c) in b.counts.enumerated() { bucketCounts[base + k] += c }
        } else {
            for (k, c) in b.counts.enumerated() where c > 0 {
                let upper = k < sampleBounds.count ? sampleBounds[sampleBounds.startIndex + k] : .infinity
                bucketCounts[base + MetricStore.bucketIndex(upper, bounds: bounds)] += c
            }
        }
        values[i] += sum
        counts[i] += b.count
        return nil
    }

    mutating func add(_ e: ExponentialHistogram, sum: Double, series i: Int) -> DropReason? {
        guard let options = native else { return .badBuckets }
        guard (values[i] + sum).isFinite, (counts[i] + e.count).isFinite else { return .valueOverflow }
        natives[i].merge(e, options: options)
        values[i] += sum
        counts[i] += e.count
        return nil
    }
}

extension SparseBuckets {
    /// Adds `n` at `key`; true when the bucket is new.
    mutating func add(_ key: Int32, count n: UInt64) -> Bool {
        var lo = 0, hi = keys.count
        while lo < hi { let mid = (lo + hi) / 2; if keys[mid] < key { lo = mid + 1 } else { hi = mid } }
        if lo < keys.count && keys[lo] == key { counts[lo] &+= n; return false }
        keys.insert(key, at: lo)
        counts.insert(n, at: lo)
        return true
    }
}

extension NativeHistogram {
    /// Adds exponential buckets. OTLP's bucket `i` is `(base^i, base^(i+1)]`,
    /// Prometheus's key `k` is `(base^(k-1), base^k]`: key = index + 1, after the
    /// index is downscaled (`i >> d`, as OTLP downscales) to the series' schema. A
    /// series at a finer schema than the sample is halved first; afterwards the
    /// series halves further while it holds more than `maxBuckets`, as `observe` does.
    mutating func merge(_ e: ExponentialHistogram, options: NativeHistogramOptions) {
        let target = min(Int(schema), min(8, e.scale))
        while Int(schema) > target { positive.halve(); negative.halve(); schema -= 1 }
        let shift = e.scale - target
        zeroCount &+= UInt64(e.zeroCount)
        for (buckets, offset, negativeSide) in [(e.positive, e.positiveOffset, false), (e.negative, e.negativeOffset, true)] {
            for (j, c) in buckets.enumerated() where c >= 1 {
                let key = Int32(((offset + j) >> shift) + 1)
                _ = negativeSide ? negative.add(key, count: UInt64(c)) : positive.add(key, count: UInt64(c))
            }
        }
        guard options.maxBuckets > 0 else { return }
        while positive.count + negative.count > options.maxBuckets && schema > -4 {
            positive.halve(); negative.halve(); schema -= 1
        }
    }
}
