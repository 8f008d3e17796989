/// Expands `${VAR}` and `${VAR:-default}` in configuration text before it is parsed.
/// `$$` is a literal `$`. An unset `${VAR}` without default is an error (it names the
/// variable and line) rather than a silent empty string. `${1}`, `${2}`, … are not
/// variables (names cannot start with a digit) and stay as written, so relabel
/// replacements like `${1}_seconds` need no escaping; a named regex group must be
/// written `$${name}` (or `$name`).
public func expandEnvironment(_ text: String, environment: [String: String]) -> Result<String, ConfigErrors> {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    var errors: [ConfigError] = []
    var line = 1
    var i = text.startIndex
    while i < text.endIndex {
        let c = text[i]
        if c == "\n" { line += 1 }
        guard c == "$" else { out.append(c); i = text.index(after: i); continue }
        let next = text.index(after: i)
        if next < text.endIndex, text[next] == "$" { out.append("$"); i = text.index(after: next); continue }
        guard next < text.endIndex, text[next] == "{", let close = text[next...].firstIndex(of: "}") else {
            out.append(c); i = next; continue
        }
        let body = text[text.index(after: next)..<close]
        let name: Substring, fallback: Substring?
        if let sep = body.range(of: ":-") {
            name = body[..<sep.lowerBound]; fallback = body[sep.upperBound...]
        } else {
            name = body; fallback = nil
        }
        if let first = name.first, first.isNumber {
            out += text[i...close]   // a regex group reference, not a variable
        } else if let value = environment[String(name)], !(fallback != nil && value.isEmpty) {
            out += value
        } else if let fallback {
            out += fallback
        } else {
            errors.append(ConfigError(line: line, message: "environment variable `\(name)` is not set and `${\(name)}` has no default (write `${\(name):-value}`; a literal `${\(name)}`, such as a named regex group, is written `$${\(name)}`)"))
        }
        i = text.index(after: close)
    }
    return errors.isEmpty ? .success(out) : .failure(ConfigErrors(errors))
}
