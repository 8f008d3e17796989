#if canImport(Glibc)
import Glibc
#endif

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
        func equals(_ s: StaticString) -> Bool { memcmp(bytes.baseAddress!, s.utf8Start, s.utf8CodeUnitCount) == 0 }
        switch bytes.count {
        case 5 where equals("gauge"): self = .gauge
        case 7 where equals("counter"): self = .counter
        case 7 where equals("summary"): self = .summary
        case 9 where equals("histogram"): self = .histogram
        default: return nil
        }
    }
}
