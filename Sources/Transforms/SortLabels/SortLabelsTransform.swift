import Pipeline

/// Sorts each sample's labels by name, so `{a,b}` and `{b,a}` are one series.
/// The default pipeline includes it unless `Metrics__SortIncomingLabels=false`;
/// without it, label order is part of a series' identity, as in the .NET gateway.
/// Sorts the label references only; no bytes are copied.
public struct SortLabelsConfig: StageConfig {
    public static let type = "sort_labels"
    public static let role = StageRole.transform
    public static let summary = "Sorts each sample's labels by name so that label order does not matter."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = .samples
    public static let example = "enabled: true\n"

    /// When false the stage passes samples through untouched (Metrics__SortIncomingLabels).
    public var enabled: Bool

    public init(options o: OptionReader) {
        enabled = o.bool("enabled", default: true, doc: "Sort labels; false passes samples through unchanged (Metrics__SortIncomingLabels).")
    }

    public func makeStage(context: StageContext) throws -> Stage { .transform(SortLabelsTransform(enabled: enabled)) }
}

public final class SortLabelsTransform: Transform {
    let enabled: Bool
    public init(enabled: Bool = true) { self.enabled = enabled }

    public func process(_ batch: inout Batch, worker: Int) {
        guard enabled else { return }
        let bytes = batch.samples.bytes
        bytes.withUnsafeBytes { arena in
            batch.samples.labels.withUnsafeMutableBufferPointer { labels in
                for r in batch.samples.records where !r.isDropped && r.labelCount > 1 {
                    // Insertion sort: label sets are small and usually already sorted.
                    let lo = Int(r.labelStart), hi = lo + Int(r.labelCount)
                    for i in (lo + 1)..<hi {
                        let item = labels[i]
                        var j = i - 1
                        while j >= lo && Self.less(item.name, labels[j].name, arena) {
                            labels[j + 1] = labels[j]
                            j -= 1
                        }
                        labels[j + 1] = item
                    }
                }
            }
        }
    }

    @inline(__always)
    static func less(_ a: ByteSpan, _ b: ByteSpan, _ arena: UnsafeRawBufferPointer) -> Bool {
        bytesPrecede(arena[span: a], arena[span: b])
    }
}
