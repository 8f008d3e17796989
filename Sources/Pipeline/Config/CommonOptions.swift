/// The input buffer of a transform or sink.
public struct BufferConfig: Sendable, Equatable {
    /// Default batches a stage's input buffer holds (a batch is up to a few thousand samples).
    public static let defaultCapacity = 32
    public static let maxCapacity = 1_000_000
    public var capacity: Int = defaultCapacity
    public var whenFull: WhenFull = .block
    public init(capacity: Int = defaultCapacity, whenFull: WhenFull = .block) {
        self.capacity = capacity; self.whenFull = whenFull
    }
}

/// The options every transform and sink has, which the runtime (not the stage)
/// acts on. Declared once, here: the same calls decode them and document them for
/// `gateway stages`. Sources have none of them (a source's `workers` is its own).
public struct CommonOptions: Sendable {
    public static let defaultWorkers = 1
    public static let maxWorkers = 256

    /// Stage ids this stage reads from.
    public var inputs: [String] = []
    /// Threads the runtime runs the stage on.
    public var workers = defaultWorkers
    public var buffer = BufferConfig()

    public init() {}

    /// Reads (or, describing, documents) the common options from a stage's mapping.
    public static func read(_ o: OptionReader) -> CommonOptions {
        var c = CommonOptions()
        c.inputs = o.stringList("inputs", doc: "Stage ids this stage reads from.")
        if o.mode == .decode, o.node("inputs")?.sequence != nil {
            if c.inputs.isEmpty { o.fail("inputs", "must name at least one stage") }
            var seen: Set<String> = []
            for id in c.inputs where !seen.insert(id).inserted { o.fail("inputs", "lists `\(id)` twice") }
        }
        c.workers = o.int("workers", default: defaultWorkers, range: 1...maxWorkers, doc: "Threads this stage runs on.")
        let b = o.section("buffer", doc: "The input buffer.")
        c.buffer.capacity = b.int("capacity", default: BufferConfig.defaultCapacity, range: 1...BufferConfig.maxCapacity, doc: "Batches the input buffer holds.")
        c.buffer.whenFull = b.choice("when_full", default: WhenFull.block, doc: "What a full input buffer does with a new batch: `block` waits (back-pressure reaches the source; the backlog waits upstream, in Redis for redis_list), `drop_newest` discards it, counted as `buffer_full` and logged.")
        b.finishReading()
        o.merge(b)
        return c
    }
}
