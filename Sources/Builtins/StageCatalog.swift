import Foundation
import Pipeline

/// Renders the documentation of every stage type from the same `OptionReader`
/// calls that decode its options (the common ones through `CommonOptions.read`),
/// so the docs cannot drift from the code.
public enum StageCatalog {
    public static func render(_ registry: StageRegistry, markdown: Bool) -> String {
        var out = ""
        for type in registry.sorted {
            let docs = describe(type, deadLetters: registry.deadLetters)
            let io = "\(type.inputKind?.rawValue ?? "—") → \(type.outputKind?.rawValue ?? "—")"
            if markdown {
                out += "## `\(type.type)` (\(type.role.rawValue), \(io))\n\n\(type.summary)\n\n"
                out += "| key | type | default | description |\n|---|---|---|---|\n"
                for d in docs {
                    let def = d.defaultValue.map { $0.isEmpty ? "empty" : "`\(cell($0))`" } ?? "required"
                    out += "| `\(cell(d.key))` | \(cell(d.type)) | \(def) | \(cell(d.doc)) |\n"
                }
                out += "\n"
            } else {
                out += "\(type.type) (\(type.role.rawValue), \(io))\n  \(type.summary)\n"
                for d in docs {
                    let def = d.defaultValue.map { $0.isEmpty ? "\"\"" : $0 } ?? "(required)"
                    out += "  \(d.key): \(d.type) = \(def)\n      \(d.doc)\n"
                }
                out += "\n"
            }
        }
        return out
    }

    /// A Markdown table cell: `|` would split it, a newline would end the row.
    static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    /// Options: the common ones the runtime reads, then the stage's own. Nested
    /// mappings show as their keys (`buffer.capacity`), not as a row of their own.
    package static func describe(_ type: any StageConfig.Type, deadLetters: (any DeadLetterDestination.Type)? = nil) -> [OptionDoc] {
        let reader = OptionReader(describing: type.type)
        if type.role != .source { _ = CommonOptions.read(reader, deadLetters: deadLetters) }
        _ = type.decode(reader)
        return reader.docs.filter { $0.type != "mapping" }
    }
}
