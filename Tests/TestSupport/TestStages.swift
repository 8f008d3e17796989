import Foundation
import Logging
import Pipeline
import Synchronization

/// In-memory stages for exercising the runtime without Redis or HTTP.

/// Emits `batches` sample batches of `batch_size` gauges named `seq` whose values
/// count up from 0 (`forever: true` keeps going until stopped).
public struct CountingSourceConfig: StageConfig {
    public static let type = "test_counter_source"
    public static let role = StageRole.source
    public static let summary = "Test: emits numbered samples."
    public static let inputKind: ItemKind? = nil
    public static let outputKind: ItemKind? = .samples
    public static let example = ""
    var batches: Int
    var batchSize: Int
    var forever: Bool
    public var name: String
    public init(options o: OptionReader) {
        batches = o.int("batches", default: 10, doc: "Batches to emit.")
        batchSize = o.int("batch_size", default: 10, doc: "Samples per batch.")
        forever = o.bool("forever", default: false, doc: "Emit until stopped.")
        name = o.string("name", default: "seq", doc: "Metric name.")
    }
    public func makeStage(context: StageContext) throws -> Stage {
        .source(CountingSource(config: self, origin: context.telemetry.registerOrigin(labels: [("worker", "0"), ("queueKey", context.id)])))
    }
}

/// Its count survives a restart of its threads (a reload that keeps the instance).
public final class CountingSource: Source {
    let config: CountingSourceConfig
    let origin: UInt16
    private let position = Mutex((next: 0, batches: 0))
    init(config: CountingSourceConfig, origin: UInt16) { self.config = config; self.origin = origin }
    public func run(worker: Int, output: StageOutput, control: SourceControl) {
        var (next, b) = position.withLock { $0 }
        defer { position.withLock { $0 = (next, b) } }
        while (config.forever || b < config.batches) && !control.isStopping {
            var s = SampleBatch()
            let name = s.appendString(config.name)
            for _ in 0..<config.batchSize {
                s.records.append(SampleRecord(type: .gauge, origin: origin, value: Double(next), name: name))
                next += 1
            }
            output.emit(Batch(samples: s))
            b += 1
        }
    }
}

/// Sleeps a random 0–`max_delay_us` per batch, to shuffle completion order.
public struct JitterTransformConfig: StageConfig {
    public static let type = "test_jitter"
    public static let role = StageRole.transform
    public static let summary = "Test: random delay."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = .samples
    public static let example = ""
    var maxDelay: Int
    public init(options o: OptionReader) { maxDelay = o.int("max_delay_us", default: 500, doc: "Max delay.") }
    public func makeStage(context: StageContext) throws -> Stage { .transform(JitterTransform(maxDelay: maxDelay)) }
}

final class JitterTransform: Transform {
    let maxDelay: Int
    init(maxDelay: Int) { self.maxDelay = maxDelay }
    func process(_ batch: inout Batch, worker: Int) {
        if maxDelay > 0 { usleep(UInt32.random(in: 0...UInt32(maxDelay))) }
    }
}

/// A payload-emitting source, for kind-mismatch checks.
public struct PayloadSourceConfig: StageConfig {
    public static let type = "test_payload_source"
    public static let role = StageRole.source
    public static let summary = "Test: emits one JSON payload."
    public static let inputKind: ItemKind? = nil
    public static let outputKind: ItemKind? = .payloads
    public static let example = ""
    public init(options o: OptionReader) {}
    public func makeStage(context: StageContext) throws -> Stage { .source(OnePayloadSource()) }
}

final class OnePayloadSource: Source {
    func run(worker: Int, output: StageOutput, control: SourceControl) {
        var p = PayloadBatch()
        p.append(Array(#"{"type":"counter","name":"one_total","value":1,"labels":{"a":"b"}}"#.utf8), origin: 0)
        output.emit(Batch(payloads: p))
    }
}

/// Records the values it consumes under its stage id in `TestRegistry`.
public struct CollectSinkConfig: StageConfig {
    public static let type = "test_collect"
    public static let role = StageRole.sink
    public static let summary = "Test: collects sample values."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = nil
    public static let example = ""
    var ordered: Bool
    var key: String
    var delay: Int
    var durable: Bool
    public var needsRedelivery: Bool { durable }
    public init(options o: OptionReader) {
        durable = o.bool("durable", default: false, doc: "Claim to hold durable state (and take none over in a reload).")
        ordered = o.bool("ordered", default: true, doc: "Ask for source order.")
        delay = o.int("delay_us", default: 0, doc: "Sleep per batch.")
        key = o.string("key", default: "", doc: "Registry key (default: stage id).")
    }
    public func makeStage(context: StageContext) throws -> Stage {
        .sink(CollectSink(key: key.isEmpty ? context.id : key, ordered: ordered, delay: UInt32(delay)))
    }
}

final class CollectSink: Sink {
    let key: String
    let ordered: Bool
    let delay: UInt32
    init(key: String, ordered: Bool, delay: UInt32 = 0) { self.key = key; self.ordered = ordered; self.delay = delay }
    var wantsOrderedInput: Bool { ordered }
    func consume(_ batch: inout Batch, worker: Int) {
        if delay > 0 { usleep(delay) }
        var values: [(String, Double)] = []
        for (i, r) in batch.samples.records.enumerated() where !r.isDropped {
            values.append((batch.samples.name(at: i), r.value))
        }
        TestRegistry.shared.append(key, values)
    }
}

/// Where test sinks put what they saw. Tests use unique keys.
public final class TestRegistry: Sendable {
    public static let shared = TestRegistry()
    private let state = Mutex<[String: [(String, Double)]]>([:])
    public func append(_ key: String, _ values: [(String, Double)]) { state.withLock { $0[key, default: []] += values } }
    public func values(_ key: String) -> [(String, Double)] { state.withLock { $0[key] ?? [] } }
}

public let testRegistry: StageRegistry = [
    CountingSourceConfig.self, JitterTransformConfig.self, PayloadSourceConfig.self, CollectSinkConfig.self,
    DropOddTransformConfig.self, LifecycleSinkConfig.self,
]

public func uniqueKey(_ prefix: String = "k") -> String { "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())" }

/// Records raw payloads as strings under its stage id (or `key`) in `PayloadRegistry`.
public struct CollectPayloadsSinkConfig: StageConfig {
    public static let type = "test_collect_payloads"
    public static let role = StageRole.sink
    public static let summary = "Test: collects payloads."
    public static let inputKind: ItemKind? = .payloads
    public static let outputKind: ItemKind? = nil
    public static let example = ""
    var key: String
    public init(options o: OptionReader) { key = o.string("key", default: "", doc: "Registry key.") }
    public func makeStage(context: StageContext) throws -> Stage { .sink(CollectPayloadsSink(key: key.isEmpty ? context.id : key)) }
}

final class CollectPayloadsSink: Sink {
    let key: String
    init(key: String) { self.key = key }
    var wantsOrderedInput: Bool { true }
    func consume(_ batch: inout Batch, worker: Int) {
        var out: [(String, Double)] = []
        for i in 0..<batch.payloads.count {
            out.append((batch.payloads.withPayload(i) { String(decoding: $0, as: UTF8.self) }, Double(batch.payloads.origins[i])))
        }
        TestRegistry.shared.append(key, out)
    }
}

/// Drops every sample with an odd value, as `test_odd`.
public struct DropOddTransformConfig: StageConfig {
    public static let type = "test_drop_odd"
    public static let role = StageRole.transform
    public static let summary = "Test: drops odd values."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = .samples
    public static let example = ""
    public init(options o: OptionReader) {}
    public func makeStage(context: StageContext) throws -> Stage { .transform(DropOddTransform()) }
}

final class DropOddTransform: Transform {
    func process(_ batch: inout Batch, worker: Int) {
        for i in batch.samples.records.indices where Int(batch.samples.records[i].value) % 2 == 1 {
            batch.drop(sample: i, reason: DropReason("test_odd"))
        }
    }
}

/// Records `start`/`shutdown` under `key` in `TestRegistry`; `fail_start` makes
/// `start` throw, `fail_build` makes the factory throw, `max_starts` makes every
/// start after that many (for this key and id) throw.
public struct LifecycleSinkConfig: StageConfig {
    public static let type = "test_lifecycle"
    public static let role = StageRole.sink
    public static let summary = "Test: records its lifecycle."
    public static let inputKind: ItemKind? = .samples
    public static let outputKind: ItemKind? = nil
    public static let example = "key: k\n"
    var key: String
    var failStart: Bool
    var failBuild: Bool
    var maxStarts: Int
    public init(options o: OptionReader) {
        key = o.string("key", default: "lifecycle", doc: "Registry key.")
        maxStarts = o.int("max_starts", default: 0, doc: "Starts that succeed (0: all).")
        failStart = o.bool("fail_start", default: false, doc: "start() throws.")
        failBuild = o.bool("fail_build", default: false, doc: "makeStage throws.")
    }
    public struct Failure: Error, CustomStringConvertible { public var description: String }
    public func makeStage(context: StageContext) throws -> Stage {
        if failBuild { throw Failure(description: "cannot build \(context.id)") }
        return .sink(LifecycleSink(key: key, id: context.id, failStart: failStart, maxStarts: maxStarts))
    }
}

final class LifecycleSink: Sink {
    let key: String, id: String, failStart: Bool, maxStarts: Int
    init(key: String, id: String, failStart: Bool, maxStarts: Int) {
        self.key = key; self.id = id; self.failStart = failStart; self.maxStarts = maxStarts
    }
    var wantsOrderedInput: Bool { false }
    func start() throws {
        if failStart { throw LifecycleSinkConfig.Failure(description: "\(id) refuses to start") }
        if maxStarts > 0 && TestRegistry.shared.values(key).filter({ $0.0 == "start \(id)" }).count >= maxStarts {
            throw LifecycleSinkConfig.Failure(description: "\(id) started \(maxStarts) times already")
        }
        TestRegistry.shared.append(key, [("start \(id)", 1)])
    }
    func shutdown() { TestRegistry.shared.append(key, [("shutdown \(id)", 1)]) }
    func consume(_ batch: inout Batch, worker: Int) {}
}

/// A log handler that keeps every message, for tests of what is logged.
public final class CapturedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(Logger.Level, String, Logger.Metadata)] = []
    public init() {}
    public var logger: Logger {
        Logger(label: "captured") { _ in Handler(sink: self) }
    }
    public var messages: [(level: Logger.Level, text: String, metadata: Logger.Metadata)] {
        lock.lock(); defer { lock.unlock() }
        return lines.map { ($0.0, $0.1, $0.2) }
    }
    fileprivate func append(_ level: Logger.Level, _ text: String, _ metadata: Logger.Metadata) {
        lock.lock(); lines.append((level, text, metadata)); lock.unlock()
    }
    struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            sink.append(event.level, event.message.description, metadata.merging(event.metadata ?? [:]) { $1 })
        }
    }
}
