import Yams

/// `${VAR}` and `${VAR:-default}` in a pipeline file, expanded *inside* the parsed
/// YAML scalars: a value from the environment is data, never YAML syntax, so a key
/// `a"b`, a password with `"` or `#`, or `q\tx` arrive exactly as set, and a
/// reference inside a YAML comment is never expanded (nor an error).
///
/// How: before parsing, every reference is replaced by a placeholder made of
/// private-use characters (safe in plain, quoted and flow scalars; lines are kept,
/// so error lines stay right); after parsing, placeholders in scalars (keys too)
/// are replaced by the variable's value. `${VAR:+word}` is `word` when VAR is set
/// and not empty, else nothing (as in the shell). `$$` is a literal `$`. An unset `${VAR}`
/// without default is an error naming the variable and line. `${1}`, `${2}`, … are
/// not variables (names cannot start with a digit) and stay as written, so relabel
/// replacements like `${1}_seconds` need no escaping; a named regex group must be
/// written `$${name}` (or `$name`).
struct EnvironmentTemplate {
    struct Reference {
        var name: String
        var fallback: String?
        /// `${VAR:+word}`: `word` when VAR is set and not empty, else nothing.
        var alternate: String?
        var line: Int
    }

    /// The text with placeholders, ready for the YAML parser.
    let text: String
    let references: [Reference]

    static let open: Unicode.Scalar = "\u{E000}"
    static let close: Unicode.Scalar = "\u{E001}"

    init(_ source: String) {
        var out = String.UnicodeScalarView()
        var refs: [Reference] = []
        let s = Array(source.unicodeScalars)
        var line = 1
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "\n" { line += 1 }
            guard c == "$", i + 1 < s.count else { out.append(c); i += 1; continue }
            if s[i + 1] == "$" { out.append("$"); i += 2; continue }
            guard s[i + 1] == "{", let close = s[(i + 2)...].firstIndex(of: "}") else { out.append(c); i += 1; continue }
            let body = String(String.UnicodeScalarView(s[(i + 2)..<close]))
            if let first = body.unicodeScalars.first, ("0"..."9").contains(first) {
                out.append(contentsOf: s[i...close])   // a regex group reference, not a variable
            } else {
                var name = body, fallback: String?, alternate: String?
                if let sep = body.range(of: ":-") {
                    name = String(body[..<sep.lowerBound]); fallback = String(body[sep.upperBound...])
                } else if let sep = body.range(of: ":+") {
                    name = String(body[..<sep.lowerBound]); alternate = String(body[sep.upperBound...])
                }
                out.append(Self.open)
                out.append(contentsOf: String(refs.count).unicodeScalars)
                out.append(Self.close)
                refs.append(Reference(name: name, fallback: fallback, alternate: alternate, line: line))
            }
            i = close + 1
        }
        text = String(out)
        references = refs
    }

    /// What expanding a tree found.
    struct Expansion {
        var errors: [ConfigError] = []
        /// Variables expanded into the scalar at each position (for error messages).
        var provenance: [Position: [String]] = [:]
        /// Every variable referenced outside comments, set or not.
        var used: Set<String> = []
        /// Variables referenced without a value or default (already an error each).
        var unset: Set<String> = []
    }

    struct Position: Hashable { var line: Int; var column: Int }

    /// `node` with every placeholder replaced by its value.
    func expand(_ node: Node, environment: [String: String], into result: inout Expansion) -> Node {
        switch node {
        case .scalar(var scalar):
            guard scalar.string.unicodeScalars.contains(Self.open) else { return node }
            var names: [String] = []
            let expanded = substitute(scalar.string, environment: environment, names: &names, result: &result)
            let style = scalar.style, tag = scalar.tag, mark = scalar.mark
            scalar.string = expanded
            scalar.style = style
            scalar.tag = tag
            scalar.mark = mark
            if let mark { result.provenance[Position(line: mark.line, column: mark.column), default: []] += names }
            return .scalar(scalar)
        case .mapping(let mapping):
            let pairs = mapping.map { (expand($0.key, environment: environment, into: &result), expand($0.value, environment: environment,
                    into: &result)) }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        case .sequence(let sequence):
            let items = sequence.map { expand($0, environment: environment, into: &result) }
            return .sequence(Node.Sequence(items, sequence.tag, sequence.style, sequence.mark))
        case .alias:
            return node
        }
    }

    private func substitute(_ s: String, environment: [String: String], names: inout [String], result: inout Expansion) -> String {
        var out = String.UnicodeScalarView()
        var it = s.unicodeScalars.makeIterator()
        while let c = it.next() {
            guard c == Self.open else { out.append(c); continue }
            var digits = ""
            while let d = it.next(), d != Self.close { digits.unicodeScalars.append(d) }
            guard let index = Int(digits), index < references.count else { continue }
            let ref = references[index]
            names.append(ref.name)
            result.used.insert(ref.name)
            if let alternate = ref.alternate {
                if let value = environment[ref.name], !value.isEmpty { out.append(contentsOf: alternate.unicodeScalars) }
            } else if let value = environment[ref.name], !(ref.fallback != nil && value.isEmpty) {
                out.append(contentsOf: value.unicodeScalars)
            } else if let fallback = ref.fallback {
                out.append(contentsOf: fallback.unicodeScalars)
            } else {
                result.unset.insert(ref.name)
                result.errors.append(ConfigError(line: ref.line,
                        message: "environment variable `\(ref.name)` is not set and `${\(ref.name)}` has no default (write "
                            + "`${\(ref.name):-value}`; a literal `${\(ref.name)}`, such as a named regex group, is written `$${\(ref.name)}`)"))
            }
        }
        return String(out)
    }
}
