import Pipeline

/// Everything the store holds, as a state file keeps it: value copies, taken under
/// the shard locks, so that writing it out needs no lock.
public struct StoreState: Sendable {
    struct Series: Sendable {
        var key: [UInt8]
        var value: Double
        var count: Double
        var buckets: ArraySlice<Double>
        /// Nanoseconds since the last update (kept only for families with a TTL).
        var age: UInt64?
        var window: SummaryWindow.State?
        /// Native buckets (histograms kept as native ones).
        var native: NativeHistogram? = nil
        /// Latest exemplar per slot (see `Family.exemplars`); empty: none.
        var exemplars: [Exemplar?] = []
    }
    public struct FamilyState: Sendable {
        public var name: [UInt8]
        var type: MetricType
        var help: [UInt8]
        var bounds: [Double]
        var objectives: [(Double, Double)]
        var series: [Series]
        var native: NativeHistogramOptions? = nil
    }
    public var families: [FamilyState] = []
    /// Source stream → last element applied.
    public var positions: [(stream: String, through: UInt64)] = []
    /// Unix time of the capture, in nanoseconds (ages are relative to it).
    var writtenAt: UInt64 = 0


    public var seriesCount: Int { families.reduce(0) { $0 + $1.series.count } }
}

/// Families copied under the apply lock with their summary windows' states and the
/// clock then: what a snapshot or a handed-on state is made from, outside any lock.
public typealias CapturedFamilies = (families: [Family], windows: [[SummaryWindow.State]], now: UInt64)

extension MetricStore {
    /// A copy of every family, consistent per shard: copy-on-write arrays (O(1) per
    /// family) and summary-window states (the windows are shared references). The
    /// caller keeps `apply` out meanwhile (the sink holds its apply lock), so it is
    /// consistent as a whole; turning it into a `StoreState` needs no lock.
    public func captureFamilies() -> (families: [Family], windows: [[SummaryWindow.State]], now: UInt64) {
        let now = clock()
        var families: [Family] = []
        var windows: [[SummaryWindow.State]] = []
        for shard in shards {
            shard.state.withLock { st in
                for f in st.families where f.series.count > 0 {
                    families.append(f)
                    windows.append(f.windows.map { $0.state(now: now) })
                }
            }
        }
        return (families, windows, now)
    }

    /// Every family with series, copied (copy-on-write), without the summary-window
    /// states `captureFamilies` takes: what a loaded state's stamps are read from.
    func familyCopies() -> [Family] {
        shards.flatMap { shard in shard.state.withLock { st in st.families.filter { $0.series.count > 0 } } }
    }

    /// The captured families as a state file holds them (outside any lock).
    public static func state(of captured: (families: [Family], windows: [[SummaryWindow.State]], now: UInt64)) -> StoreState {
        var out = StoreState()
        out.writtenAt = wallClockNanos()
        for (f, windows) in zip(captured.families, captured.windows) {
            out.families.append(familyState(f, windows: windows, now: captured.now, series: 0..<f.series.count))
        }
        return out
    }

    /// One captured family, the series in `range` only (a state-file part).
    static func familyState(_ f: Family, windows: [SummaryWindow.State], now: UInt64, series range: Range<Int>) -> StoreState.FamilyState {
        var fs = StoreState.FamilyState(name: f.name, type: f.type, help: f.help, bounds: f.bounds, objectives: f.objectives, series: [],
                                        native: f.native)
        fs.series.reserveCapacity(range.count)
        let nb = f.bounds.count + 1
        let hasCount = f.type == .histogram || f.type == .summary
        f.withLabelTexts { texts in
            for i in range {
                fs.series.append(StoreState.Series(
                    key: Array(texts.text(i)), value: f.values[i], count: hasCount ? f.counts[i] : 0,
                    buckets: f.type == .histogram ? f.bucketCounts[(i * nb)..<((i + 1) * nb)] : [],
                    age: f.ttl > 0 ? (now > f.lastUpdate[i] ? now - f.lastUpdate[i] : 0) : nil,
                    window: windows.isEmpty ? nil : windows[i],
                    native: f.natives.isEmpty ? nil : f.natives[i],
                    exemplars: f.exemplars.isEmpty ? [] : f.exemplars[i]))
            }
        }
        return fs
    }

    /// `captureFamilies` and `state(of:)` in one (for tests and tools).
    func captureState() -> StoreState { Self.state(of: captureFamilies()) }

    /// Replaces an empty store's contents with `state` (at start, before any apply).
    /// Families and series the current limits would refuse are kept: what was
    /// aggregated is not thrown away by a restart. Native buckets are kept while the
    /// name still matches `native_histograms` (then new series and series that had
    /// none start empty); without a match the family goes on as a classic one.
    public func restore(_ state: StoreState) {
        let now = clock()
        let wall = wallClockNanos()
        let downtime = wall > state.writtenAt ? wall - state.writtenAt : 0   // series age while the gateway was down too
        for fs in state.families {
            let nameHash = fs.name.withUnsafeBytes { hashBytes($0) }
            let shard = shards[Int(nameHash % UInt64(Self.shardCount))]
            let reserved = fs.name.withUnsafeBytes { reserveNames(of: $0, type: fs.type) }
            guard reserved else { continue }   // two families of one state cannot collide, but be safe
            var f = Family(name: fs.name, type: fs.type)
            f.incarnation = nextIncarnation()
            f.help = fs.help
            f.bounds = fs.bounds
            f.objectives = fs.objectives
            f.ttl = limits.ttl(for: f.name)
            // A native-only family (an OTLP exponential histogram's) keeps the options it was made with.
            if fs.type == .histogram { f.native = nativeOptions(for: f.name) ?? (fs.bounds.isEmpty ? fs.native : nil) }
            let slots = fs.type == .histogram ? fs.bounds.count + 1 : 1
            let withExemplars = fs.series.contains { !$0.exemplars.isEmpty }
            var key: [UInt8] = []
            for s in fs.series {
                // The file keeps label text; a table holds `ByteKeyTable.capacity` series (an older build's file may have more).
                guard let (names, values) = SeriesKey.parse(text: s.key) else { continue }
                let schema = names.withUnsafeBytes { n in f.schemas.locate(n, hash: hashBytes(n)) ?? f.schemas.insert(n, hash: hashBytes(n)) }
                guard let schema, !f.series.isFull else { break }
                values.withUnsafeBytes { SeriesKey.assemble(schema: schema, values: $0, into: &key) }
                let added = key.withUnsafeBytes { k in
                    let hash = hashBytes(k)
                    return f.series.find(k, hash: hash) == nil && f.series.insert(k, hash: hash) != nil
                }
                guard added else { continue }   // a file cannot repeat a series
                f.values.append(s.value)
                if (f.values.count - 1) &>> Family.chunkShift >= f.chunkEdits.count { f.chunkEdits.append(0) }
                switch f.type {
                case .histogram:
                    f.counts.append(s.count)
                    let nb = f.bounds.count + 1
                    var b = Array(s.buckets.prefix(nb))
                    while b.count < nb { b.append(0) }
                    f.bucketCounts.append(contentsOf: b)
                    if let n = f.native { f.natives.append(s.native ?? NativeHistogram(schema: n.schema)) }
                case .summary:
                    f.counts.append(s.count)
                    if !f.objectives.isEmpty {
                        let w = s.window.map { SummaryWindow(objectives: f.objectives, maxAge: summaryMaxAge, ageBuckets: summaryAgeBuckets,
                                now: now, state: $0, elapsed: downtime) }
                            ?? SummaryWindow(objectives: f.objectives, maxAge: summaryMaxAge, ageBuckets: summaryAgeBuckets, now: now)
                        f.windows.append(w)
                        f.quantiles.append(contentsOf: repeatElement(.nan, count: f.objectives.count))
                    }
                default: break
                }
                if f.ttl > 0 {
                    let age = (s.age ?? 0) &+ downtime
                    f.lastUpdate.append(now >= age ? now - age : 0)
                }
                if withExemplars { f.exemplars.append(s.exemplars.count == slots ? s.exemplars : []) }
            }
            countRestored(f.type, f.series.count)
            shard.state.withLock { st in
                _ = fs.name.withUnsafeBytes { st.names.insert($0, hash: nameHash) }
                st.families.append(f)
            }
        }
    }
}

extension MetricStore {
    /// `captureFamilies`, only the families whose name `keep` keeps.
    public func captureFamilies(where keep: ([UInt8]) -> Bool) -> (families: [Family], windows: [[SummaryWindow.State]], now: UInt64) {
        let now = clock()
        var families: [Family] = []
        var windows: [[SummaryWindow.State]] = []
        for shard in shards {
            shard.state.withLock { st in
                for f in st.families where f.series.count > 0 && keep(f.name) {
                    families.append(f)
                    windows.append(f.windows.map { $0.state(now: now) })
                }
            }
        }
        return (families, windows, now)
    }

    /// Removes whole families (their names too, so another state may bring them
    /// back): a shard handed to another gateway. Returns the series removed.
    @discardableResult
    public func removeFamilies(where doomed: ([UInt8]) -> Bool) -> Int {
        var removed = 0
        var freed: [[UInt8]] = []
        for shard in shards {
            shard.state.withLock { st in
                guard st.families.contains(where: { doomed($0.name) }) else { return }
                var kept = ShardState()
                for f in st.families {
                    if doomed(f.name) {
                        removed += f.series.count
                        seriesCountsSubtract(f.type, f.series.count)
                        freed.append(f.name)
                        continue
                    }
                    _ = f.name.withUnsafeBytes { kept.names.insert($0, hash: hashBytes($0)) }
                    kept.families.append(f)
                }
                st = kept
            }
        }
        releaseNames(of: freed)
        return removed
    }
}
