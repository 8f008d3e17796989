/// The four Prometheus metric types a sample can carry (SPEC §2 `type`).
public enum MetricType: UInt8, Sendable, CaseIterable {
    case counter, gauge, histogram, summary

    /// The spelling used in JSON and in `# TYPE` lines.
    public var name: String {
        switch self {
        case .counter: "counter"
        case .gauge: "gauge"
        case .histogram: "histogram"
        case .summary: "summary"
        }
    }

    /// Parses the JSON spelling from raw bytes without allocating.
    public init?(bytes: UnsafeRawBufferPointer) {
        switch bytes.count {
        case 5 where bytes.elementsEqual("gauge".utf8): self = .gauge
        case 7 where bytes.elementsEqual("counter".utf8): self = .counter
        case 7 where bytes.elementsEqual("summary".utf8): self = .summary
        case 9 where bytes.elementsEqual("histogram".utf8): self = .histogram
        default: return nil
        }
    }
}
