#if canImport(Glibc)
import Glibc
#endif

/// What a remote-write answer means, the way Prometheus treats it: 2xx sent; 5xx,
/// 429 (when `retry_on_http_429`) and no answer at all retried with back-off; any
/// other status dropped and counted.
enum SendOutcome: Equatable, Sendable {
    case sent
    case retry(reason: String, after: Double?)
    case drop(reason: String)

    /// `retryAfter` is the `Retry-After` header as sent (seconds or an HTTP date).
    static func classify(status: Int, retryAfter: String?, retryOn429: Bool, now: Double) -> SendOutcome {
        switch status {
        case 200..<300: return .sent
        case 429 where retryOn429: return .retry(reason: "429", after: retryAfter.flatMap { Self.retryAfter($0, now: now) })
        case 500..<600: return .retry(reason: "5xx", after: retryAfter.flatMap { Self.retryAfter($0, now: now) })
        case 400..<500: return .drop(reason: "4xx")
        default: return .drop(reason: "other")
        }
    }

    /// Seconds to wait for a `Retry-After` value: delta-seconds or an IMF-fixdate
    /// (`Wed, 21 Oct 2015 07:28:00 GMT`); nil when it is neither.
    static func retryAfter(_ text: String, now: Double) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(t) { return seconds >= 0 ? Double(seconds) : nil }
        let parts = t.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
              let year = Int(parts[3]) else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3 else { return nil }
        var tm = tm()
        tm.tm_year = Int32(year - 1900); tm.tm_mon = Int32(month); tm.tm_mday = Int32(day)
        tm.tm_hour = Int32(clock[0]); tm.tm_min = Int32(clock[1]); tm.tm_sec = Int32(clock[2])
        return max(0, Double(timegm(&tm)) - now)
    }
}

/// Capped exponential back-off with equal jitter: each delay is half the current
/// step plus a random part of the other half; the step doubles up to `max`.
struct Backoff: Sendable {
    let min: Double
    let max: Double
    private(set) var step: Double

    init(min: Double, max: Double) { self.min = min; self.max = max; step = min }

    mutating func next(random: Double = Double.random(in: 0..<1)) -> Double {
        let delay = step / 2 + step / 2 * random
        step = Swift.min(max, step * 2)
        return delay
    }
}
