import Logging
import Synchronization

/// Logs at most one warning per `interval` and says how many were suppressed, so a
/// flood of bad payloads costs a counter increment each, not a log line each.
public final class RateLimitedLog: Sendable {
    private let logger: Logger
    private let intervalNanos: UInt64
    private struct State { var last: UInt64 = 0; var suppressed = 0 }
    private let state = Mutex(State())

    public init(logger: Logger, interval: Duration = .seconds(1)) {
        self.logger = logger
        let c = interval.components
        self.intervalNanos = UInt64(c.seconds) * 1_000_000_000 + UInt64(c.attoseconds / 1_000_000_000)
    }

    /// `message` is only built when the warning is actually logged.
    public func warning(_ message: @autoclosure () -> String) {
        let now = monotonicNanos()
        let suppressed: Int? = state.withLock { s in
            if s.last != 0 && now &- s.last < intervalNanos { s.suppressed += 1; return nil }
            defer { s.suppressed = 0; s.last = now }
            return s.suppressed
        }
        guard let suppressed else { return }
        logger.warning("\(message())\(suppressed > 0 ? " (\(suppressed) similar suppressed)" : "")")
    }

    /// A payload shortened for a log line: at most `limit` bytes, control bytes escaped.
    public static func excerpt(_ raw: UnsafeRawBufferPointer, limit: Int = 160) -> String {
        var out = ""
        for b in raw.prefix(limit) {
            if b >= 0x20 && b < 0x7f { out.unicodeScalars.append(Unicode.Scalar(b)) } else { out += "\\x" + String(b, radix: 16) }
        }
        if raw.count > limit { out += "…(\(raw.count) bytes)" }
        return out
    }
}
