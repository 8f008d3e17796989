import COpenSSL

/// OpenSSL's thread-local error queue, read and cleared.
public enum OpenSSLErrors {
    /// The reasons queued since the last call, most specific last, e.g.
    /// `wrong version number` or `tlsv13 alert certificate required`; empty when
    /// nothing is queued.
    public static func drain() -> [String] {
        var reasons: [String] = []
        while case let e = ERR_get_error(), e != 0 {
            if let r = ERR_reason_error_string(e) { reasons.append(String(cString: r)) } else { reasons.append("error \(e)") }
        }
        return reasons
    }

    /// `drain()` joined, or `fallback` when the queue was empty.
    public static func describe(or fallback: String) -> String {
        let reasons = drain()
        return reasons.isEmpty ? fallback : reasons.joined(separator: ": ")
    }

    /// Clears what earlier calls on this thread left queued.
    public static func clear() { ERR_clear_error() }
}
