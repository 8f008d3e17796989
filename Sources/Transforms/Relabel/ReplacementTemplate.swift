/// A `replacement` or `target_label` template, parsed once with the expansion
/// rules of Go's `regexp.Expand` that Prometheus uses: `$1`, `${1}`, `$name`,
/// `${name}`, `$$` for a literal `$`. As in Go, `$name` takes the longest run of
/// letters, digits and `_`, so `$1x` refers to a group named `1x` (usually
/// empty) — write `${1}x`. A malformed reference is kept as literal text.
struct ReplacementTemplate: Sendable {
    enum Part: Sendable { case literal([UInt8]), group(Int), missing }
    let parts: [Part]

    init(_ template: String, groupNumber: (String) -> Int?) {
        var parts: [Part] = []
        var literal: [UInt8] = []
        let chars = Array(template.unicodeScalars)
        var i = 0
        func isWord(_ c: Unicode.Scalar) -> Bool { c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" }
        while i < chars.count {
            let c = chars[i]
            guard c == "$" else { literal.append(contentsOf: String(c).utf8); i += 1; continue }
            if i + 1 < chars.count, chars[i + 1] == "$" { literal.append(0x24); i += 2; continue }
            var j = i + 1
            let brace = j < chars.count && chars[j] == "{"
            if brace { j += 1 }
            let nameStart = j
            while j < chars.count, isWord(chars[j]) { j += 1 }
            var ok = j > nameStart
            if ok && brace { if j < chars.count, chars[j] == "}" { j += 1 } else { ok = false } }
            guard ok else { literal.append(0x24); i += 1; continue }   // malformed: `$` is text
            let name = String(String.UnicodeScalarView(chars[nameStart..<(brace ? j - 1 : j)]))
            if !literal.isEmpty { parts.append(.literal(literal)); literal = [] }
            if let n = Int(name), n >= 0, n < 100_000_000, !(name.hasPrefix("0") && name.count > 1) {
                parts.append(.group(n))
            } else if let n = groupNumber(name) {
                parts.append(.group(n))
            } else {
                parts.append(.missing)
            }
            i = j
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// Expands into `out` with the capture `groups` of `subject`.
    func expand(subject: UnsafeRawBufferPointer, groups: [Range<Int>?], into out: inout [UInt8]) {
        for p in parts {
            switch p {
            case .literal(let bytes): out.append(contentsOf: bytes)
            case .group(let n): if n < groups.count, let r = groups[n] { out.append(contentsOf: subject[r]) }
            case .missing: break
            }
        }
    }
}
