/// Checks that bytes are valid Prometheus text format 0.0.4 as the gateway writes
/// it: `# HELP`/`# TYPE` before a family's samples, families not interleaved,
/// names and label names valid, label values properly quoted and escaped, values
/// parseable, valid UTF-8 throughout. Returns the first problem, or nil.
public enum ExpositionChecker {
    public static func problem(in text: [UInt8]) -> String? {
        guard String(validating: text, as: UTF8.self) != nil else { return "not valid UTF-8" }
        guard text.isEmpty || text.last == 0x0A else { return "does not end with a newline" }
        var seen: Set<String> = []
        var current = ""
        var currentType = ""
        for (n, raw) in text.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().enumerated() {
            let line = String(decoding: raw, as: UTF8.self)
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3 else { return "line \(n + 1): short comment" }
                let name = String(parts[2])
                guard isMetricName(name) else { return "line \(n + 1): bad family name `\(name)`" }
                if line.hasPrefix("# TYPE ") {
                    guard parts.count == 4, ["counter", "gauge", "histogram", "summary",
                            "untyped"].contains(parts[3]) else { return "line \(n + 1): bad type" }
                    currentType = String(parts[3])
                } else if parts.count == 4, let bad = badHelpEscape(parts[3]) {
                    return "line \(n + 1): \(bad)"
                }
                if name != current {
                    guard !seen.contains(name) else { return "line \(n + 1): family `\(name)` appears twice" }
                    seen.insert(name)
                    current = name
                }
                continue
            }
            guard !line.hasPrefix("#") else { return "line \(n + 1): unexpected comment" }
            guard let (name, rest) = splitName(line) else { return "line \(n + 1): bad sample line `\(line.prefix(80))`" }
            let base = [name] + ["_bucket", "_sum", "_count"].compactMap { name.hasSuffix($0) ? String(name.dropLast($0.count)) : nil }
            guard base.contains(current) else { return "line \(n + 1): sample `\(name)` outside its family `\(current)`" }
            _ = currentType
            var r = rest
            if r.first == "{" {
                guard let after = parseLabels(&r) else { return "line \(n + 1): bad labels in `\(line.prefix(120))`" }
                r = after
            }
            guard r.first == " " else { return "line \(n + 1): no space before the value" }
            r = r.dropFirst()
            let value = String(r).split(separator: " ").first.map(String.init) ?? ""
            guard Double(value) != nil || ["+Inf", "-Inf", "NaN"].contains(value) else { return "line \(n + 1): bad value `\(value)`" }
        }
        return nil
    }

    static func isMetricName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f.isASCIILetter || f == "_" || f == ":" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "_" || $0 == ":" }
    }

    static func isLabelName(_ s: Substring) -> Bool {
        guard let f = s.unicodeScalars.first, f.isASCIILetter || f == "_" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "_" }
    }

    static func badHelpEscape(_ s: Substring) -> String? {
        var escaped = false
        for c in s.unicodeScalars {
            if escaped { guard c == "\\" || c == "n" else { return "bad escape in HELP" }; escaped = false } else if c == "\\" { escaped = true }
        }
        return escaped ? "dangling backslash in HELP" : nil
    }

    /// Splits at the first `{` or space — by Unicode scalar, not by Character: a
    /// label value may start with a combining mark, which would merge with the `"`
    /// before it into one grapheme.
    static func splitName(_ line: String) -> (String, Substring.UnicodeScalarView)? {
        let scalars = line.unicodeScalars
        guard let end = scalars.firstIndex(where: { $0 == "{" || $0 == " " }) else { return nil }
        let name = String(scalars[..<end])
        return isMetricName(name) ? (name, Substring(line).unicodeScalars[end...]) : nil
    }

    /// Parses `{a="x",b="y"}` at the start of `r`; returns what follows.
    static func parseLabels(_ r: inout Substring.UnicodeScalarView) -> Substring.UnicodeScalarView? {
        r = r.dropFirst()
        var names: Set<String> = []
        while true {
            if r.first == "}" { return r.dropFirst() }
            guard let eq = r.firstIndex(of: "=") else { return nil }
            let name = String(r[..<eq])
            guard isLabelName(Substring(name)), names.insert(name).inserted else { return nil }
            r = r[r.index(after: eq)...]
            guard r.first == "\"" else { return nil }
            r = r.dropFirst()
            var escaped = false
            var closed = false
            while let c = r.first {
                r = r.dropFirst()
                if escaped {
                    guard c == "\\" || c == "\"" || c == "n" else { return nil }
                    escaped = false
                } else if c == "\\" { escaped = true } else if c == "\"" { closed = true; break } else if c == "\n" { return nil }
            }
            guard closed else { return nil }
            if r.first == "," { r = r.dropFirst() } else if r.first != "}" { return nil }
        }
    }
}

private extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
}
