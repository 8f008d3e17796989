import Logging
import Aggregation
import Pipeline
import Sinks
import Synchronization
import Transforms

/// Feeds arbitrary bytes through decode → validate → relabel → sort → aggregate →
/// render, then re-parses the page in all three formats (text, OpenMetrics,
/// protobuf); names ending in `_seconds` are kept as native histograms too, at a
/// small `max_buckets` so that resolution halving runs. Used by the libFuzzer target (`make fuzz`) and
/// by the test that replays `Tests/Fixtures/fuzz-corpus/` in `make test`.
public final class FuzzHarness: Sendable {
    let decoder: JSONDecodeTransform
    let validator = ValidateTransform()
    let sorter = SortLabelsTransform()
    let relabel: RelabelTransform
    let state = Mutex<(store: MetricStore, runs: Int)>((FuzzHarness.makeStore(), 0))

    static func makeStore() -> MetricStore {
        MetricStore(nativeHistograms: [("*_seconds", NativeHistogramOptions(schema: 3, zeroThreshold: 1e-9, maxBuckets: 12))])
    }

    public init() throws {
        let context = StageContext(id: "fuzz", logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }),
                                   telemetry: Telemetry(), health: HealthBoard(), workers: 1)
        decoder = JSONDecodeTransform(config: JSONDecodeConfig(options: OptionReader(describing: "d")), context: context)
        let rules = try PipelineSpec.decodeStage(RelabelConfig.self, yaml: """
            rules:
              - { source_labels: [__name__], regex: "(.*)_ms", target_label: __name__, replacement: "${1}_seconds" }
              - { source_labels: [a, b], regex: "(.+);(.+)", target_label: "ab_${1}", replacement: "$2" }
              - { action: labelmap, regex: "x(.*)", replacement: "y$1" }
            """).rules
        relabel = RelabelTransform(rules: rules)
    }

    /// Runs one input; returns a description of any invariant it broke.
    public func run(_ data: UnsafeRawBufferPointer) -> String? {
        var payloads = PayloadBatch()
        payloads.append(data, origin: 0)
        // Also as several elements, split at newlines, so one input can carry a batch.
        for part in data.split(separator: 0x0A) where part.count < data.count { payloads.append(Array(part), origin: 0) }
        var batch = Batch(payloads: payloads)
        decoder.process(&batch, worker: 0)
        validator.process(&batch, worker: 0)
        relabel.process(&batch, worker: 0)
        sorter.process(&batch, worker: 0)
        return state.withLock { st -> String? in
            st.runs += 1
            if st.runs % 500 == 0 { st.store = Self.makeStore() }   // bound memory over long runs
            var scratch: [UInt8] = []
            st.store.apply(&batch, scratch: &scratch)
            return Self.pageProblem(st.store)
        }
    }

    /// The store's page in all three formats, re-parsed: the first invariant any of them breaks.
    static func pageProblem(_ store: MetricStore) -> String? {
        let exposition = Exposition(store: store, meta: { [] })
        if let p = ExpositionChecker.problem(in: exposition.render(.text)) { return "invalid text exposition: \(p)" }
        if let p = OpenMetricsChecker.problem(in: exposition.render(.openMetrics)) { return "invalid OpenMetrics: \(p)" }
        if let p = ProtobufChecker.problem(in: exposition.render(.protobuf)) { return "invalid protobuf: \(p)" }
        return nil
    }
}
