import CJansson
import Foundation
import Logging
import Aggregation
import Pipeline
import Sinks
import Redis
import Sources
import Synthetic
import Synchronization
import Transforms
import Web

/// `bench --histogram-memory classic|native|both`: bytes of RSS per histogram series.
func histogramMemory(_ variant: String) -> Never {
    let natives = variant != "classic", buckets = variant != "native"
    let before = rssBytes()
    let s = MetricStore(nativeHistograms: natives ? [("*", NativeHistogramOptions())] : [])
    let bounds: [Double] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10]
    var scratch: [UInt8] = []
    for round in 0..<20 {
        var batch = SampleBatch()
        for i in 0..<10_000 {
            var r = SampleRecord(type: .histogram, origin: 0, value: 0.001 * pow(10_000, Double((i * 7 + round * 13) % 100) / 100),
                    name: batch.appendString("bench_seconds"))
            r.labelStart = UInt32(batch.labels.count)
            batch.labels.append(LabelRef(name: batch.appendString("i"), value: batch.appendString(String(i))))
            r.labelCount = 1
            if buckets { r.buckets = batch.appendNumbers(bounds) }
            batch.records.append(r)
        }
        var b = Batch(samples: batch)
        s.apply(&b, scratch: &scratch)
    }
    print("≈\((rssBytes() - before) / 10_000) bytes of RSS per series")
    withExtendedLifetime(s) {}
    exit(0)
}


if let i = CommandLine.arguments.firstIndex(of: "--histogram-memory"), i + 1 < CommandLine.arguments.count {
    histogramMemory(CommandLine.arguments[i + 1])
}

/// `bench --remote-write SERIES`: one remote-write round of SERIES counter series (3 labels)
/// and of SERIES/10 histograms (4 buckets), encoded and snappy-compressed, 5 rounds, medians.
func remoteWriteCost(_ series: Int) -> Never {
    for (title, histograms) in [("counters", false), ("histograms (SERIES/10, 4 buckets)", true)] {
        let store = MetricStore()
        var scratch: [UInt8] = []
        let n = histograms ? series / 10 : series
        for start in stride(from: 0, to: n, by: 10_000) {
            var s = SampleBatch()
            for i in start..<min(n, start + 10_000) {
                var r = SampleRecord(type: histograms ? .histogram : .counter, origin: 0, value: 0.25,
                        name: s.appendString(histograms ? "rw_seconds" : "rw_total"))
                r.labelStart = UInt32(s.labels.count)
                for (k, v) in [("app", "bench"), ("route", "/api/\(i % 100)"), ("series", "\(i)")] {
                    s.labels.append(LabelRef(name: s.appendString(k), value: s.appendString(v)))
                }
                r.labelCount = 3
                if histograms { r.buckets = s.appendNumbers([0.1, 0.5, 1, 5]) }
                s.records.append(r)
            }
            var b = Batch(samples: s)
            store.apply(&b, scratch: &scratch)
        }
        var rounds: [RemoteWriteCost.Round] = []
        for _ in 0..<5 { rounds.append(RemoteWriteCost.round(store, clock: monotonicNanos)) }
        let r = rounds.sorted { $0.encodeSeconds + $0.compressSeconds < $1.encodeSeconds + $1.compressSeconds }[2]
        print("remote write, \(n) \(title): \(r.samples) samples in \(r.requests) requests; encode "
            + "\(String(format: "%.1f", r.encodeSeconds * 1000)) ms, "
              + "snappy \(String(format: "%.1f", r.compressSeconds * 1000)) ms "
                  + "(\(String(format: "%.0f", (r.encodeSeconds + r.compressSeconds) / Double(r.samples) * 1e9)) ns "
              + "per sample); \(r.rawBytes / 1024) KiB → \(r.compressedBytes / 1024) KiB "
                  + "(\(String(format: "%.2f", Double(r.compressedBytes) / Double(r.rawBytes))))")
    }
    exit(0)
}
/// Series `i` of the memory and snapshot benchmarks: family `bench_<type>_<i % 100>`, 3
/// labels (`code`, `method`, `path`), about 45 bytes of label text.
func benchRecord(_ i: Int, type: MetricType, value: Double, into batch: inout SampleBatch) -> SampleRecord {
    var r = SampleRecord(type: type, origin: 0, value: value, name: batch.appendString("bench_\(type.name)_\(i % 100)"))
    r.labelStart = UInt32(batch.labels.count)
    batch.labels.append(LabelRef(name: batch.appendString("code"), value: batch.appendString(String(200 + i % 5))))
    batch.labels.append(LabelRef(name: batch.appendString("method"), value: batch.appendString(i % 2 == 0 ? "GET" : "POST")))
    batch.labels.append(LabelRef(name: batch.appendString("path"), value: batch.appendString("/api/v1/item/\(i / 100)")))
    r.labelCount = 3
    return r
}

/// `--series-memory TYPE N`: N series of one type, 3 labels each (a realistic label set,
/// ~45 bytes of label text), applied in batches of 10 000; prints RSS per series beyond
/// the process's base, and the text page's render time (median of 3) and size. One type
/// per process, so the RSS of one does not hide another's.
func seriesMemory(_ typeName: String, _ n: Int) -> Never {
    guard let type = MetricType.allCases.first(where: { $0.name == typeName }) else { print("unknown type \(typeName)"); exit(2) }
    let s = MetricStore()
    let exposition = Exposition(store: s, meta: { [] })
    let bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    var scratch: [UInt8] = []
    HeapTrim.trim()
    let before = rssBytes()
    var batch = SampleBatch()
    for i in 0..<n {
        var r = benchRecord(i, type: type, value: Double(i % 7) / 10, into: &batch)
        if type == .histogram { r.buckets = batch.appendNumbers(bounds) }
        if type == .summary { r.quantiles = batch.appendNumbers([0.5, 0.9, 0.99]); r.epsilons = batch.appendNumbers([0.05, 0.01, 0.001]) }
        batch.records.append(r)
        if batch.records.count == 10_000 || i == n - 1 {
            var b = Batch(samples: batch)
            s.apply(&b, scratch: &scratch)
            batch = SampleBatch()
        }
    }
    let trimStart = ContinuousClock.now
    HeapTrim.trim()   // as the sink does once the series count has moved (`HeapTrim`)
    let trimMs = (ContinuousClock.now - trimStart).inSeconds * 1000
    let perSeries = Double(rssBytes() - before) / Double(s.seriesCount)
    _ = exposition.render(.text)   // the first render sorts the series once
    var ms: [Double] = []
    var bytes = 0
    for _ in 0..<3 {
        let start = ContinuousClock.now
        bytes = exposition.render(.text).count
        ms.append((ContinuousClock.now - start).inSeconds * 1000)
    }
    print("| \(typeName) | \(s.seriesCount) | \(Int(perSeries)) B | \(String(format: "%.0f", median(ms))) ms | \(bytes >> 20) MiB | "
        + "trim \(String(format: "%.1f", trimMs)) ms |")
    exit(0)
}
if let i = CommandLine.arguments.firstIndex(of: "--series-memory"), i + 2 < CommandLine.arguments.count {
    seriesMemory(CommandLine.arguments[i + 1], Int(CommandLine.arguments[i + 2]) ?? 1_000_000)
}

/// `--snapshot N`: the state file of N counter series (3 labels, 100 families): what
/// each snapshot writes and how long it takes when nothing changed, when one family
/// changed, when 1 % of the series (at random) changed, and when 1 % new series came.
func snapshotCost(_ n: Int) -> Never {
    let store = MetricStore()
    var scratch: [UInt8] = []
    func apply(_ ids: some Sequence<Int>) {
        var batch = SampleBatch()
        for i in ids {
            batch.records.append(benchRecord(i, type: .counter, value: 1, into: &batch))
            if batch.records.count == 10_000 { var b = Batch(samples: batch); store.apply(&b, scratch: &scratch); batch = SampleBatch() }
        }
        var b = Batch(samples: batch)
        store.apply(&b, scratch: &scratch)
    }
    apply(0..<n)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("psg-bench-snapshot-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let ctx = StageContext(id: "bench", logger: Logger(label: "bench"), telemetry: Telemetry(), health: HealthBoard(), workers: 1)
    let snapshotter = Snapshotter(path: dir.appendingPathComponent("state").path, interval: .seconds(3600), store: store, context: ctx)
    var changes: UInt64 = 0
    func snapshot(_ title: String) {
        changes += 1
        var applied = Snapshotter.Applied()
        applied.changes = changes
        let start = ContinuousClock.now
        snapshotter.write { [applied] in (store.captureFamilies(), applied) }
        let ms = (ContinuousClock.now - start).inSeconds * 1000
        let meta = ctx.telemetry.collect()
        func value(_ name: String) -> Double { meta.first { $0.name == Telemetry.prefix + name }?.samples.first?.value ?? .nan }
        func size(_ b: Double) -> String { b < 1_048_576 ? String(format: "%.0f KiB", b / 1024) : String(format: "%.1f MiB", b / 1_048_576) }
        print("| \(title) | \(size(value("snapshot_written_bytes"))) | \(size(value("snapshot_bytes"))) | \(String(format: "%.0f", ms)) ms |")
    }
    print("| \(n) counter series, 100 families | written | on disk | time |")
    print("|---|---:|---:|---:|")
    snapshot("first snapshot (everything)")
    snapshot("nothing changed (positions only)")
    apply(stride(from: 7, to: n, by: 100))
    snapshot("one family changed (1 % of the series)")
    var rng = SystemRandomNumberGenerator()
    apply((0..<(n / 100)).map { _ in Int.random(in: 0..<n, using: &rng) })
    snapshot("1 % of the series changed, at random")
    let before = store.seriesCount
    apply((n..<(n + n / 10)).lazy.map { $0 * 100 + 7 })   // family 7: i / 100 is new, so is the series
    snapshot("\(store.seriesCount - before) new series, in one family")
    exit(0)
}
if let i = CommandLine.arguments.firstIndex(of: "--snapshot"), i + 1 < CommandLine.arguments.count {
    snapshotCost(Int(CommandLine.arguments[i + 1]) ?? 1_000_000)
}

if let i = CommandLine.arguments.firstIndex(of: "--remote-write"), i + 1 < CommandLine.arguments.count {
    remoteWriteCost(Int(CommandLine.arguments[i + 1]) ?? 100_000)
}

/// `bench --otlp REQUESTS`: the otlp source's decoding and mapping of REQUESTS protobuf
/// exports of 100 delta points (60 counters, 30 gauges, 10 histograms of 5 bounds, 3
/// attributes each) against json_decode's decoding of the same 100 samples as JSON
/// elements (a histogram as one observation), both then applied to a store; and the
/// stream table's memory per cumulative stream. Medians of 5 runs, one core.
func otlpBodies(_ requests: Int) -> (bodies: [[UInt8]], elements: [[UInt8]]) {
    typealias W = ProtobufFormat
    func kv(_ k: String, _ v: String) -> [UInt8] {
        var any: [UInt8] = [], out: [UInt8] = []
        W.stringField(1, v, to: &any)
        W.stringField(1, k, to: &out); W.message(2, any, to: &out)
        return out
    }
    func fixed64(_ field: Int, _ v: UInt64, to out: inout [UInt8]) {
        W.tag(field, 1, to: &out)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
    var bodies: [[UInt8]] = [], elements: [[UInt8]] = []
    let now = UInt64(Date().timeIntervalSince1970 * 1e9)
    for r in 0..<requests {
        var metrics: [UInt8] = []
        // As SDKs send them: one Metric per instrument, its points inside.
        var counterPoints: [UInt8] = [], gaugePoints: [UInt8] = [], histogramPoints: [UInt8] = []
        for k in 0..<100 {
            let route = "/api/\((r * 100 + k) % 100)", code = String(200 + k % 5)
            var point: [UInt8] = []
            for (key, value) in [("route", route), ("code", code), ("method", "GET")] { W.message(k < 90 ? 7 : 9, kv(key, value), to: &point) }
            fixed64(2, now - 1_000_000_000, to: &point); fixed64(3, now, to: &point)
            let labels = "\"job\":\"shop/bench\",\"route\":\"\(route)\",\"code\":\"\(code)\",\"method\":\"GET\""
            if k < 60 {
                W.doubleField(4, 1, to: &point)
                W.message(1, point, to: &counterPoints)
                elements.append(Array("{\"type\":\"counter\",\"name\":\"bench_requests_total\",\"value\":1,\"labels\":{\(labels)}}".utf8))
            } else if k < 90 {
                W.doubleField(4, Double(k), to: &point)
                W.message(1, point, to: &gaugePoints)
                elements.append(Array("{\"type\":\"gauge\",\"name\":\"bench_temperature\",\"value\":\(k),\"labels\":{\(labels)}}".utf8))
            } else {
                fixed64(4, 6, to: &point); W.doubleField(5, 3.5, to: &point)
                var counts: [UInt8] = [], bounds: [UInt8] = []
                for c: UInt64 in [1, 1, 1, 1, 1, 1] { for i in 0..<8 { counts.append(UInt8(truncatingIfNeeded: c >> (8 * UInt64(i)))) } }
                for b in [0.1, 0.25, 0.5, 1, 2.5] { for i in 0..<8 { bounds.append(UInt8(truncatingIfNeeded: b.bitPattern >> (8 * UInt64(i)))) } }
                W.message(6, counts, to: &point); W.message(7, bounds, to: &point)
                W.message(1, point, to: &histogramPoints)
                elements.append(Array(("{\"type\":\"histogram\",\"name\":\"bench_latency_seconds\",\"value\":0.3,"
                                       + "\"buckets\":[0.1,0.25,0.5,1,2.5],\"labels\":{\(labels)}}").utf8))
            }
        }
        var sum = counterPoints, metric: [UInt8] = []
        W.varintField(2, 1, to: &sum); W.varintField(3, 1, to: &sum)
        W.stringField(1, "bench.requests", to: &metric); W.message(7, sum, to: &metric)
        W.message(2, metric, to: &metrics)
        metric = []
        W.stringField(1, "bench.temperature", to: &metric); W.message(5, gaugePoints, to: &metric)
        W.message(2, metric, to: &metrics)
        var histogram = histogramPoints
        W.varintField(2, 1, to: &histogram)
        metric = []
        W.stringField(1, "bench.latency", to: &metric); W.stringField(3, "s", to: &metric); W.message(9, histogram, to: &metric)
        W.message(2, metric, to: &metrics)
        // ScopeMetrics: its `metrics` (field 2) entries, already framed.
        var resource: [UInt8] = [], rm: [UInt8] = [], body: [UInt8] = []
        let scope = metrics
        W.message(1, kv("service.name", "bench"), to: &resource); W.message(1, kv("service.namespace", "shop"), to: &resource)
        W.message(1, resource, to: &rm); W.message(2, scope, to: &rm)
        W.message(1, rm, to: &body)
        bodies.append(body)
    }
    return (bodies, elements)
}

func otlpCost(_ requests: Int) -> Never {
    let (bodies, elements) = otlpBodies(requests)
    let points = Double(requests * 100)
    let decoder = OTLPDecoder()
    func timed(_ body: () -> Void) -> Double {
        body()
        var runs: [Double] = []
        for _ in 0..<5 { let start = ContinuousClock.now; body(); runs.append((ContinuousClock.now - start).inSeconds * 1e9 / points) }
        return runs.sorted()[2]
    }
    let store = MetricStore()
    var scratch: [UInt8] = []
    let decodeOnly = timed { for b in bodies { _ = b.withUnsafeBytes { decoder.batch(protobuf: $0) } } }
    let otlpApplied = timed { for b in bodies { var batch = b.withUnsafeBytes { decoder.batch(protobuf: $0) }!; store.apply(&batch,
            scratch: &scratch) } }
    let decodedBatches = bodies.map { b in b.withUnsafeBytes { decoder.batch(protobuf: $0) }! }
    let applyOnly = timed { for b in decodedBatches { var batch = b; store.apply(&batch, scratch: &scratch) } }
    let ctx = StageContext(id: "bench", logger: Logger(label: "bench"), telemetry: Telemetry(), health: HealthBoard(), workers: 1)
    var rows = [("otlp protobuf decode + map", decodeOnly), ("otlp protobuf decode + map + aggregate", otlpApplied)]
    for parser in ["simdjson", "jansson"] {
        let t = JSONDecodeTransform(config: try! PipelineSpec.decodeStage(JSONDecodeConfig.self, yaml: "parser: \(parser)"), context: ctx)
        let jsonStore = MetricStore()
        let batches: [PayloadBatch] = stride(from: 0, to: elements.count, by: 100).map { i in
            var p = PayloadBatch()
            for e in elements[i..<min(elements.count, i + 100)] { p.append(e, origin: 0) }
            return p
        }
        rows.append(("json_decode (\(parser)) + aggregate, the same samples", timed {
            for p in batches { var b = Batch(payloads: p); t.process(&b, worker: 0); jsonStore.apply(&b, scratch: &scratch) }
        }))
    }
    rows.append(("aggregate alone (the otlp batches, decoded beforehand)", applyOnly))
    for (title, ns) in rows {
        print("\(title): \(String(format: "%.0f", ns)) ns per point, \(Int(1e9 / ns)) points/s on one core "
            + "(\(String(format: "%.2f", ns / rows[2].1))× simdjson)")
    }
    // The stream table: 1 000 000 cumulative counter streams.
    let table = StreamTableProbe(streams: 1_000_000)
    print("stream table: \(table.bytesPerStream) bytes of RSS per cumulative counter stream (1 000 000 streams)")
    exit(0)
}
if let i = CommandLine.arguments.firstIndex(of: "--otlp"), i + 1 < CommandLine.arguments.count {
    otlpCost(Int(CommandLine.arguments[i + 1]) ?? 1000)
}

/// `bench --otlp-load URL REQUESTS CONNECTIONS`: posts REQUESTS exports of 100 points
/// (as `--otlp` builds them) over CONNECTIONS keep-alive connections; prints the seconds
/// taken and how many were answered 200.
func otlpLoad(url: String, requests: Int, connections: Int) -> Never {
    let bodies = otlpBodies(requests).bodies
    let ok = Atomic<Int>(0)
    let start = ContinuousClock.now
    DispatchQueue.concurrentPerform(iterations: connections) { c in
        let client = HTTPClient(endpoint: HTTPEndpoint(url)!, tls: nil, timeout: 30)
        for i in stride(from: c, to: bodies.count, by: connections) {
            if (try? client.post(headers: [("Content-Type", "application/x-protobuf")], body: bodies[i]))?.status == 200 { ok.add(1,
                    ordering: .relaxed) }
        }
    }
    print(String(format: "%.3f", (ContinuousClock.now - start).inSeconds), ok.load(ordering: .relaxed))
    exit(0)
}
if let i = CommandLine.arguments.firstIndex(of: "--otlp-load"), i + 3 < CommandLine.arguments.count {
    otlpLoad(url: CommandLine.arguments[i + 1], requests: Int(CommandLine.arguments[i + 2]) ?? 1000,
            connections: Int(CommandLine.arguments[i + 3]) ?? 4)
}

// Microbenchmarks of the hot pieces on the payloads `gateway loadgen` pushes.
// Every figure is per sample (median of 5 runs) and, where it makes sense, a ratio
// against bare jansson parsing measured in the same run — the one cost the
// gateway cannot shave. Run: `make bench` (or `.build/release/bench`).

let elements = SyntheticPayloads().elements()          // 10 000 series, mixed types
let batchSize = 1000
let totalSamples = 200_000
let payloadBatches: [PayloadBatch] = (0..<(totalSamples / batchSize)).map { b in
    var p = PayloadBatch()
    for i in 0..<batchSize { p.append(elements[(b * batchSize + i) % elements.count], origin: 0) }
    return p
}
let context = StageContext(id: "bench", logger: Logger(label: "bench"), telemetry: Telemetry(), health: HealthBoard(), workers: 1)

/// json_decode's jansson flags.
let strictFlags = size_t(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

/// Bare jansson: `json_loadb` + `json_decref` of every payload of `p`, nothing kept.
func parse(_ p: PayloadBatch, flags: size_t) {
    for i in 0..<p.count {
        p.withPayload(i) { raw in
            if let v = json_loadb(raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count, flags, nil) { json_decref(v) }
        }
    }
}

// `bench --jansson-ceiling [seconds]`: json_loadb + json_decref (json_decode's flags)
// over the same payloads on one thread per core, nothing else: what this machine
// could decode if decoding were all the gateway did. `make bench` measures it in the
// same run as the gateway drain and reports the drain as a ratio of it.
if let flag = CommandLine.arguments.firstIndex(of: "--jansson-ceiling") {
    let seconds = CommandLine.arguments.dropFirst(flag + 1).first.flatMap(Double.init) ?? 2
    let threads = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    let parsed = Mutex(0)
    let deadline = ContinuousClock.now + .seconds(seconds)
    let start = ContinuousClock.now
    let workers = (0..<threads).map { t in
        OSThread.spawn(name: "ceiling-\(t)") {
            var n = 0
            outer: while true {
                for p in payloadBatches {
                    parse(p, flags: strictFlags)
                    n += p.count
                    if ContinuousClock.now >= deadline { break outer }
                }
            }
            parsed.withLock { $0 += n }
        }
    }
    for w in workers { w.join() }
    let total = parsed.withLock { $0 }
    print("threads=\(threads) samples=\(total) rate=\(Int(Double(total) / (ContinuousClock.now - start).inSeconds))")
    exit(0)
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

/// Runs `body` five times (after one warm-up) and returns the median ns per sample.
func measure(_ samples: Int, _ body: () -> Void) -> Double {
    body()
    var runs: [Double] = []
    for _ in 0..<5 {
        let start = ContinuousClock.now
        body()
        let d = ContinuousClock.now - start
        runs.append(d.inSeconds * 1e9 / Double(samples))
    }
    return median(runs)
}

nonisolated func decoded(_ t: JSONDecodeTransform) -> [Batch] {
    payloadBatches.map { var b = Batch(payloads: $0); t.process(&b, worker: 0); return b }
}

var rows: [(String, Double)] = []
// Bare parsing first (and as the warm-up that lets the CPU clock up): json_decode
// routes jansson's allocations through its arena from its first document on.
func bareParse() { for p in payloadBatches { parse(p, flags: 0) } }
_ = measure(totalSamples, bareParse)
let bare = measure(totalSamples, bareParse)
rows.append(("jansson json_loadb + json_decref (baseline)", bare))
let strict = measure(totalSamples) { for p in payloadBatches { parse(p, flags: strictFlags) } }
rows.append(("… with JSON_REJECT_DUPLICATES and JSON_DECODE_ANY (json_decode's flags)", strict))

let decoder = JSONDecodeTransform(config: JSONDecodeConfig(options: OptionReader(describing: "d")), context: context)
rows.append(("json_decode (parse + extract)", measure(totalSamples) { _ = decoded(decoder) }))
var simdConfig = JSONDecodeConfig(options: OptionReader(describing: "d"))
simdConfig.parser = .simdjson
let simdDecoder = JSONDecodeTransform(config: simdConfig, context: context)
rows.append(("json_decode, parser: simdjson (parse + extract)", measure(totalSamples) { _ = decoded(simdDecoder) }))
simdConfig.scanner = false
let onDemandDecoder = JSONDecodeTransform(config: simdConfig, context: context)
rows.append(("… On-Demand alone, without the scanner", measure(totalSamples) { _ = decoded(onDemandDecoder) }))

let samples = decoded(decoder)
let validator = ValidateTransform()
rows.append(("validate", measure(totalSamples) { for var b in samples { validator.process(&b, worker: 0) } }))
let sorter = SortLabelsTransform()
rows.append(("sort_labels", measure(totalSamples) { for var b in samples { sorter.process(&b, worker: 0) } }))

let relabelRules = try! PipelineSpec.decodeStage(RelabelConfig.self, yaml: """
    rules:
      - { source_labels: [__name__], regex: "loadgen_(.*)", target_label: __name__, replacement: "app_${1}" }
      - { action: labeldrop, regex: l2 }
      - { source_labels: [l0], regex: "v1.*", action: drop }
    """).rules
let relabeler = RelabelTransform(rules: relabelRules)
rows.append(("relabel (3 rules: rename, labeldrop, drop)", measure(totalSamples) { for var b in samples { relabeler.process(&b, worker: 0) } }))

let store = MetricStore()
var scratch: [UInt8] = []
rows.append(("aggregate (MetricStore.apply)", measure(totalSamples) { for var b in samples { store.apply(&b, scratch: &scratch) } }))

// Ring buffer: one producer, one consumer thread, batch hand-off.
let handoffs = 200_000
let ring = measure(handoffs) {
    let buffer = BoundedBuffer<Batch>(capacity: 32)
    let consumer = OSThread.spawn(name: "c") { while buffer.pop() != nil {} }
    let empty = Batch(kind: .samples)
    for _ in 0..<handoffs { buffer.push(empty) }
    buffer.producerFinished()
    consumer.join()
}

print("| piece | ns per sample | × bare jansson parse |")
print("|---|---:|---:|")
for (name, ns) in rows { print("| \(name) | \(String(format: "%.0f", ns)) | \(String(format: "%.2f", ns / bare)) |") }
print("| ring buffer hand-off (per batch of 1000, 2 threads) | \(String(format: "%.0f", ring)) per batch | |")

// Whole default chain in one thread: what one core can drain, and relabel's share.
// The two chains run alternately (5 rounds, medians), so a change in the machine's
// speed during the measurement hits both alike.
func chainRun(relabel: Bool) -> Double {
    var scratch: [UInt8] = []
    let start = ContinuousClock.now
    for p in payloadBatches {
        var b = Batch(payloads: p)
        decoder.process(&b, worker: 0); validator.process(&b, worker: 0)
        if relabel { relabeler.process(&b, worker: 0) }
        sorter.process(&b, worker: 0)
        store.apply(&b, scratch: &scratch)
    }
    return (ContinuousClock.now - start).inSeconds * 1e9 / Double(totalSamples)
}
_ = chainRun(relabel: false); _ = chainRun(relabel: true)
var plainRuns: [Double] = [], relabelRuns: [Double] = []
for _ in 0..<5 {
    plainRuns.append(chainRun(relabel: false))
    relabelRuns.append(chainRun(relabel: true))
}
let chain = median(plainRuns), chainRelabel = median(relabelRuns)
print("")
print("decode → validate → sort → aggregate on one core: \(Int(1e9 / chain)) samples/s (\(String(format: "%.2f", chain / bare))× bare parse)")
print("with 3 relabel rules: \(Int(1e9 / chainRelabel)) samples/s, throughput ratio \(String(format: "%.3f", chain / chainRelabel)) of the "
    + "run without them")

// Render and memory at 10 000 and 100 000 counter series.
func rssBytes() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
}
for seriesCount in [10_000, 100_000] {
    let s = MetricStore()
    let exposition = Exposition(store: s, meta: { [] })
    let before = rssBytes()
    var batch = SampleBatch()
    for i in 0..<seriesCount {
        var r = SampleRecord(type: .counter, origin: 0, value: 1, name: batch.appendString("bench_requests_total"))
        r.labelStart = UInt32(batch.labels.count)
        batch.labels.append(LabelRef(name: batch.appendString("path"), value: batch.appendString("/api/v1/item/\(i)")))
        batch.labels.append(LabelRef(name: batch.appendString("code"), value: batch.appendString(String(200 + i % 5))))
        r.labelCount = 2
        batch.records.append(r)
        if batch.records.count == 10_000 || i == seriesCount - 1 {
            var b = Batch(samples: batch)
            s.apply(&b, scratch: &scratch)
            batch = SampleBatch()
        }
    }
    let perSeries = Double(rssBytes() - before) / Double(seriesCount)
    print("\(seriesCount) counter series: ≈\(Int(perSeries)) bytes of RSS per series")
    formatRow("\(seriesCount) counters", exposition)
}

/// Render time (median of 5 interleaved rounds) and bytes, plain and gzipped, of
/// one page in each format.
func formatRow(_ title: String, _ exposition: Exposition) {
    for f in ExpositionFormat.allCases { _ = exposition.render(f) }   // first render sorts the series once
    var ms: [ExpositionFormat: [Double]] = [:], bytes: [ExpositionFormat: (Int, Int)] = [:]
    for _ in 0..<5 {
        for f in ExpositionFormat.allCases {
            let start = ContinuousClock.now
            let page = exposition.render(f)
            ms[f, default: []].append((ContinuousClock.now - start).inSeconds * 1000)
            bytes[f] = (page.count, Gzip.compress(page)?.count ?? 0)
        }
    }
    for f in ExpositionFormat.allCases {
        print("| \(title) | \(f.rawValue) | \(String(format: "%.1f", median(ms[f]!))) ms | \(bytes[f]!.0 / 1024) KiB | \(bytes[f]!.1 / 1024) KiB |")
    }
}

print("")
print("| page | format | render | bytes | gzipped |")
print("|---|---|---:|---:|---:|")
print("(the mixed page: \(store.seriesCount) series from the synthetic samples above)")
formatRow("mixed", Exposition(store: store, meta: { [] }))

// Native histogram memory: 10 000 series observing values spread over 1 ms … 10 s,
// each variant in a fresh process (RSS in this one misses what malloc reuses).
for (title, variant) in [("classic (10 buckets)", "classic"), ("native only (schema 3)", "native"), ("classic + native", "both")] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    p.arguments = ["--histogram-memory", variant]
    let out = Pipe()
    p.standardOutput = out
    try! p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    print("10 000 histogram series, \(title), 20 observations each: \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
}

