import Pipeline

/// Adds fixed labels to every sample, e.g. `env: prod`. A label the sample
/// already has wins unless `overwrite` is true. Put `sort_labels` after it.
public struct StaticLabelsConfig: StageConfig {
    public static let type = "static_labels"
    public static let role = StageRole.transform
    public static let summary = "Adds fixed labels to every sample."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = .samples
    public static let example = "labels: { region: eu-west-1 }\n"

    /// Label name → value, added to every sample.
    public var labels: [(String, String)]
    /// Replace a label the sample already has.
    public var overwrite: Bool

    public init(options o: OptionReader) {
        labels = o.stringMap("labels", doc: "Labels to add, name: value.")
        overwrite = o.bool("overwrite", default: false, doc: "Replace labels the sample already has.")
    }

    public func validate() throws {
        guard !labels.isEmpty else { throw ConfigError.invalid(key: "labels", reason: "must not be empty") }
        for (name, _) in labels where !NameSyntax.isUsableLabelName(name) {
            throw ConfigError.invalid(key: "labels", reason: "`\(name)` is not a valid label name")
        }
    }

    public func makeStage(context: StageContext) throws -> Stage {
        .transform(StaticLabelsTransform(config: self))
    }
}

public final class StaticLabelsTransform: Transform {
    let config: StaticLabelsConfig

    public init(config: StaticLabelsConfig) { self.config = config }

    /// Runs on the stage's worker threads, each with a batch of its own.
    public func process(_ batch: inout Batch, worker: Int) {
        for i in batch.samples.records.indices where !batch.samples.records[i].isDropped {
            for (name, value) in config.labels where config.overwrite || batch.samples.label(name, at: i) == nil {
                batch.samples.setLabel(name, value, at: i)
            }
        }
    }
}
