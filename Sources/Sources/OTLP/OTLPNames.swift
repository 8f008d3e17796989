/// Prometheus's OTLP translation of names (its `otlptranslator`, with suffixes, as
/// Prometheus 2.x and 3.x with `UnderscoreEscapingWithSuffixes` do): a pure value
/// the table tests pin.
enum OTLPNames {
    /// The family name of metric `name` with `unit`: the name's alphanumeric words,
    /// then the unit's (`s` → `seconds`, `By/s` → `bytes_per_second`, `{requests}`
    /// left out) unless already in the name, then `total` for a monotonic sum and
    /// `ratio` for a gauge with unit `1`; `_` in front of a leading digit.
    static func metric(_ name: String, unit: String, counter: Bool, gauge: Bool) -> String {
        var tokens = words(name)
        let parts = unit.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters() }
        var main = "", per = ""
        if let m = parts.first, !m.isEmpty, !m.contains("{"), !m.contains("}") {
            main = words(mainUnits[m] ?? m).joined(separator: "_")
            if tokens.contains(main) { main = "" }
        }
        if parts.count > 1, !parts[1].isEmpty, !parts[1].contains("{"), !parts[1].contains("}") {
            let p = words(perUnits[parts[1]] ?? parts[1]).joined(separator: "_")
            if !p.isEmpty { per = "per_" + p }
            if tokens.contains(per) { per = "" }
        }
        if !main.isEmpty { tokens.append(main) }
        if !per.isEmpty { tokens.append(per) }
        if counter { tokens.removeAll { $0 == "total" }; tokens.append("total") }
        if gauge && unit == "1" { tokens.removeAll { $0 == "ratio" }; tokens.append("ratio") }
        let joined = tokens.joined(separator: "_")
        if let first = joined.unicodeScalars.first, ("0"..."9").contains(first) { return "_" + joined }
        return joined
    }

    /// A label name from an attribute key: anything but ASCII letters, digits and `_`
    /// becomes `_`; a leading digit gets `key_`, a single leading `_` gets `key`.
    static func label(_ key: String) -> String {
        guard !key.isEmpty else { return key }
        // Most keys are already label names (`method`, `http_route`): no new string.
        let u = key.utf8
        if u.allSatisfy({ ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A || $0 >= 0x30 && $0 <= 0x39 || $0 == 0x5F }),
           let f = u.first, !(0x30...0x39).contains(f), f != 0x5F || u.dropFirst().first == 0x5F {
            return key
        }
        var out = ""
        for u in key.unicodeScalars {
            let ok = ("a"..."z").contains(u) || ("A"..."Z").contains(u) || ("0"..."9").contains(u) || u == "_"
            out.unicodeScalars.append(ok ? u : "_")
        }
        if let f = out.unicodeScalars.first, ("0"..."9").contains(f) { return "key_" + out }
        if out.hasPrefix("_") && !out.hasPrefix("__") { return "key" + out }
        return out
    }

    /// Letters and digits runs (Go's `unicode.IsLetter || IsDigit`, kept to ASCII so
    /// the result is a valid Prometheus name).
    static func words(_ s: String) -> [String] {
        var out: [String] = [], current = ""
        for u in s.unicodeScalars {
            if ("a"..."z").contains(u) || ("A"..."Z").contains(u) || ("0"..."9").contains(u) {
                current.unicodeScalars.append(u)
            } else if !current.isEmpty {
                out.append(current); current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    static let mainUnits: [String: String] = [
        "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds",
        "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
        "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
        "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
        "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent",
    ]

    static let perUnits: [String: String] = [
        "s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year",
    ]
}

private extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
