/// The formats `/metrics` speaks, and which one a scraper gets.
public enum ExpositionFormat: String, Sendable, CaseIterable {
    /// Prometheus text 0.0.4.
    case text
    /// OpenMetrics 1.0.0 text.
    case openMetrics = "openmetrics"
    /// `io.prometheus.client.MetricFamily` messages, each length-delimited.
    case protobuf

    public var contentType: String {
        switch self {
        case .text: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        case .protobuf: "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        }
    }

    /// As client_golang's `expfmt.NegotiateIncludingOpenMetrics`: the media ranges
    /// of `accept` by falling `q` (ties: no wildcard before a wildcard, then as written), and
    /// the first that names an enabled format — protobuf with
    /// `proto=io.prometheus.client.MetricFamily;encoding=delimited`, OpenMetrics
    /// (version 1.0.0, 0.0.1 or none: answered as 1.0.0), `text/plain` (version
    /// 0.0.4 or none). `*/*` and anything else choose nothing; `q=0` refuses. No
    /// match: text when enabled (as client_golang falls back), else nil (406).
    public static func negotiate(accept: String, enabled: Set<ExpositionFormat> = Set(allCases)) -> ExpositionFormat? {
        for range in MediaRange.parse(accept) {
            let version = range.parameters["version"]
            let format: ExpositionFormat?
            switch range.type {
            case "application/vnd.google.protobuf":
                let delimited = range.parameters["proto"] == "io.prometheus.client.MetricFamily" && range.parameters["encoding"] == "delimited"
                format = delimited ? .protobuf : nil
            case "application/openmetrics-text":
                format = version == nil || version == "1.0.0" || version == "0.0.1" ? .openMetrics : nil
            case "text/plain":
                format = version == nil || version == "0.0.4" ? .text : nil
            default:
                format = nil
            }
            if let format, enabled.contains(format) { return format }
        }
        return enabled.contains(.text) ? .text : nil
    }
}

/// One element of an `Accept` header: `type/subtype;param=value;q=0.5`.
struct MediaRange: Equatable {
    var type: String
    var parameters: [String: String]
    var q: Double

    /// Acceptable ranges (`q > 0`), best first. Lower-cases the type and parameter
    /// names, strips quotes from values; a malformed element is skipped.
    static func parse(_ header: String) -> [MediaRange] {
        var out: [(MediaRange, specificity: Int, position: Int)] = []
        for (position, element) in header.split(separator: ",").enumerated() {
            let parts = element.split(separator: ";").map(trimmed)
            guard let type = parts.first, type.split(separator: "/").count == 2 else { continue }
            var parameters: [String: String] = [:]
            var q = 1.0
            for p in parts.dropFirst() {
                let kv = p.split(separator: "=", maxSplits: 1).map(trimmed)
                guard kv.count == 2 else { continue }
                let key = kv[0].lowercased()
                var value = kv[1]
                if value.count >= 2, value.first == "\"", value.last == "\"" { value = String(value.dropFirst().dropLast()) }
                if key == "q" { q = Double(value).map { min(1, max(0, $0)) } ?? 0 } else { parameters[key] = value }
            }
            guard q > 0 else { continue }
            let t = type.lowercased()
            let specificity = (t.hasPrefix("*/") ? 0 : 2) + (t.hasSuffix("/*") ? 0 : 1)
            out.append((MediaRange(type: t, parameters: parameters, q: q), specificity, position))
        }
        out.sort { a, b in
            if a.0.q != b.0.q { return a.0.q > b.0.q }
            if a.specificity != b.specificity { return a.specificity > b.specificity }
            return a.position < b.position
        }
        return out.map(\.0)
    }
}

/// Without surrounding spaces and tabs (HTTP's optional whitespace).
private func trimmed<S: StringProtocol>(_ s: S) -> String {
    var t = Substring(s)
    while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
    while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
    return String(t)
}
