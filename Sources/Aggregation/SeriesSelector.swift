import Patterns

/// A PromQL series selector, `name{label="v",other=~"re.*",x!="y",y!~"z"}`, as the
/// admin API's `match[]` takes it. A label a series does not have has the value
/// "" (as in Prometheus); `__name__` is the pushed metric name (a histogram's
/// family name, not its `_bucket` lines). Regexes are fully anchored, as
/// Prometheus anchors them. Like Prometheus, a selector must have one matcher
/// that does not match the empty string, so `{}` cannot delete everything.
public struct SeriesSelector: Sendable, CustomStringConvertible {
    public enum Op: String, Sendable { case equal = "=", notEqual = "!=", matches = "=~", notMatches = "!~" }

    public struct Matcher: Sendable {
        public let label: String
        public let op: Op
        public let value: String
        let regex: PCRE2Regex?
        /// `label` and `value` as bytes, compared with every series' labels.
        let labelBytes: [UInt8], valueBytes: [UInt8]

        init(label: String, op: Op, value: String, regex: PCRE2Regex?) {
            self.label = label; self.op = op; self.value = value; self.regex = regex
            labelBytes = Array(label.utf8); valueBytes = Array(value.utf8)
        }

        func matches(_ v: [UInt8], _ data: PCRE2MatchData?) -> Bool {
            switch op {
            case .equal: return v == valueBytes
            case .notEqual: return v != valueBytes
            case .matches, .notMatches:
                // A match that gave up selects nothing: a deletion leaves the series.
                guard let hit = v.withUnsafeBytes({ try? regex!.matches($0, data!) }) else { return false }
                return op == .matches ? hit : !hit
            }
        }
    }

    public var matchers: [Matcher]
    public let text: String
    public var description: String { text }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public init(parsing text: String) throws(ParseError) {
        self.text = text
        var p = Parser(Array(text.utf8))
        matchers = try p.selector()
        let matchesEmpty = matchers.allSatisfy { $0.matches([], $0.regex?.makeMatchData()) }
        if matchesEmpty {
            throw ParseError(description: "`\(text)`: a selector needs at least one matcher that does not match the empty string (as in Prometheus)")
        }
    }

    /// Whether the series with metric `name` and `labels` (unescaped) is selected.
    func matches(name: [UInt8], labels: [([UInt8], [UInt8])], data: [PCRE2MatchData?]) -> Bool {
        for (i, m) in matchers.enumerated() {
            let value = m.label == "__name__" ? name : labels.first { $0.0 == m.labelBytes }?.1 ?? []
            if !m.matches(value, data[i]) { return false }
        }
        return true
    }

    /// One match-data block per regex matcher (nil for the others), for one thread.
    func makeMatchData() -> [PCRE2MatchData?] { matchers.map { $0.regex?.makeMatchData() } }

    private struct Parser {
        let s: [UInt8]
        var i = 0
        init(_ s: [UInt8]) { self.s = s }

        mutating func skipSpace() { while i < s.count, s[i] == 32 || s[i] == 9 || s[i] == 10 || s[i] == 13 { i += 1 } }

        func fail(_ what: String) -> ParseError {
            ParseError(description: "`\(String(decoding: s, as: UTF8.self))`: \(what) at offset \(i)")
        }

        static func isNameStart(_ c: UInt8, colon: Bool) -> Bool {
            (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || (colon && c == 58)
        }
        static func isNameChar(_ c: UInt8, colon: Bool) -> Bool { isNameStart(c, colon: colon) || (c >= 48 && c <= 57) }

        mutating func identifier(colon: Bool) -> String? {
            guard i < s.count, Self.isNameStart(s[i], colon: colon) else { return nil }
            let start = i
            while i < s.count, Self.isNameChar(s[i], colon: colon) { i += 1 }
            return String(decoding: s[start..<i], as: UTF8.self)
        }

        mutating func selector() throws(ParseError) -> [Matcher] {
            var out: [Matcher] = []
            skipSpace()
            if let name = identifier(colon: true) {
                out.append(Matcher(label: "__name__", op: .equal, value: name, regex: nil))
            }
            skipSpace()
            if i < s.count, s[i] == UInt8(ascii: "{") {
                i += 1
                while true {
                    skipSpace()
                    if i < s.count, s[i] == UInt8(ascii: "}") { i += 1; break }
                    out.append(try matcher())
                    skipSpace()
                    if i < s.count, s[i] == UInt8(ascii: ",") { i += 1; continue }
                    if i < s.count, s[i] == UInt8(ascii: "}") { i += 1; break }
                    throw fail("expected `,` or `}`")
                }
            }
            skipSpace()
            guard i == s.count else { throw fail("unexpected `\(String(decoding: s[i...].prefix(10), as: UTF8.self))`") }
            guard !out.isEmpty else { throw fail("empty selector") }
            return out
        }

        mutating func matcher() throws(ParseError) -> Matcher {
            guard let label = identifier(colon: false) else { throw fail("expected a label name") }
            skipSpace()
            let op: Op
            func at(_ a: UInt8, _ b: UInt8) -> Bool { i + 1 < s.count && s[i] == a && s[i + 1] == b }
            if at(UInt8(ascii: "="), UInt8(ascii: "~")) { op = .matches; i += 2 }
            else if at(UInt8(ascii: "!"), UInt8(ascii: "=")) { op = .notEqual; i += 2 }
            else if at(UInt8(ascii: "!"), UInt8(ascii: "~")) { op = .notMatches; i += 2 }
            else if i < s.count, s[i] == UInt8(ascii: "=") { op = .equal; i += 1 }
            else { throw fail("expected =, !=, =~ or !~ after `\(label)`") }
            skipSpace()
            let value = try string()
            var regex: PCRE2Regex?
            if op == .matches || op == .notMatches {
                do { regex = try PCRE2Regex(anchoring: value) } catch { throw ParseError(description: error.description) }
            }
            return Matcher(label: label, op: op, value: value, regex: regex)
        }

        /// A PromQL string: "…" or '…' with Go escapes, or `…` raw.
        mutating func string() throws(ParseError) -> String {
            guard i < s.count, let quote = [UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "`")].first(where: { $0 == s[i] }) else {
                throw fail("expected a quoted string")
            }
            i += 1
            var out: [UInt8] = []
            while i < s.count {
                let c = s[i]
                if c == quote { i += 1; return String(decoding: out, as: UTF8.self) }
                if c == UInt8(ascii: "\\") && quote != UInt8(ascii: "`") {
                    guard i + 1 < s.count else { break }
                    let e = s[i + 1]
                    i += 2
                    switch e {
                    case UInt8(ascii: "n"): out.append(10)
                    case UInt8(ascii: "t"): out.append(9)
                    case UInt8(ascii: "r"): out.append(13)
                    case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"): out.append(e)
                    default: out += [UInt8(ascii: "\\"), e]   // regex escapes such as \d stay for PCRE2
                    }
                    continue
                }
                out.append(c)
                i += 1
            }
            throw fail("unterminated string")
        }
    }
}
