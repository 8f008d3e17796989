/// The four Prometheus metric types a sample can carry (the wire format's `type`).
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

    /// Parses the JSON spelling from raw bytes, ASCII case-insensitively (`Gauge`,
    /// `COUNTER`, as the .NET reader's `JsonStringEnumConverter` accepts), without
    /// allocating.
    public init?(bytes: UnsafeRawBufferPointer) {
        func equals(_ s: StaticString) -> Bool {
            guard bytes.count == s.utf8CodeUnitCount else { return false }
            let p = s.utf8Start
            for i in 0..<bytes.count {
                let c = bytes[i]
                // Letters only: `| 0x20` lowercases A–Z and leaves a–z alone.
                guard c | 0x20 == p[i], (0x61...0x7A).contains(c | 0x20) else { return false }
            }
            return true
        }
        switch bytes.count {
        case 5 where equals("gauge"): self = .gauge
        case 7 where equals("counter"): self = .counter
        case 7 where equals("summary"): self = .summary
        case 9 where equals("histogram"): self = .histogram
        default: return nil
        }
    }

    /// The .NET gateway's enum numbers (`MetricType` there): 0 counter, 1 gauge,
    /// 2 summary, 3 histogram. Anything else (2.5, -1, 4) is nil.
    public init?(dotNetNumber v: Double) {
        switch v {
        case 0: self = .counter
        case 1: self = .gauge
        case 2: self = .summary
        case 3: self = .histogram
        default: return nil
        }
    }
}
