import Aggregation
import Pipeline
import Sources
import Synchronization

/// Feeds arbitrary bytes to the `otlp` source's decoder and mapping (protobuf
/// `ExportMetricsServiceRequest`), applies what comes out to a store and re-parses
/// the page in all three formats. Malformed bodies must be refused, never crash;
/// whatever is accepted must render valid pages. Used by `make fuzz-otlp` and by the
/// test that replays `Tests/Fixtures/otlp-corpus/` in `make test`.
public final class OTLPHarness: Sendable {
    let state = Mutex<(store: MetricStore, decoder: OTLPDecoder, runs: Int)>((MetricStore(), OTLPDecoder(), 0))

    public init() {}

    /// Runs one input; returns a description of any invariant it broke.
    public func run(_ data: UnsafeRawBufferPointer) -> String? {
        state.withLock { st -> String? in
            st.runs += 1
            if st.runs % 100 == 0 { st = (MetricStore(), OTLPDecoder(), st.runs) }   // bound memory (and render time)
            guard var batch = st.decoder.batch(protobuf: data) else { return nil }
            var scratch: [UInt8] = []
            st.store.apply(&batch, scratch: &scratch)
            return FuzzHarness.pageProblem(st.store)
        }
    }
}
