import Pipeline
import Synchronization

/// One metric family: its fixed type, help, layout, and all its series in
/// column arrays (index = series index in `series`).
public struct Family: Sendable {
    public var name: [UInt8]
    public let type: MetricType
    public internal(set) var help: [UInt8] = []
    /// Histogram upper bounds: finite, sorted, unique; `+Inf` is implied.
    public internal(set) var bounds: [Double] = []
    /// Summary (quantile, epsilon) objectives, from the first sample of the family.
    public internal(set) var objectives: [(Double, Double)] = []
    /// Series identity: its key (`SeriesKey`: label-name list number, values) → series index.
    var series = ByteKeyTable()
    /// The label-name lists of the family's series (`SeriesKey` signatures) → their number.
    var schemas = ByteKeyTable()
    /// The name list a sample of the family last had (-1: none yet), compared first.
    var lastSchema = -1
    /// counter/gauge value; histogram/summary `_sum`.
    public internal(set) var values: [Double] = []
    /// histogram/summary `_count`.
    public internal(set) var counts: [Double] = []
    /// Histogram: `bounds.count + 1` non-cumulative bucket counts per series.
    public internal(set) var bucketCounts: [Double] = []
    /// Summary with objectives: one window per series (reference, never rendered directly).
    var windows: [SummaryWindow] = []
    /// Summary quantile estimates, refreshed under the lock when a snapshot is taken.
    public internal(set) var quantiles: [Double] = []
    /// Series expire after this many nanoseconds without an update (0: never).
    var ttl: UInt64 = 0
    /// Last update per series, kept only when `ttl > 0`.
    var lastUpdate: [UInt64] = []
    /// Bumped whenever series are removed, so cached render orders are rebuilt.
    var generation = 0
    /// Histogram: kept as a native histogram too (nil: classic only).
    public internal(set) var native: NativeHistogramOptions?
    /// One per series when `native` is set.
    public internal(set) var natives: [NativeHistogram] = []
    /// Empty until the family's first exemplar; then one entry per series, itself
    /// empty until that series' first exemplar, then one slot per counter or per
    /// histogram bucket (the `+Inf` one last): the latest exemplar that landed there.
    var exemplars: [[Exemplar?]] = []
    /// What the state file compares to rewrite only what changed (`SnapshotPlan`):
    /// which family this is (new when one is created or restored), edits that touch
    /// every series (help set, series removed), and per chunk of `chunkSeries`
    /// series the samples applied to it.
    var incarnation: UInt64 = 0
    var edits: UInt64 = 0
    var chunkEdits: [UInt64] = []
    static let chunkShift = 12
    static let chunkSeries = 1 << chunkShift

    init(name: [UInt8], type: MetricType) { self.name = name; self.type = type }
}

/// The latest exemplar of a counter series or histogram bucket: its labels as
/// exposition text (`trace_id="…"`, in the order sent), value and Unix time in
/// seconds (NaN: none given).
struct Exemplar: Sendable, Equatable {
    var labels: [UInt8]
    var value: Double
    var timestamp: Double
}

/// Aggregates samples into families and series.
///
/// Families live in 16 shards chosen by a hash of the metric name; each shard has
/// its own lock. Applying a sample holds one shard lock for a few hash lookups and
/// additions. A scrape takes each shard lock only long enough to copy the shard
/// (copy-on-write arrays: O(1), plus summary quantile queries) and renders outside
/// the locks, so ingestion waits at most one shard copy, and a histogram is never
/// seen half-applied. Series are removed only by expiry (`SeriesLimits.expireAfter`,
/// `sweep`) and the admin API (`delete(matching:)`), which rebuild the family without them.
///
/// **Page validity.** A series is its label *set*: the key is the label text in
/// label-name order, whatever order the sample had, so one series is never two
/// lines (and the page shows labels sorted, as client_golang does). A family
/// reserves every name it renders (`FamilyNames`); a sample whose family would
/// collide with another's is dropped (`name_collision`), the first family wins.
public final class MetricStore: Sendable {
    struct ShardState: Sendable {
        var names = ByteKeyTable()
        public var families: [Family] = []
    }
    final class Shard: Sendable {
        let state = Mutex(ShardState())   // protects the shard's families
    }

    static let shardCount = 16
    let shards: [Shard] = (0..<MetricStore.shardCount).map { _ in Shard() }
    let summaryMaxAge: Duration
    let summaryAgeBuckets: Int
    let clock: @Sendable () -> UInt64
    let limits: SeriesLimits
    /// Histogram names (globs, first match wins) kept as native histograms too.
    let nativeHistograms: [(pattern: String, options: NativeHistogramOptions)]
    private let seriesCounts = (0..<4).map { _ in Count() }   // by MetricType
    private let totalSeries = Atomic<Int>(0)
    /// Every name a family renders → that family's name. Taken only when a family
    /// is created, always after (inside) a shard lock.
    private let renderedNames = Mutex<[[UInt8]: [UInt8]]>([:])
    private let incarnations = Atomic<UInt64>(0)
    /// A family's identity for `Family.stamp` (taken when a family is created or restored).
    func nextIncarnation() -> UInt64 { incarnations.add(1, ordering: .relaxed).newValue }

    /// A relaxed atomic count in a class (`Atomic` cannot be an array element): a
    /// count for telemetry and limits, which orders no other memory access.
    final class Count: Sendable {
        private let value = Atomic<Int>(0)
        var current: Int { value.load(ordering: .relaxed) }
        func add(_ n: Int) { value.add(n, ordering: .relaxed) }
    }

    public init(summaryMaxAge: Duration = .seconds(600), summaryAgeBuckets: Int = 5, limits: SeriesLimits = SeriesLimits(),
                nativeHistograms: [(pattern: String, options: NativeHistogramOptions)] = [],
                clock: @escaping @Sendable () -> UInt64 = monotonicNanos) {
        self.summaryMaxAge = summaryMaxAge
        self.summaryAgeBuckets = summaryAgeBuckets
        self.limits = limits
        self.nativeHistograms = nativeHistograms
        self.clock = clock
    }

    func nativeOptions(for name: [UInt8]) -> NativeHistogramOptions? {
        guard !nativeHistograms.isEmpty else { return nil }
        let text = String(decoding: name, as: UTF8.self)
        return nativeHistograms.first { globMatch($0.pattern, text) }?.options
    }

    /// Live series of one type.
    public func seriesCount(_ type: MetricType) -> Int { seriesCounts[Int(type.rawValue)].current }

    /// Live series of all types.
    public var seriesCount: Int { totalSeries.load(ordering: .relaxed) }

    /// Counts series a state file brought back.
    func countRestored(_ type: MetricType, _ n: Int) {
        seriesCounts[Int(type.rawValue)].add(n)
        totalSeries.add(n, ordering: .relaxed)
    }

    /// Applies every live sample of `batch` in order; drops what cannot be applied.
    /// `scratch` is a reused buffer for series keys.
    public func apply(_ batch: inout Batch, scratch: inout [UInt8]) {
        var rejected: [(Int, DropReason)] = []
        var order: [Int] = []
        order.reserveCapacity(16)
        let now = clock()
        let s = batch.samples
        s.bytes.withUnsafeBytes { arena in s.labels.withUnsafeBufferPointer { labels in
            for i in s.records.indices where !s.records[i].isDropped {
                let r = s.records[i]
                let name = slice(arena, r.name)
                let written = SeriesKey.write(r, labels: labels, arena: arena, order: &order, into: &scratch)
                let nameHash = hashBytes(name)
                // Borrowed, not retained and released per sample: `shards` (a `let`) holds every shard for the store's life.
                let reason: DropReason? = Unmanaged.passUnretained(shards[Int(nameHash % UInt64(Self.shardCount))])
                    ._withUnsafeGuaranteedRef { shard in
                        scratch.withUnsafeMutableBytes { buffer in
                            shard.state.withLock { st in
                                applyLocked(&st, sample: r, batch: s, arena: arena, name: name, nameHash: nameHash, key: buffer.baseAddress!,
                                            written: written, now: now)
                            }
                        }
                    }
                if let reason { rejected.append((i, reason)) }
            }
        } }
        for (i, reason) in rejected { batch.drop(sample: i, reason: reason) }
    }

    private func applyLocked(_ st: inout ShardState, sample r: SampleRecord, batch s: SampleBatch,
                             arena: UnsafeRawBufferPointer, name: UnsafeRawBufferPointer, nameHash: UInt64,
                             key buffer: UnsafeMutableRawPointer, written: SeriesKey.Written, now: UInt64) -> DropReason? {
        let f: Int
        if let existing = st.names.find(name, hash: nameHash) {
            f = existing
            guard st.families[f].type == r.type else { return .typeConflict }
        } else {
            guard NameSyntax.isValidMetricName(name) else { return .invalidName }
            guard !name.starts(with: Telemetry.prefix.utf8) else { return .reservedName }
            if let reason = Self.checkValue(r) { return reason }
            guard !st.names.isFull else { return .seriesLimit }
            guard reserveNames(of: name, type: r.type) else { return .nameCollision }
            var family = Family(name: Array(name), type: r.type)
            family.incarnation = nextIncarnation()
            family.ttl = limits.ttl(for: family.name)
            switch r.type {
            case .histogram where r.shape == .exponential:
                guard let e = ExponentialHistogram(numbers: s.numbers(r.bins)) else { return .badBuckets }
                family.native = nativeOptions(for: family.name) ?? Family.nativeOptions(for: e)
            case .histogram:
                family.native = nativeOptions(for: family.name)
                guard r.buckets.count > 0 || family.native != nil || r.shape == .binned else { return .badBuckets }
                family.bounds = histogramBounds(s.numbers(r.buckets))
            case .summary:
                let q = Array(s.numbers(r.quantiles)), e = Array(s.numbers(r.epsilons))
                if q.count == e.count {
                    var objectives: [(Double, Double)] = []
                    for (quantile, epsilon) in zip(q, e) where quantile > 0 && quantile < 1 && epsilon >= 0 && epsilon < 1 {
                        objectives.append((quantile, epsilon))
                    }
                    // One line per quantile: a repeated quantile keeps its tightest epsilon.
                    objectives.sort { ($0.0, $0.1) < ($1.0, $1.1) }
                    var unique: [(Double, Double)] = []
                    for o in objectives where unique.last?.0 != o.0 { unique.append(o) }
                    family.objectives = unique
                }
            default: break
            }
            f = st.names.insert(name, hash: nameHash)!   // not full: checked above
            st.families.append(family)
        }
        if let reason = Self.checkValue(r) { return reason }
        // Without buckets only a native histogram can take the observation.
        if r.type == .histogram {
            guard st.families[f].accepts(r.shape) else { return .badBuckets }
            if r.shape == .observation && r.buckets.count == 0 && st.families[f].native == nil { return .badBuckets }
        }
        if st.families[f].help.isEmpty, r.help.count > 0 {
            let help = slice(arena, r.help)
            if String(validating: help, as: UTF8.self) != nil { st.families[f].help = Array(help); st.families[f].edits &+= 1 }
        }
        // The key: the number of the sample's label-name list in front of its values.
        let names = UnsafeRawBufferPointer(start: buffer + written.valuesEnd, count: written.namesEnd - written.valuesEnd)
        // Most families have one name list: the one used last is compared before any hashing.
        let last = st.families[f].lastSchema
        var schema: Int? = last >= 0 && st.families[f].schemas.matches(last, names) ? last : nil
        if schema == nil {
            schema = st.families[f].schemas.locate(names, hash: hashBytes(names))
            if let schema { st.families[f].lastSchema = schema }
        }
        func key(_ schema: Int) -> UnsafeRawBufferPointer {
            let start = SeriesKey.prefix(schema, buffer)
            return UnsafeRawBufferPointer(start: buffer + start, count: written.valuesEnd - start)
        }
        var existing: Int?
        var keyHash: UInt64 = 0
        if let schema {
            let k = key(schema)
            keyHash = hashBytes(k)
            existing = st.families[f].series.locate(k, hash: keyHash)
        }
        let index: Int
        if let existing {
            index = existing
        } else {
            if let reason = Self.checkNewSeries(r, batch: s, arena: arena) { return reason }
            if limits.maxSeriesPerMetric > 0, st.families[f].series.count >= limits.maxSeriesPerMetric { return .seriesLimit }
            if st.families[f].series.isFull { return .seriesLimit }
            if limits.maxSeries > 0 {
                // Reserve a slot first so concurrent shards cannot overshoot the cap.
                guard totalSeries.add(1, ordering: .relaxed).newValue <= limits.maxSeries else {
                    totalSeries.subtract(1, ordering: .relaxed)
                    return .seriesLimit
                }
            } else {
                totalSeries.add(1, ordering: .relaxed)
            }
            if schema == nil {   // a new name list is kept only for a series that is kept
                guard let n = st.families[f].schemas.insert(names, hash: hashBytes(names)) else {
                    totalSeries.subtract(1, ordering: .relaxed)
                    return .seriesLimit
                }
                schema = n
                keyHash = hashBytes(key(n))
            }
            index = addSeries(&st.families[f], key: key(schema!), hash: keyHash, now: now)
        }
        st.families[f].chunkEdits[index &>> Family.chunkShift] &+= 1   // may change it (a drop costs a rewrite)
        switch r.shape {
        case .observation:
            if let reason = observe(&st.families[f], series: index, value: r.value, now: now) { return reason }
        case .binned:
            guard let b = BinnedHistogram(numbers: s.numbers(r.bins)) else { return .badBuckets }
            if let reason = st.families[f].add(b, bounds: s.numbers(r.buckets), sum: r.value, series: index) { return reason }
            if st.families[f].ttl > 0 { st.families[f].lastUpdate[index] = now }
        case .exponential:
            guard let e = ExponentialHistogram(numbers: s.numbers(r.bins)) else { return .badBuckets }
            if let reason = st.families[f].add(e, sum: r.value, series: index) { return reason }
            if st.families[f].ttl > 0 { st.families[f].lastUpdate[index] = now }
        }
        if let e = s.exemplar(of: r) { Self.keep(e, in: &st.families[f], series: index, batch: s, arena: arena) }
        return nil
    }

    /// Stores `e` as the latest exemplar of the series (counter) or of the bucket
    /// its value falls in (histogram).
    private static func keep(_ e: ExemplarRef, in f: inout Family, series i: Int, batch s: SampleBatch, arena: UnsafeRawBufferPointer) {
        let slots = f.type == .histogram ? f.bounds.count + 1 : 1
        if f.exemplars.isEmpty { f.exemplars = Array(repeating: [], count: f.series.count) }
        if f.exemplars[i].isEmpty { f.exemplars[i] = Array(repeating: nil, count: slots) }
        var labels: [UInt8] = []
        for l in e.labelRange {
            if !labels.isEmpty { labels.append(0x2C) }
            labels.append(contentsOf: slice(arena, s.labels[l].name))
            labels.append(0x3D); labels.append(0x22)
            TextFormat.appendLabelValue(slice(arena, s.labels[l].value), to: &labels)
            labels.append(0x22)
        }
        let slot = f.type == .histogram ? bucketIndex(e.value, bounds: f.bounds) : 0
        f.exemplars[i][slot] = Exemplar(labels: labels, value: e.value, timestamp: e.timestamp)
    }

    /// The classic bucket `v` falls in (`bounds.count` for `+Inf`).
    @inline(__always)
    static func bucketIndex(_ v: Double, bounds: [Double]) -> Int {
        let n = bounds.count
        if n <= 16 {
            var k = 0
            while k < n && v > bounds[k] { k += 1 }
            return k
        }
        var lo = 0, hi = n
        while lo < hi { let mid = (lo + hi) / 2; if v > bounds[mid] { lo = mid + 1 } else { hi = mid } }
        return lo
    }

    func seriesCountsSubtract(_ type: MetricType, _ n: Int) {
        seriesCounts[Int(type.rawValue)].add(-n)
        totalSeries.subtract(n, ordering: .relaxed)
    }

    /// Gives up the names removed families rendered.
    func releaseNames(of families: [[UInt8]]) {
        guard !families.isEmpty else { return }
        let gone = Set(families)
        renderedNames.withLock { taken in taken = taken.filter { !gone.contains($0.value) } }
    }

    /// Claims every name a new family `name` of `type` renders; false when one is
    /// already another family's.
    func reserveNames(of name: UnsafeRawBufferPointer, type: MetricType) -> Bool {
        let owner = Array(name)
        let names = FamilyNames.rendered(by: owner, type: type)
        return renderedNames.withLock { taken in
            guard !names.contains(where: { taken[$0] != nil && taken[$0] != owner }) else { return false }
            for n in names { taken[n] = owner }
            return true
        }
    }

    /// Values the exposition cannot carry for the type (defence if `validate` is not in the pipeline).
    private static func checkValue(_ r: SampleRecord) -> DropReason? {
        switch r.type {
        case .counter: return r.value.isFinite && r.value >= 0 ? nil : .badValue
        case .gauge: return nil
        case .histogram, .summary: return r.value.isFinite ? nil : .badValue
        }
    }

    /// Label checks run once per new series, so exposition stays valid whatever the
    /// pipeline in front of the sink lets through.
    private static func checkNewSeries(_ r: SampleRecord, batch s: SampleBatch, arena: UnsafeRawBufferPointer) -> DropReason? {
        for l in r.labelRange {
            let n = slice(arena, s.labels[l].name)
            guard NameSyntax.isUsableLabelName(n) else { return .invalidLabelName }
            if r.type == .histogram && n.elementsEqual("le".utf8) || r.type == .summary && n.elementsEqual("quantile".utf8) {
                return .reservedLabel
            }
            for m in r.labelRange.lowerBound..<l where slice(arena, s.labels[m].name).elementsEqual(n) { return .invalidLabelName }
            guard String(validating: slice(arena, s.labels[l].value), as: UTF8.self) != nil else { return .invalidLabelValue }
        }
        return nil
    }

    private func addSeries(_ f: inout Family, key: UnsafeRawBufferPointer, hash: UInt64, now: UInt64) -> Int {
        let index = f.series.insert(key, hash: hash)!   // not full: checked by the caller
        f.values.reserveGrowingByAQuarter(adding: 1)
        f.values.append(0)
        switch f.type {
        case .counter, .gauge: break
        case .histogram:
            f.counts.reserveGrowingByAQuarter(adding: 1)
            f.counts.append(0)
            f.bucketCounts.reserveGrowingByAQuarter(adding: f.bounds.count + 1)
            f.bucketCounts.append(contentsOf: repeatElement(0, count: f.bounds.count + 1))
            if let n = f.native { f.natives.reserveGrowingByAQuarter(adding: 1); f.natives.append(NativeHistogram(schema: n.schema)) }
        case .summary:
            f.counts.reserveGrowingByAQuarter(adding: 1)
            f.counts.append(0)
            if !f.objectives.isEmpty {
                f.windows.reserveGrowingByAQuarter(adding: 1)
                f.windows.append(SummaryWindow(objectives: f.objectives, maxAge: summaryMaxAge, ageBuckets: summaryAgeBuckets, now: now))
                f.quantiles.reserveGrowingByAQuarter(adding: f.objectives.count)
                f.quantiles.append(contentsOf: repeatElement(.nan, count: f.objectives.count))
            }
        }
        if f.ttl > 0 { f.lastUpdate.reserveGrowingByAQuarter(adding: 1); f.lastUpdate.append(now) }
        if !f.exemplars.isEmpty { f.exemplars.append([]) }
        if index &>> Family.chunkShift >= f.chunkEdits.count { f.chunkEdits.append(0) }
        seriesCounts[Int(f.type.rawValue)].add(1)
        return index
    }

    /// Adds `v` to series `i`; a sum that would become infinite drops the sample
    /// (`value_overflow`) and leaves the series as it was.
    @inline(__always)
    private func observe(_ f: inout Family, series i: Int, value v: Double, now: UInt64) -> DropReason? {
        if f.type != .gauge, !(f.values[i] + v).isFinite { return .valueOverflow }
        if f.ttl > 0 { f.lastUpdate[i] = now }
        switch f.type {
        case .counter: f.values[i] += v
        case .gauge: f.values[i] = v
        case .histogram:
            f.values[i] += v
            f.counts[i] += 1
            let n = f.bounds.count
            f.bucketCounts[i * (n + 1) + Self.bucketIndex(v, bounds: f.bounds)] += 1
            if let options = f.native { f.natives[i].observe(v, options: options) }
        case .summary:
            f.values[i] += v
            f.counts[i] += 1
            if !f.windows.isEmpty { f.windows[i].observe(v, now: now) }
        }
        return nil
    }

    /// Removes series not updated within their family's TTL; returns how many.
    /// Rebuilds an affected family (O(series of that family)) under its shard lock.
    @discardableResult
    public func sweep() -> Int {
        let now = clock()
        var removed = 0
        for shard in shards {
            shard.state.withLock { st in
                for f in st.families.indices where st.families[f].ttl > 0 {
                    let ttl = st.families[f].ttl
                    let stale = st.families[f].lastUpdate.contains { now &- $0 >= ttl && now >= $0 }
                    guard stale else { continue }
                    let updates = st.families[f].lastUpdate
                    removed += compact(&st.families[f], keeping: { now &- updates[$0] < ttl || now < updates[$0] })
                }
            }
        }
        return removed
    }

    /// Removes the series `selectors` select (any of them) and returns them as
    /// exposition text (`name{labels}`, at most `listed`) with their number; the
    /// families stay, as after expiry. For the admin API.
    public func delete(matching selectors: [SeriesSelector], listed: Int = 1000) -> (count: Int, series: [String]) {
        let data = selectors.map { $0.makeMatchData() }
        var count = 0
        var listedSeries: [String] = []
        for shard in shards {
            shard.state.withLock { st in
                for f in st.families.indices {
                    let family = st.families[f]
                    var doomed: Set<Int> = []
                    family.withLabelTexts { texts in
                        for i in 0..<family.series.count {
                            let text = texts.text(i)
                            let labels = Self.labelPairs(ofKey: text)
                            guard selectors.indices.contains(where: { selectors[$0].matches(name: family.name, labels: labels,
                                    data: data[$0]) }) else { continue }
                            doomed.insert(i)
                            if listedSeries.count < listed {
                                let key = String(decoding: text, as: UTF8.self)
                                listedSeries.append(String(decoding: family.name, as: UTF8.self) + (key.isEmpty ? "" : "{\(key)}"))
                            }
                        }
                    }
                    guard !doomed.isEmpty else { continue }
                    count += compact(&st.families[f], keeping: { !doomed.contains($0) })
                }
            }
        }
        return (count, listedSeries)
    }

    /// A series key (`a="x",b="y\"z"`, exposition-escaped) as unescaped name/value pairs.
    static func labelPairs(ofKey key: UnsafeRawBufferPointer) -> [([UInt8], [UInt8])] {
        var out: [([UInt8], [UInt8])] = []
        var i = 0
        while i < key.count {
            let nameStart = i
            while i < key.count, key[i] != 0x3D { i += 1 }
            let name = Array(key[nameStart..<i])
            i += 2   // `="`
            var value: [UInt8] = []
            while i < key.count, key[i] != 0x22 {
                if key[i] == 0x5C, i + 1 < key.count {
                    value.append(key[i + 1] == UInt8(ascii: "n") ? 10 : key[i + 1])
                    i += 2
                } else {
                    value.append(key[i]); i += 1
                }
            }
            i += 2   // `",`
            out.append((name, value))
        }
        return out
    }

    /// Rebuilds `f` with the series (by index) that `keep` keeps.
    private func compact(_ f: inout Family, keeping keep: (Int) -> Bool) -> Int {
        let old = f
        var fresh = Family(name: old.name, type: old.type)
        fresh.help = old.help
        fresh.bounds = old.bounds
        fresh.objectives = old.objectives
        fresh.ttl = old.ttl
        fresh.native = old.native
        fresh.generation = old.generation + 1
        fresh.incarnation = old.incarnation
        fresh.edits = old.edits &+ 1   // indices moved: every chunk differs
        let nb = old.bounds.count + 1, k = old.objectives.count
        var renumbered = [Int](repeating: -1, count: old.schemas.count)   // name lists still used get new numbers
        var key: [UInt8] = []
        for i in 0..<old.series.count where keep(i) {
            old.series.withKey(i) { oldKey in
                let (schema, values) = SeriesKey.split(oldKey)
                if renumbered[schema] < 0 { renumbered[schema] = old.schemas.withKey(schema) { fresh.schemas.insert($0, hash: hashBytes($0))! } }
                SeriesKey.assemble(schema: renumbered[schema], values: values, into: &key)
            }
            _ = key.withUnsafeBytes { fresh.series.insert($0, hash: hashBytes($0)) }
            fresh.values.append(old.values[i])
            if (fresh.values.count - 1) &>> Family.chunkShift >= fresh.chunkEdits.count { fresh.chunkEdits.append(0) }
            if !old.lastUpdate.isEmpty { fresh.lastUpdate.append(old.lastUpdate[i]) }
            if !old.exemplars.isEmpty { fresh.exemplars.append(old.exemplars[i]) }
            if !old.natives.isEmpty { fresh.natives.append(old.natives[i]) }
            switch old.type {
            case .histogram:
                fresh.counts.append(old.counts[i])
                fresh.bucketCounts.append(contentsOf: old.bucketCounts[(i * nb)..<((i + 1) * nb)])
            case .summary:
                fresh.counts.append(old.counts[i])
                if !old.windows.isEmpty {
                    fresh.windows.append(old.windows[i])
                    fresh.quantiles.append(contentsOf: old.quantiles[(i * k)..<((i + 1) * k)])
                }
            default: break
            }
        }
        let removed = old.series.count - fresh.series.count
        f = fresh
        seriesCounts[Int(old.type.rawValue)].add(-removed)
        totalSeries.subtract(removed, ordering: .relaxed)
        return removed
    }

    /// A consistent copy of every family, with summary quantiles brought up to date.
    public func snapshot() -> [Family] {
        let now = clock()
        var out: [Family] = []
        for shard in shards {
            shard.state.withLock { st in
                for f in st.families.indices where !st.families[f].windows.isEmpty {
                    let k = st.families[f].objectives.count
                    for i in st.families[f].windows.indices {
                        let q = st.families[f].windows[i].quantiles(now: now)
                        for j in 0..<k { st.families[f].quantiles[i * k + j] = q[j] }
                    }
                }
                out.append(contentsOf: st.families)
            }
        }
        return out
    }
}

@inline(__always)
public func slice(_ arena: UnsafeRawBufferPointer, _ span: ByteSpan) -> UnsafeRawBufferPointer {
    arena[span: span]
}
