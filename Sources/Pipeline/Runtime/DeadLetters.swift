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
/// `capacity` letters and `byteCapacity` bytes (a letter's payload is at most 64 KiB escaped: 10 000
/// of them would be 640 MB), and what does not fit — or what Redis refuses — is counted as
/// dropped, so a flood of bad input or a dead Redis cannot slow ingestion or grow memory. A
/// thread of its own writes what is queued every `interval`, pipelined.
final class DeadLetterQueue: Sendable {
    static let perBatch = 100
    static let capacity = 10_000
    static let byteCapacity = 8 << 20
    static let interval = 0.1

    let config: DeadLetterConfig
    let stage: String
    private struct Pending { var lines: [[UInt8]] = []; var bytes = 0 }
    private let pending = Mutex(Pending())
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
            let payload = jsonEscape(String(decoding: l.payload, as: UTF8.self), limit: DeadLetterConfig.maxPayloadBytes)
            return Array(("{\"ts\":\"\(now)\",\"stage\":\"\(jsonEscape(stage))\",\"reason\":\"\(jsonEscape(l.reason.name))\","
                          + "\"note\":\"\(jsonEscape(l.note))\",\"payload\":\"\(payload)\"}").utf8)
        }
        let refused = pending.withLock { p -> Int in
            var taken = 0
            for line in lines where p.lines.count < Self.capacity && p.bytes + line.count <= Self.byteCapacity {
                p.lines.append(line)
                p.bytes += line.count
                taken += 1
            }
            return lines.count - taken
        }
        if refused > 0 { dropped.add(UInt64(refused)) }
    }

    func start(_ makeWriter: @escaping @Sendable () throws -> any DeadLetterWriter) {
        let t = OSThread.spawn(name: "dead-letters") { [self] in
            var writer: (any DeadLetterWriter)?
            while true {
                let stopping = control.isStopping
                let batch = pending.withLock { p in defer { p = Pending() }; return p.lines }
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
