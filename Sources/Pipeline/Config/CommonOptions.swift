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

/// Where dead letters are written, beyond `key` and `max_length`: the module that
/// writes them (Redis) reads its own options from the `dead_letter` section — the
/// same way its stages read them — and makes the writer. Registered beside the
/// stages (`StageRegistry.deadLetters`); the framework knows no Redis.
public protocol DeadLetterDestination: Sendable {
    /// Reads (or, describing, documents) the destination's options.
    init(reading o: OptionReader)
    /// Connects lazily: called on the dead-letter thread, again after a failure.
    func makeWriter() throws -> any DeadLetterWriter
    /// Equal destinations keep their writer across a reload.
    func isSame(as other: any DeadLetterDestination) -> Bool
}

extension DeadLetterDestination where Self: Equatable {
    public func isSame(as other: any DeadLetterDestination) -> Bool { (other as? Self) == self }
}

/// Where a stage's rejected samples and payloads go: a capped list.
public struct DeadLetterConfig: Sendable, Equatable {
    public static let defaultMaxLength = 10_000
    /// A payload is kept up to this many bytes in a dead letter.
    public static let maxPayloadBytes = 64 * 1024
    public var destination: any DeadLetterDestination
    public var key: String
    public var maxLength: Int
    public init(destination: any DeadLetterDestination, key: String, maxLength: Int = defaultMaxLength) {
        self.destination = destination; self.key = key; self.maxLength = maxLength
    }
    public static func == (a: Self, b: Self) -> Bool { a.key == b.key && a.maxLength == b.maxLength && a.destination.isSame(as: b.destination) }
}

/// The options every transform and sink has, which the runtime (not the stage)
/// acts on. Declared once, here: the same calls decode them and document them for
/// `gateway stages`. Sources have none of them (a source's `workers` is its own).
package struct CommonOptions: Sendable {
    public static let defaultWorkers = 1
    public static let maxWorkers = 256

    /// Stage ids this stage reads from.
    public var inputs: [String] = []
    /// Threads the runtime runs the stage on.
    public var workers = defaultWorkers
    public var buffer = BufferConfig()
    /// nil: the stage's drops are only counted and logged.
    public var deadLetter: DeadLetterConfig?

    public init() {}

    /// Reads (or, describing, documents) the common options from a stage's mapping.
    /// `deadLetters` reads the `dead_letter` section's destination (nil: a program without dead letters).
    public static func read(_ o: OptionReader, deadLetters: (any DeadLetterDestination.Type)?) -> CommonOptions {
        var c = CommonOptions()
        c.inputs = o.stringList("inputs", doc: "Stage ids this stage reads from.")
        if o.mode == .decode, o.node("inputs")?.sequence != nil {
            if c.inputs.isEmpty { o.fail("inputs", "must name at least one stage") }
            var seen: Set<String> = []
            for id in c.inputs where !seen.insert(id).inserted { o.fail("inputs", "lists `\(id)` twice") }
        }
        c.workers = o.int("workers", default: defaultWorkers, range: 1...maxWorkers, doc: "Threads this stage runs on.")
        let b = o.section("buffer", doc: "The input buffer.")
        c.buffer.capacity = b.int("capacity", default: BufferConfig.defaultCapacity, range: 1...BufferConfig.maxCapacity, doc:
            "Batches the input buffer holds.")
        c.buffer.whenFull = b.choice("when_full", default: WhenFull.block, doc:
            "What a full input buffer does with a new batch: `block` waits (back-pressure reaches the source; the backlog waits upstream, in "
            + "Redis for redis_list), `drop_newest` discards it, counted as `buffer_full` and logged.")
        b.finishReading()
        o.merge(b)
        let d = o.section("dead_letter", doc: "Rejected samples and payloads of this stage, with reason, stage and time, onto a capped Redis list "
                          + "(empty key: off; Metrics__DeadLetterKey in the default pipeline). Redis is reached with the same options as the "
                          + "redis_list stages: url, tls, sentinel, cluster, connect_timeout, read_timeout.")
        let key = d.string("key", default: "", doc: "The list (LPUSH, newest first). Empty: no dead letters.")
        let maxLength = d.int("max_length", default: DeadLetterConfig.defaultMaxLength, range: 1...10_000_000, doc:
            "The list is trimmed to this many letters (LTRIM).")
        let destination = deadLetters.map { $0.init(reading: d) }
        d.finishReading()
        o.merge(d)
        if !key.isEmpty {
            if let destination {
                c.deadLetter = DeadLetterConfig(destination: destination, key: key, maxLength: maxLength)
            } else if o.mode == .decode {
                o.fail("dead_letter", "dead letters are not available in this program")
            }
        }
        return c
    }
}
