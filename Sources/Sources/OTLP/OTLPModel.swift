/// An OTLP metrics export, decoded (from protobuf or JSON) into the parts this
/// source maps: what is not mapped (schema URLs, min/max, dropped counts) is skipped.
struct OTLPExport: Sendable {
    var resources: [OTLPResourceMetrics] = []

    var pointCount: Int { resources.reduce(0) { $0 + $1.scopes.reduce(0) { $0 + $1.metrics.reduce(0) { $0 + $1.points.count } } } }
}

/// Attribute values are kept as the text a label shows (pcommon's `AsString`).
typealias OTLPAttributes = [(key: String, value: String)]

struct OTLPResourceMetrics: Sendable {
    var attributes: OTLPAttributes = []
    var scopes: [OTLPScopeMetrics] = []
}

struct OTLPScopeMetrics: Sendable {
    var name = ""
    var version = ""
    var metrics: [OTLPMetric] = []
}

enum OTLPTemporality: Int, Sendable {
    case unspecified = 0, delta = 1, cumulative = 2
}

struct OTLPMetric: Sendable {
    enum Kind: Sendable { case gauge, sum, histogram, exponentialHistogram, summary }

    var name = ""
    var description = ""
    var unit = ""
    /// Nil until one of the data fields is seen (a metric without one is rejected).
    var kind: Kind?
    var temporality = OTLPTemporality.unspecified
    var monotonic = false
    var points: [OTLPPoint] = []
}

struct OTLPExemplar: Sendable {
    var attributes: OTLPAttributes = []
    var time: UInt64 = 0
    var value: Double = 0
    var traceID: [UInt8] = []
    var spanID: [UInt8] = []
}

/// One data point of any kind; the fields a kind does not use stay empty.
struct OTLPPoint: Sendable {
    var attributes: OTLPAttributes = []
    var startTime: UInt64 = 0
    var time: UInt64 = 0
    /// Number points: the value; histograms and summaries: the sum (NaN when absent).
    var value: Double = 0
    var hasValue = false
    var count: UInt64 = 0
    var bounds: [Double] = []
    var bucketCounts: [UInt64] = []
    var scale: Int64 = 0
    var zeroCount: UInt64 = 0
    var zeroThreshold: Double = 0
    var positiveOffset: Int64 = 0
    var positive: [UInt64] = []
    var negativeOffset: Int64 = 0
    var negative: [UInt64] = []
    var quantiles: [(quantile: Double, value: Double)] = []
    var exemplars: [OTLPExemplar] = []
    /// `DataPointFlags`: bit 0 is "no recorded value" (a staleness marker).
    var flags: UInt32 = 0

    var noRecordedValue: Bool { flags & 1 != 0 }
}

enum OTLPLimits {
    /// Buckets of one point (explicit or one side of exponential): OTel SDKs use at most 160.
    static let maxBuckets = 4096
    static let maxQuantiles = 1024
}
