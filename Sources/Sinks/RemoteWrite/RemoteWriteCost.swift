import Aggregation

/// One round's encoding cost, for `bench --remote-write`: the store encoded as the
/// sink would send it and each request compressed, nothing sent.
public enum RemoteWriteCost {
    public struct Round: Sendable {
        public var requests = 0, samples = 0, rawBytes = 0, compressedBytes = 0
        public var encodeSeconds = 0.0, compressSeconds = 0.0
    }

    public static func round(_ store: MetricStore, maxSamplesPerSend: Int = 2000, clock: () -> UInt64) -> Round {
        var r = Round()
        var compressed: [UInt8] = []
        var encoder = WriteRequestEncoder(externalLabels: [("cluster", "bench")], maxSamplesPerSend: maxSamplesPerSend, tracking: false)
        let t0 = clock()
        var compressing: UInt64 = 0
        let emit = { (request: WriteRequestEncoder.Request) in
            let c0 = clock()
            Snappy.compress(request.body, into: &compressed)
            compressing += clock() - c0
            r.requests += 1
            r.samples += request.samples + request.histograms
            r.rawBytes += request.body.count
            r.compressedBytes += compressed.count
        }
        encoder.encode(store.snapshot(), timestamp: 0, emit: emit)
        encoder.flush(emit)
        let total = clock() - t0
        r.compressSeconds = Double(compressing) / 1e9
        r.encodeSeconds = Double(total - compressing) / 1e9
        return r
    }
}
