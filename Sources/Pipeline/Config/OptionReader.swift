import Foundation
import Yams

/// One documented option of a stage, as `gateway stages` and docs/stages.md list it.
package struct OptionDoc: Sendable {
    public var key: String
    public var type: String
    /// nil: required.
    public var defaultValue: String?
    public var doc: String
}

/// Reads a stage's options from its YAML mapping, and is at the same time the
/// single source of the stage's documentation: every getter names the key, its
/// default and a doc string. In `describe` mode it reads nothing and records the
/// docs (`gateway stages`); in `decode` mode it records every problem — wrong type,
/// out of range, unknown key — with its line, and keeps going, so that all errors of
/// a file are reported at once.
///
/// Not thread-safe: used while a configuration is loaded.
public final class OptionReader {
    public enum Mode { case decode, describe }

    public let mode: Mode
    /// Dotted path of this mapping (`sources.queue`), used in error messages.
    public let path: String
    private let mapping: Node.Mapping?
    private let ignoredKeys: Set<String>
    private var consumed: Set<String> = []
    private var recorded: [ConfigError] = []
    package private(set) var docs: [OptionDoc] = []
    /// Line of the mapping itself.
    public let line: Int?
    /// Which environment variables were expanded into which scalar.
    let provenance: [EnvironmentTemplate.Position: [String]]

    /// Every problem found so far, each naming the environment variables behind
    /// the offending value.
    public var errors: [ConfigError] { recorded.map(annotated) }

    public convenience init(mapping: Node.Mapping?, path: String, line: Int?, ignoring: Set<String> = []) {
        self.init(mapping: mapping, path: path, line: line, ignoring: ignoring, provenance: [:])
    }

    init(mapping: Node.Mapping?, path: String, line: Int?, ignoring: Set<String> = [],
         provenance: [EnvironmentTemplate.Position: [String]]) {
        self.mode = .decode
        self.mapping = mapping
        self.path = path
        self.line = line
        self.ignoredKeys = ignoring
        self.provenance = provenance
    }

    /// A reader that returns defaults and records documentation.
    public init(describing path: String) {
        self.mode = .describe
        self.mapping = nil
        self.path = path
        self.line = nil
        self.ignoredKeys = []
        self.provenance = [:]
    }

    // MARK: Errors

    /// Records an error for `key` (at the key's line when it is present).
    public func fail(_ key: String?, _ message: String) {
        recorded.append(ConfigError(path: path, key: key, line: key.flatMap(lineOf) ?? line, message: message))
    }

    /// Records an error thrown by `StageConfig.validate()`.
    public func record(_ error: ConfigError) {
        var e = error
        if e.path.isEmpty { e.path = path }
        if e.line == nil { e.line = e.key.flatMap { lineOf(Self.topKey($0)) } ?? line }
        recorded.append(e)
    }

    private static func topKey(_ key: String) -> String {
        String(key.prefix { $0 != "." && $0 != "[" })
    }

    /// `e` with the variables behind its key's value.
    private func annotated(_ e: ConfigError) -> ConfigError {
        guard e.variables.isEmpty, !provenance.isEmpty, let key = e.key, let mapping else { return e }
        let top = Self.topKey(key)
        var names: [String] = []
        func walk(_ n: Node) {
            switch n {
            case .scalar(let s):
                if let m = s.mark, let v = provenance[EnvironmentTemplate.Position(line: m.line, column: m.column)] { names += v }
            case .mapping(let m): for (k, v) in m { walk(k); walk(v) }
            case .sequence(let q): for item in q { walk(item) }
            case .alias: break
            }
        }
        for (k, v) in mapping where k.scalar?.string == top { walk(v) }
        var out = e
        var seen: Set<String> = []
        out.variables = names.filter { seen.insert($0).inserted }
        return out
    }

    public func lineOf(_ key: String) -> Int? {
        guard let mapping else { return nil }
        for (k, _) in mapping where k.scalar?.string == key { return k.mark?.line }
        return nil
    }

    /// Reports keys that no getter asked for. Call after the config's `init`.
    public func finishReading() {
        guard mode == .decode, let mapping else { return }
        var seen: Set<String> = []
        for (k, _) in mapping {
            guard let name = k.scalar?.string else {
                recorded.append(ConfigError(path: path, line: k.mark?.line, message: "keys must be strings"))
                continue
            }
            if !seen.insert(name).inserted {
                recorded.append(ConfigError(path: path, key: name, line: k.mark?.line, message: "duplicate key"))
            } else if !consumed.contains(name) && !ignoredKeys.contains(name) {
                let keys = docs.map(\.key).filter { !$0.contains(".") }.sorted()
                let known = keys.joined(separator: ", ")
                let hint = Self.closest(to: name, in: keys).map { "did you mean `\($0)`? " } ?? ""
                recorded.append(ConfigError(path: path, key: name, line: k.mark?.line,
                                          message: "unknown key" + (known.isEmpty ? "" : " (\(hint)known: \(known))")))
            }
        }
    }

    /// The candidate within a small edit distance of `word`, for "did you mean".
    public static func closest(to word: String, in candidates: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var row = Array(0...b.count)
            for i in 1...max(1, a.count) where !a.isEmpty {
                var prev = row[0]
                row[0] = i
                for j in stride(from: 1, through: b.count, by: 1) {
                    let old = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                    prev = old
                }
            }
            return a.isEmpty ? b.count : row[b.count]
        }
        let w = Array(word.lowercased())
        let scored = candidates.map { ($0, distance(w, Array($0.lowercased()))) }
        guard word.count >= 3, let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(1, word.count / 3) else { return nil }
        return best.0
    }

    // MARK: Raw access

    /// The node for `key`, marking it as read.
    public func node(_ key: String) -> Node? {
        consumed.insert(key)
        guard let mapping else { return nil }
        for (k, v) in mapping where k.scalar?.string == key { return v }
        return nil
    }

    private func document(_ key: String, _ type: String, _ def: String?, _ doc: String) {
        if !docs.contains(where: { $0.key == key }) { docs.append(OptionDoc(key: key, type: type, defaultValue: def, doc: doc)) }
    }

    private func scalar(_ key: String, _ type: String, required: Bool) -> (String, Int?)? {
        guard mode == .decode else { return nil }
        guard let n = node(key) else {
            if required { fail(nil, "missing required key `\(key)`") }
            return nil
        }
        guard let s = n.scalar else {
            recorded.append(ConfigError(path: path, key: key, line: n.mark?.line,
                    message: "expected \(type), got a \(n.mapping != nil ? "mapping" : "list")"))
            return nil
        }
        if s.tag == .implicit || s.style == .plain, s.string == "~" || s.string == "null" || s.string.isEmpty, type != "string" {
            recorded.append(ConfigError(path: path, key: key, line: s.mark?.line, message: "expected \(type), got null"))
            return nil
        }
        return (s.string, s.mark?.line)
    }

    private func typeError(_ key: String, _ line: Int?, _ type: String, _ got: String) {
        recorded.append(ConfigError(path: path, key: key, line: line, message: "expected \(type), got `\(got)`"))
    }

    // MARK: Typed getters

    /// A string; `default: nil` makes it required.
    public func string(_ key: String, default def: String? = nil, doc: String) -> String {
        document(key, "string", def, doc)
        guard let (s, _) = scalar(key, "string", required: def == nil) else { return def ?? "" }
        return s
    }

    public func optionalString(_ key: String, doc: String) -> String? {
        document(key, "string", "none", doc)
        return scalar(key, "string", required: false)?.0
    }

    public func int(_ key: String, default def: Int, range: ClosedRange<Int>? = nil, doc: String) -> Int {
        document(key, "integer", String(def), doc)
        guard let (s, line) = scalar(key, "an integer", required: false) else { return def }
        guard let v = Int(s.replacingOccurrences(of: "_", with: "")) else { typeError(key, line, "an integer", s); return def }
        if let range, !range.contains(v) {
            recorded.append(ConfigError(path: path, key: key, line: line,
                    message: "must be between \(range.lowerBound) and \(range.upperBound), got \(v)"))
            return def
        }
        return v
    }

    public func double(_ key: String, default def: Double, doc: String) -> Double {
        document(key, "number", "\(def)", doc)
        guard let (s, line) = scalar(key, "a number", required: false) else { return def }
        guard let v = Double(s), v.isFinite else { typeError(key, line, "a number", s); return def }
        return v
    }

    public func bool(_ key: String, default def: Bool, doc: String) -> Bool {
        document(key, "boolean", String(def), doc)
        guard let (s, line) = scalar(key, "a boolean", required: false) else { return def }
        switch s.lowercased() {
        case "": return def   // a quoted empty value (`"${VAR:+true}"` with VAR unset): the default
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: typeError(key, line, "a boolean (true or false)", s); return def
        }
    }

    /// A duration such as `500ms`, `2s`, `10m`, `1h`, or `0` for "off";
    /// `positive: true` rejects `0`.
    public func duration(_ key: String, default def: Duration, positive: Bool = false, doc: String) -> Duration {
        document(key, "duration", Self.format(def), doc)
        guard let (s, line) = scalar(key, "a duration", required: false) else { return def }
        guard let d = Self.parseDuration(s) else {
            typeError(key, line, "a duration like 500ms, 2s, 10m (at most \(Self.maxDurationSeconds / 86_400 / 365) years)", s)
            return def
        }
        if positive && d <= .zero {
            recorded.append(ConfigError(path: path, key: key, line: line, message: "must be greater than 0"))
            return def
        }
        return d
    }

    /// The longest duration accepted: what fits `Duration`'s nanoseconds as Int64.
    public static let maxDurationSeconds = Int(Int64.max / 1_000_000_000)

    /// A byte count such as `4096`, `4KiB`, `1MiB`.
    public func byteSize(_ key: String, default def: Int, doc: String) -> Int {
        document(key, "bytes", String(def), doc)
        guard let (s, line) = scalar(key, "a size", required: false) else { return def }
        switch Self.byteSize(s) {
        case .bytes(let n): return n
        case .invalid: typeError(key, line, "a positive size like 4096 or 1MiB", s)
        case .overflow: typeError(key, line, "a size that fits 64 bits", s)
        }
        return def
    }

    enum ByteSize { case bytes(Int), invalid, overflow }

    /// `4096`, `4KiB`, `64MiB`, `1GiB` → bytes.
    static func byteSize(_ s: String) -> ByteSize {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1)]
        var number = s, mult = 1
        for (u, m) in units where s.hasSuffix(u) { number = String(s.dropLast(u.count)); mult = m; break }
        guard let v = Int(number.trimmingCharacters(in: .whitespaces)), v > 0 else { return .invalid }
        let (bytes, overflow) = v.multipliedReportingOverflow(by: mult)
        return overflow ? .overflow : .bytes(bytes)
    }

    /// A positive byte size within 64 bits, else nil.
    public static func parseByteSize(_ s: String) -> Int? {
        if case .bytes(let n) = byteSize(s) { return n }
        return nil
    }

    public func choice<E: RawRepresentable & CaseIterable>(_ key: String, default def: E, doc: String) -> E where E.RawValue == String {
        let all = E.allCases.map(\.rawValue)
        document(key, all.joined(separator: " | "), def.rawValue, doc)
        guard let (s, line) = scalar(key, "one of \(all.joined(separator: ", "))", required: false) else { return def }
        guard let v = E(rawValue: s) else {
            recorded.append(ConfigError(path: path, key: key, line: line, message: "must be one of \(all.joined(separator: ", ")), got `\(s)`"))
            return def
        }
        return v
    }

    public func stringList(_ key: String, default def: [String]? = nil, doc: String) -> [String] {
        document(key, "list of strings", def.map { "[\($0.joined(separator: ", "))]" }, doc)
        guard mode == .decode else { return def ?? [] }
        guard let n = node(key) else {
            if def == nil { fail(nil, "missing required key `\(key)`") }
            return def ?? []
        }
        guard let seq = n.sequence else {
            let example = n.scalar.map { " such as [\($0.string)]" } ?? ""
            recorded.append(ConfigError(path: path, key: key, line: n.mark?.line, message: "expected a list of strings\(example)"))
            return def ?? []
        }
        var out: [String] = []
        for item in seq {
            if let s = item.scalar?.string { out.append(s) } else {
                recorded.append(ConfigError(path: path, key: key, line: item.mark?.line, message: "expected a string list item"))
            }
        }
        return out
    }

    /// A mapping of string to string (e.g. static labels), in file order.
    public func stringMap(_ key: String, doc: String) -> [(String, String)] {
        document(key, "map of strings", "{}", doc)
        guard mode == .decode, let n = node(key) else { return [] }
        guard let m = n.mapping else {
            recorded.append(ConfigError(path: path, key: key, line: n.mark?.line, message: "expected a mapping of strings"))
            return []
        }
        var out: [(String, String)] = []
        for (k, v) in m {
            guard let ks = k.scalar?.string, let vs = v.scalar?.string else {
                recorded.append(ConfigError(path: path, key: key, line: k.mark?.line, message: "expected string keys and values"))
                continue
            }
            out.append((ks, vs))
        }
        return out
    }

    /// A nested mapping (`buffer: {…}`), read by its own reader; its errors and
    /// unknown keys are merged into this one's when `merge(_:)` is called.
    public func section(_ key: String, doc: String) -> OptionReader {
        document(key, "mapping", "{}", doc)
        let sub: OptionReader
        if mode == .describe {
            sub = OptionReader(describing: path.isEmpty ? key : "\(path).\(key)")
        } else {
            let n = node(key)
            if let n, n.mapping == nil {
                recorded.append(ConfigError(path: path, key: key, line: n.mark?.line, message: "expected a mapping"))
            }
            sub = OptionReader(mapping: n?.mapping, path: path.isEmpty ? key : "\(path).\(key)", line: n?.mark?.line, provenance: provenance)
        }
        return sub
    }

    /// A list of mappings (e.g. relabel `rules`), one reader per item, paths `key[i]`.
    public func sections(_ key: String, doc: String) -> [OptionReader] {
        document(key, "list of mappings", "[]", doc)
        guard mode == .decode, let n = node(key) else { return [] }
        guard let seq = n.sequence else {
            recorded.append(ConfigError(path: path, key: key, line: n.mark?.line, message: "expected a list of mappings"))
            return []
        }
        return seq.enumerated().compactMap { i, item in
            guard let m = item.mapping else {
                recorded.append(ConfigError(path: path, key: "\(key)[\(i)]", line: item.mark?.line, message: "expected a mapping"))
                return nil
            }
            return OptionReader(mapping: m, path: "\(path).\(key)[\(i)]", line: item.mark?.line, provenance: provenance)
        }
    }

    /// A mapping of names to mappings (`native_histograms: {"*_seconds": {…}}`), one
    /// reader per entry, in file order, paths `key.name`; in describe mode one
    /// reader for the entries' keys, named `<name>`.
    public func namedSections(_ key: String, doc: String) -> [(name: String, options: OptionReader)] {
        document(key, "map of mappings", "{}", doc)
        if mode == .describe { return [("<name>", OptionReader(describing: "\(path).\(key).<name>"))] }
        guard let n = node(key) else { return [] }
        guard let m = n.mapping else {
            recorded.append(ConfigError(path: path, key: key, line: n.mark?.line, message: "expected a mapping of names to mappings"))
            return []
        }
        var out: [(name: String, options: OptionReader)] = []
        for (k, v) in m {
            guard let name = k.scalar?.string, let sub = v.mapping else {
                recorded.append(ConfigError(path: path, key: key, line: k.mark?.line, message: "expected a mapping for each name"))
                continue
            }
            out.append((name, OptionReader(mapping: sub, path: "\(path).\(key).\(name)", line: v.mark?.line, provenance: provenance)))
        }
        return out
    }

    /// Takes over a sub-reader's errors (after its `finishReading()`).
    public func merge(_ sub: OptionReader) {
        recorded += sub.errors
        if mode == .describe {
            let prefix = String(sub.path.dropFirst(path.isEmpty ? 0 : path.count + 1))
            docs += sub.docs.map { OptionDoc(key: "\(prefix).\($0.key)", type: $0.type, defaultValue: $0.defaultValue, doc: $0.doc) }
        }
    }

    // MARK: Formats

    public static func parseDuration(_ text: String) -> Duration? {
        let s = text.trimmingCharacters(in: .whitespaces)
        if s == "0" { return .zero }
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("s", 1), ("m", 60), ("h", 3600)]
        func nanos(_ v: Double, _ mult: Double) -> Duration? {
            let n = v * mult * 1e9
            // Int64(Double) traps beyond Int64.max; 9.2e18 ns is 292 years.
            guard v >= 0, n.isFinite, n < Double(Int64.max) else { return nil }
            return .nanoseconds(Int64(n))
        }
        for (u, mult) in units where s.hasSuffix(u) {
            guard let v = Double(s.dropLast(u.count)) else { return nil }
            return nanos(v, mult)
        }
        if let v = Double(s) { return nanos(v, 1) }
        return nil
    }

    public static func format(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        if ms == 0 { return "0" }
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension Duration {
    /// Seconds as a Double, for C APIs and timers.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
