import CPCRE2

/// A compiled, JIT-compiled PCRE2 pattern, fully anchored the way Prometheus
/// anchors relabel regexes (`^(?:…)$`). Owns its `pcre2_code` and frees it in
/// `deinit`. Immutable after `init`, so it is shared by all workers; each worker
/// matches with its own `PCRE2MatchData`.
public final class PCRE2Regex: @unchecked Sendable {
    let code: OpaquePointer
    /// The pattern as written in the configuration.
    public let pattern: String

    public struct CompileError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(anchoring pattern: String) throws(CompileError) {
        self.pattern = pattern
        let wrapped = Array("^(?:\(pattern))$".utf8)
        var errorCode: Int32 = 0
        var errorOffset = 0
        guard let code = wrapped.withUnsafeBufferPointer({ buf in
            pcre2_compile_8(buf.baseAddress, buf.count, PCRE2_UTF, &errorCode, &errorOffset, nil)
        }) else {
            var message = [UInt8](repeating: 0, count: 256)
            let n = pcre2_get_error_message_8(errorCode, &message, message.count)
            throw CompileError(description: "invalid regex `\(pattern)`: "
                + "\(String(decoding: message.prefix(max(0, Int(n))), as: UTF8.self)) at offset \(max(0, errorOffset - 4))")
        }
        self.code = code
        _ = pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE)   // falls back to the interpreter if JIT is unavailable
    }

    deinit { pcre2_code_free_8(code) }

    /// The group number of a named group, or nil.
    public func groupNumber(_ name: String) -> Int? {
        let n = Array(name.utf8) + [0]
        let r = n.withUnsafeBufferPointer { pcre2_substring_number_from_name_8(code, $0.baseAddress) }
        return r > 0 ? Int(r) : nil
    }

    /// A match that gave up: it took more than `PCRE2MatchData.matchLimit` steps (or the
    /// depth, heap or JIT stack limit). PCRE2 backtracks where Prometheus's RE2 does not, so
    /// a pattern with nested quantifiers, `(\w+\s?)+`, takes time exponential in a value that
    /// almost matches — a sender's hostile label value would stall the stage.
    public struct GaveUp: Error {}

    /// `rc` of `pcre2_match`: > 0 a match, nil no match (also a subject that is not UTF-8).
    private static func outcome(_ rc: Int32) throws(GaveUp) -> Bool {
        switch rc {
        case PCRE2_ERROR_MATCHLIMIT, PCRE2_ERROR_DEPTHLIMIT, PCRE2_ERROR_HEAPLIMIT, PCRE2_ERROR_JIT_STACKLIMIT: throw GaveUp()
        default: return rc > 0
        }
    }

    /// Matches the whole of `subject`; returns the capture ranges (group 0 first,
    /// nil for groups that did not participate) or nil when it does not match.
    public func match(_ subject: UnsafeRawBufferPointer, _ data: PCRE2MatchData) throws(GaveUp) -> [Range<Int>?]? {
        let base = subject.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptySubject
        let rc = pcre2_match_8(code, base, subject.count, 0, 0, data.pointer, data.context)
        guard try Self.outcome(rc) else { return nil }
        let ovector = pcre2_get_ovector_pointer_8(data.pointer)!
        return (0..<Int(rc)).map { i in
            let start = ovector[2 * i], end = ovector[2 * i + 1]
            return start == size_t.max ? nil : Int(start)..<Int(end)
        }
    }

    /// True when the whole of `subject` matches.
    public func matches(_ subject: UnsafeRawBufferPointer, _ data: PCRE2MatchData) throws(GaveUp) -> Bool {
        let base = subject.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptySubject
        return try Self.outcome(pcre2_match_8(code, base, subject.count, 0, 0, data.pointer, data.context))
    }

    /// A match-data block sized for this pattern (one per worker).
    public func makeMatchData() -> PCRE2MatchData { PCRE2MatchData(for: self) }
}

nonisolated(unsafe) private let emptySubject: UnsafePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    p.pointee = 0
    return UnsafePointer(p)
}()

/// Owns one `pcre2_match_data` block and the match context with its limits. Not
/// thread-safe: one per worker.
public final class PCRE2MatchData {
    /// Steps a match may take: 4–5 ms with JIT on this machine (PCRE2's default, 10 000 000,
    /// ~47 ms). `(.*);(.*);(.*)` on 2 000 bytes needs 3 003: a pattern that does not backtrack
    /// without end never comes near it.
    public static let matchLimit: UInt32 = 1_000_000
    let pointer: OpaquePointer
    let context: OpaquePointer
    init(for regex: PCRE2Regex) {
        pointer = pcre2_match_data_create_from_pattern_8(regex.code, nil)
        context = pcre2_match_context_create_8(nil)
        pcre2_set_match_limit_8(context, Self.matchLimit)
    }
    deinit {
        pcre2_match_data_free_8(pointer)
        pcre2_match_context_free_8(context)
    }
}

@available(*, unavailable)
extension PCRE2MatchData: Sendable {}
