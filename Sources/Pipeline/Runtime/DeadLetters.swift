import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Writes dead letters to their list (made by the registered `DeadLetterDestination`;
/// the framework knows no Redis). Called from one thread.
public protocol DeadLetterWriter: AnyObject {
    /// LPUSHes `letters` (oldest first) onto `key` and trims it to `maxLength`.
    func send(_ letters: [[UInt8]], key: String, maxLength: Int) throws
}

/// One stage's dead letters on their way to Redis; intended drops (`relabel_drop`)
/// are not letters. Stages never wait for it: a batch hands over at most `perBatch` letters, the queue holds at most
/// `capacity`, and what does not fit — or what Redis refuses — is counted as
/// dropped, so a flood of bad input or a dead Redis cannot slow ingestion. A
/// thread of its own writes what is queued every `interval`, pipelined.
final class DeadLetterQueue: Sendable {
    static let perBatch = 100
    static let capacity = 10_000
    static let interval = 0.1

    let config: DeadLetterConfig
    let stage: String
    private let pending = Mutex<[[UInt8]]>([])
    let written = MetaCounter()
    let dropped = MetaCounter()
    private let control = SourceControl()
    private let thread = Mutex<OSThread?>(nil)
    private let warnings: RateLimitedLog

    init(config: DeadLetterConfig, stage: String, logger: Logger) {
        self.config = config
        self.stage = stage
        warnings = RateLimitedLog(logger: logger, interval: .seconds(10))
    }

    /// From a stage's thread: the letters of one batch, as JSON lines.
    func enqueue(_ drops: DropTally) {
        if drops.letterOverflow > 0 { dropped.add(UInt64(drops.letterOverflow)) }
        guard !drops.letters.isEmpty else { return }
        let now = rfc3339Now()
        let lines = drops.letters.map { l in
            Array(("{\"ts\":\"\(now)\",\"stage\":\"\(jsonEscape(stage))\",\"reason\":\"\(jsonEscape(l.reason.name))\","
                   + "\"note\":\"\(jsonEscape(l.note))\",\"payload\":\"\(jsonEscape(String(decoding: l.payload, as: UTF8.self)))\"}").utf8)
        }
        let refused = pending.withLock { p -> Int in
            let room = max(0, Self.capacity - p.count)
            p.append(contentsOf: lines.prefix(room))
            return lines.count - min(room, lines.count)
        }
        if refused > 0 { dropped.add(UInt64(refused)) }
    }

    func start(_ makeWriter: @escaping @Sendable () throws -> any DeadLetterWriter) {
        let t = OSThread.spawn(name: "dead-letters") { [self] in
            var writer: (any DeadLetterWriter)?
            while true {
                let stopping = control.isStopping
                let batch = pending.withLock { p in defer { p.removeAll(keepingCapacity: true) }; return p }
                if !batch.isEmpty {
                    do {
                        if writer == nil { writer = try makeWriter() }
                        try writer!.send(batch, key: config.key, maxLength: config.maxLength)
                        written.add(UInt64(batch.count))
                    } catch {
                        writer = nil
                        dropped.add(UInt64(batch.count))
                        warnings.warning("cannot write dead letters to `\(config.key)`; they are dropped: \(error)")
                    }
                }
                if stopping { return }
                control.sleep(seconds: Self.interval)
            }
        }
        thread.withLock { $0 = t }
    }

    /// Writes what is queued, then stops.
    func stop() {
        control.requestStop()
        thread.withLock { t in t?.join(); t = nil }
    }
}
