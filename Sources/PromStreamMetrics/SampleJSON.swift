import Pipeline

/// The gateway's JSON for one series, written once when the series is made: each
/// record then only appends its value (`prefix` + value + `suffix`).
struct SampleJSON: Sendable {
    let name: String
    let prefix: String
    let suffix: String
    /// A histogram's bounds, finite, sorted and de-duplicated (what `counts` go with); else empty.
    let bounds: [Double]

    /// `type` is the gateway's sample type; `buckets` only for histograms.
    init(type: String, label: String, dimensions: [(String, String)], buckets: [Double]? = nil) {
        name = Self.metricName(label)
        bounds = buckets.map(histogramBounds) ?? []
        var p = "{\"type\":\"\(type)\",\"name\":" + Self.string(name)
        if buckets != nil { p += ",\"buckets\":[" + bounds.map(Self.number).joined(separator: ",") + "]" }
        if !dimensions.isEmpty {
            p += ",\"labels\":{" + dimensions.map { Self.string(Self.labelName($0.0)) + ":" + Self.string($0.1) }.joined(separator: ",") + "}"
        }
        prefix = p + ",\"value\":"
        suffix = "}"
    }

    func sample(_ value: Double) -> String { prefix + Self.number(value) + suffix }

    /// A histogram series' observations counted into `bounds`' buckets: `value` their sum.
    func sample(_ sum: Double, counts: [UInt64]) -> String {
        prefix + Self.number(sum) + ",\"counts\":[" + counts.map(String.init).joined(separator: ",") + "]" + suffix
    }

    /// swift-metrics labels are free text (`http.requests`); Prometheus names are not:
    /// every other character becomes `_`, a leading digit gets one in front.
    static func metricName(_ label: String) -> String {
        var out = String(label.unicodeScalars.map { c -> Character in
            (c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == ":")) ? Character(c) : "_"
        })
        if out.isEmpty || out.first!.isNumber { out = "_" + out }
        return out
    }

    /// Label names have no `:`.
    static func labelName(_ key: String) -> String { metricName(key).replacingOccurrences(of: ":", with: "_") }

    /// Swift's shortest round-trip form; finite values only reach here.
    static func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : "\(v)" }

    static func string(_ s: String) -> String { "\"" + jsonEscape(s) + "\"" }
}
