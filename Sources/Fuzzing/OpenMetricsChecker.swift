/// Checks that bytes are valid OpenMetrics 1.0 text as the gateway writes it:
/// `# EOF` last, every family's `# HELP`/`# TYPE` before its samples and families
/// not interleaved, sample names that belong to their family's type, labels and
/// exemplars well-formed (exemplar labels at most 128 characters, only on counter
/// `_total` and histogram `_bucket` lines), `_sum` not negative, and per histogram series `le` rising,
/// counts cumulative, `+Inf` present and equal to `_count`. Returns the first
/// problem, or nil.
public enum OpenMetricsChecker {
    public static func problem(in text: [UInt8]) -> String? {
        guard String(validating: text, as: UTF8.self) != nil else { return "not valid UTF-8" }
        var lines = text.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard lines.last == "", lines.count >= 2, lines[lines.count - 2] == "# EOF" else { return "does not end with `# EOF` and a newline" }
        lines.removeLast(2)
        var seen: Set<String> = []
        var family = "", type = ""
        var histogram: [String: (le: Double, count: Double, inf: Double?)] = [:]
        for (n, line) in lines.enumerated() {
            let at = "line \(n + 1)"
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3, ["HELP", "TYPE", "UNIT"].contains(parts[1]) else { return "\(at): unexpected comment `\(line.prefix(60))`" }
                let name = String(parts[2])
                guard ExpositionChecker.isMetricName(name) else { return "\(at): bad family name `\(name)`" }
                if name != family {
                    if let bad = histogramProblem(histogram) { return "before \(at): \(bad)" }
                    histogram = [:]
                    guard seen.insert(name).inserted else { return "\(at): family `\(name)` appears twice" }
                    family = name
                    type = ""
                }
                if parts[1] == "TYPE" {
                    guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "unknown", "info", "stateset",
                            "gaugehistogram"].contains(parts[3]) else {
                        return "\(at): bad type"
                    }
                    type = String(parts[3])
                } else if parts[1] == "HELP", parts.count == 4, let bad = badEscape(parts[3]) {
                    return "\(at): \(bad) in HELP"
                }
                continue
            }
            guard let (name, rest) = ExpositionChecker.splitName(line) else { return "\(at): bad sample line `\(line.prefix(80))`" }
            let suffixes: [String] = switch type {
            case "counter": ["_total", "_created"]
            case "histogram": ["_bucket", "_sum", "_count", "_created"]
            case "summary": ["", "_sum", "_count", "_created"]
            default: [""]
            }
            guard let suffix = suffixes.first(where: { name == family + $0 }) else {
                return "\(at): sample `\(name)` does not belong to \(type) `\(family)`"
            }
            var r = rest
            var labelText = ""
            if r.first == "{" {
                let start = r.startIndex
                guard let after = ExpositionChecker.parseLabels(&r) else { return "\(at): bad labels in `\(line.prefix(120))`" }
                labelText = String(rest[start..<after.startIndex])
                r = after
            }
            guard r.first == " " else { return "\(at): no space before the value" }
            r = r.dropFirst()
            let fields = String(r).split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard let value = number(fields[0]) else { return "\(at): bad value `\(fields[0])`" }
            if fields.count == 2 {
                guard (type == "counter" && suffix == "_total") || (type == "histogram" && suffix == "_bucket") else {
                    return "\(at): an exemplar on `\(name)`"
                }
                if let bad = exemplarProblem(fields[1]) { return "\(at): \(bad)" }
            }
            if suffix == "_sum" && !(value >= 0) { return "\(at): a negative or NaN _sum (a counter in OpenMetrics)" }
            if type == "histogram" {
                if let bad = track(suffix: suffix, labels: labelText, value: value, into: &histogram) { return "\(at): \(bad)" }
            }
        }
        return histogramProblem(histogram)
    }

    static func number(_ s: Substring) -> Double? {
        switch s {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(s)
        }
    }

    /// `# {labels} value [timestamp]`.
    static func exemplarProblem(_ s: Substring) -> String? {
        guard s.hasPrefix("# {") else { return "bad exemplar `\(s.prefix(40))`" }
        var r = Substring(s.dropFirst(2)).unicodeScalars
        let start = r.startIndex
        guard let after = ExpositionChecker.parseLabels(&r) else { return "bad exemplar labels" }
        var characters = 0
        var inValue = false, escaped = false
        for c in Substring(s.dropFirst(2)).unicodeScalars[start..<after.startIndex].dropFirst().dropLast() {
            if inValue {
                if escaped { escaped = false;
                        characters += 1 } else if c == "\\" { escaped = true } else if c == "\"" { inValue = false } else { characters += 1 }
            } else if c == "\"" { inValue = true } else if c != "=" && c != "," { characters += 1 }
        }
        guard characters <= 128 else { return "exemplar labels of \(characters) characters" }
        let rest = String(after).split(separator: " ", omittingEmptySubsequences: false)
        guard rest.count == 2 || rest.count == 3, rest[0].isEmpty, number(rest[1]) != nil else { return "bad exemplar value" }
        if rest.count == 3 { guard let t = Double(rest[2]), t.isFinite else { return "bad exemplar timestamp" } }
        return nil
    }

    private static func track(suffix: String, labels: String, value: Double,
                              into h: inout [String: (le: Double, count: Double, inf: Double?)]) -> String? {
        guard suffix == "_bucket" || suffix == "_count" else { return nil }
        var key = labels, le: Double?
        if suffix == "_bucket" {
            // The gateway writes `le` last: `{…,le="0.5"}` or `{le="0.5"}`.
            let c = Array(labels.unicodeScalars)
            guard c.count >= 7, c.last == "}", c[c.count - 2] == "\"" else { return "a bucket without le" }
            var i = c.count - 3
            while i >= 0, c[i] != "\"" { i -= 1 }
            guard i >= 4, String(String.UnicodeScalarView(c[(i - 3)...i])) == "le=\"",
                    c[i - 4] == "{" || c[i - 4] == "," else { return "a bucket without le last" }
            let text = String(String.UnicodeScalarView(c[(i + 1)..<(c.count - 2)]))
            le = number(Substring(text))
            guard le != nil else { return "bad le `\(text)`" }
            key = c[i - 4] == "{" ? "" : String(String.UnicodeScalarView(c[..<(i - 4)])) + "}"
        }
        var state = h[key] ?? (-.infinity, 0, nil)
        if let le {
            guard le > state.le else { return "le not rising in `\(key)`" }
            guard value >= state.count else { return "bucket counts not cumulative in `\(key)`" }
            state.le = le
            state.count = value
            if le == .infinity { state.inf = value }
        } else {
            guard let inf = state.inf, inf == value else { return "_count \(value) differs from the +Inf bucket in `\(key)`" }
        }
        h[key] = state
        return nil
    }

    private static func histogramProblem(_ h: [String: (le: Double, count: Double, inf: Double?)]) -> String? {
        h.first { $0.value.inf == nil }.map { "histogram series `\($0.key)` without a +Inf bucket" }
    }

    static func badEscape(_ s: Substring) -> String? {
        var escaped = false
        for c in s.unicodeScalars {
            if escaped { guard c == "\\" || c == "n" || c == "\"" else { return "bad escape" }; escaped = false } else if c == "\\" { escaped = true }
        }
        return escaped ? "dangling backslash" : nil
    }
}
