import Patterns
import Pipeline

/// The relabel actions of Prometheus's `metric_relabel_configs`.
public enum RelabelAction: String, Sendable, CaseIterable {
    case replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase
}

/// One rule, decoded and checked the way Prometheus checks a relabel_config, with
/// its regex compiled (PCRE2, JIT) and its templates parsed. A class: the hot loop
/// reads rules by reference instead of copying a dozen fields per sample.
public final class RelabelRule: Sendable {
    public let action: RelabelAction
    /// Labels whose values are joined with `separator`; `__name__` is the metric
    /// name, `__type__` the metric type (read-only).
    public let sourceLabels: [String]
    public let separator: String
    public let regex: PCRE2Regex
    public let targetLabel: String
    public let replacement: String
    public let modulus: UInt64
    let sourceBytes: [[UInt8]]
    let targetBytes: [UInt8]
    let separatorBytes: [UInt8]
    let target: ReplacementTemplate
    let replacementTemplate: ReplacementTemplate

    static let defaultRegex = "(.*)"
    static let defaultSeparator = ";"
    static let defaultReplacement = "$1"

    /// Decodes rule `o` (`rules[i]`); problems are recorded on `o` with their lines.
    public init?(options o: OptionReader) {
        action = o.choice("action", default: RelabelAction.replace, doc: "What the rule does.")
        sourceLabels = o.stringList("source_labels", default: [], doc: "Labels whose values are joined and matched.")
        separator = o.string("separator", default: Self.defaultSeparator, doc: "Joins the source label values.")
        let pattern = o.string("regex", default: Self.defaultRegex, doc: "Fully anchored PCRE2 regex.")
        targetLabel = o.string("target_label", default: "", doc: "Label to write (`__name__` renames the metric).")
        replacement = o.string("replacement", default: Self.defaultReplacement, doc: "Value written; `$1`, `${name}` refer to groups.")
        let mod = o.int("modulus", default: 0, range: 0...Int.max, doc: "Modulus for hashmod.")
        modulus = UInt64(mod)
        o.finishReading()
        do { regex = try PCRE2Regex(anchoring: pattern) } catch {
            o.fail("regex", error.description)
            return nil
        }
        sourceBytes = sourceLabels.map { Array($0.utf8) }
        targetBytes = Array(targetLabel.utf8)
        separatorBytes = Array(separator.utf8)
        let r = regex
        target = ReplacementTemplate(targetLabel) { r.groupNumber($0) }
        replacementTemplate = ReplacementTemplate(replacement) { r.groupNumber($0) }

        // The checks of Prometheus's relabel.Config.Validate.
        let keys = Set(["source_labels", "separator", "regex", "target_label", "replacement", "modulus"].filter { o.lineOf($0) != nil })
        func only(_ allowed: Set<String>) {
            for k in keys.subtracting(allowed).sorted() {
                o.fail(k, "`\(action.rawValue)` takes only \(allowed.sorted().joined(separator: ", ")), not `\(k)`")
            }
        }
        switch action {
        case .replace:
            if targetLabel.isEmpty { o.fail(nil, "`replace` requires `target_label`") }
            else if !Self.isTargetTemplate(targetLabel) { o.fail("target_label", "`\(targetLabel)` is not a valid label name or template") }
        case .lowercase, .uppercase:
            if !NameSyntax.isValidLabelName(targetLabel) { o.fail(targetLabel.isEmpty ? nil : "target_label",
                    "`\(action.rawValue)` requires a valid `target_label`") }
            only(["source_labels", "separator", "target_label"])
        case .hashmod:
            if !NameSyntax.isValidLabelName(targetLabel) { o.fail(targetLabel.isEmpty ? nil : "target_label",
                    "`hashmod` requires a valid `target_label`") }
            if modulus == 0 { o.fail(keys.contains("modulus") ? "modulus" : nil, "`hashmod` requires a `modulus` greater than 0") }
        case .keepequal, .dropequal:
            if !NameSyntax.isValidLabelName(targetLabel) { o.fail(targetLabel.isEmpty ? nil : "target_label",
                    "`\(action.rawValue)` requires a valid `target_label`") }
            only(["source_labels", "separator", "target_label"])
        case .labeldrop, .labelkeep:
            only(["regex"])
        case .labelmap:
            only(["regex", "replacement"])
        case .keep, .drop:
            break
        }
        if [.keep, .drop, .replace, .hashmod, .keepequal, .dropequal, .lowercase, .uppercase].contains(action), sourceLabels.isEmpty,
           action != .replace {
            o.fail(nil, "`\(action.rawValue)` requires `source_labels`")
        }
    }

    /// A label name, or a name built from `$1`/`${name}` references (Prometheus's relabelTarget).
    static func isTargetTemplate(_ s: String) -> Bool {
        if NameSyntax.isValidLabelName(s) { return true }
        guard s.contains("$") else { return false }
        let stripped = s.replacingDollarRefs()
        return stripped.isEmpty || stripped.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    }
}

private extension String {
    /// Removes `$name` and `${name}` references, for target-label checks.
    func replacingDollarRefs() -> String {
        var out = "", i = startIndex
        while i < endIndex {
            if self[i] == "$" {
                var j = index(after: i)
                if j < endIndex, self[j] == "{" {
                    if let close = self[j...].firstIndex(of: "}") { i = index(after: close); continue }
                    return "!"
                }
                while j < endIndex, self[j].isLetter || self[j].isNumber || self[j] == "_" { j = index(after: j) }
                if j == index(after: i) { return "!" }
                i = j
                continue
            }
            out.append(self[i]); i = index(after: i)
        }
        return out
    }
}
