#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on the monotonic clock.
@inline(__always)
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Nanoseconds since the Unix epoch (wall clock: for what must mean the same after
/// a restart, such as a state file's time).
public func wallClockNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Now as RFC 3339 in UTC with milliseconds (`2026-12-01T23:08:39.123Z`), for log
/// lines and dead letters.
public func rfc3339Now() -> String {
    let nanos = wallClockNanos()
    var t = time_t(nanos / 1_000_000_000)
    var parts = tm()
    gmtime_r(&t, &parts)
    var buf = [CChar](repeating: 0, count: 32)
    strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%S", &parts)
    let millis = String((nanos / 1_000_000) % 1000)
    let date = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return date + "." + String(repeating: "0", count: 3 - millis.count) + millis + "Z"
}
