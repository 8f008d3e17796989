import Pipeline

/// Renders the documentation of every stage type from the same `OptionReader`
/// calls that decode its options, so the docs cannot drift from the code.
enum StageCatalog {
    static func render(_ registry: StageRegistry, markdown: Bool) -> String {
        var out = ""
        for type in registry.sorted {
            let docs = describe(type)
            let io = "\(type.inputKind?.rawValue ?? "—") → \(type.outputKind?.rawValue ?? "—")"
            if markdown {
                out += "### `\(type.type)` (\(type.role.rawValue), \(io))\n\n\(type.summary)\n\n"
                out += "| key | type | default | description |\n|---|---|---|---|\n"
                for d in docs {
                    out += "| `\(d.key)` | \(d.type) | \(d.defaultValue.map { "`\($0)`" } ?? "required") | \(d.doc.replacingOccurrences(of: "|", with: "\\|")) |\n"
                }
                out += "\n"
            } else {
                out += "\(type.type) (\(type.role.rawValue), \(io))\n  \(type.summary)\n"
                for d in docs {
                    out += "  \(d.key): \(d.type) = \(d.defaultValue ?? "(required)")\n      \(d.doc)\n"
                }
                out += "\n"
            }
        }
        return out
    }

    /// Options: the common ones the runtime reads, then the stage's own.
    static func describe(_ type: any StageConfig.Type) -> [OptionDoc] {
        let reader = OptionReader(describing: type.type)
        if type.role != .source {
            _ = reader.stringList("inputs", doc: "Stage ids this stage reads from.")
            _ = reader.int("workers", default: 1, doc: "Threads this stage runs on.")
            _ = reader.int("buffer.capacity", default: BufferConfig.defaultCapacity, doc: "Batches the input buffer holds.")
            _ = reader.choice("buffer.when_full", default: WhenFull.block, doc: "What a full input buffer does with a new batch: wait (back-pressure) or discard it, counted.")
        }
        _ = type.decode(reader)
        return reader.docs
    }
}
