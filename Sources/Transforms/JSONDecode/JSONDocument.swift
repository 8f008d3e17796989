import CJansson
import CJanssonArena

/// Owns one parsed jansson tree and releases it when it goes out of scope.
/// Non-copyable, so it costs no allocation and cannot be released twice; every
/// `json_t` reached from `root` is borrowed and only valid while the document lives.
///
/// The tree lives in the calling thread's jansson arena (`jansson_arena.h`): the
/// document releases it by resetting the arena, not with `json_decref`, which would
/// walk it and free every node. So at most one document may be alive per thread.
struct JSONDocument: ~Copyable {
    let root: UnsafeMutablePointer<json_t>

    static let flags = size_t(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

    /// Parses `bytes` (strict: duplicate keys rejected, NUL in strings rejected,
    /// UTF-8 validated, nesting capped at jansson's 2048 levels). Nil when invalid.
    /// No `json_error_t` on this path: jansson fills one on every call, success or
    /// not; `errorMessage(for:)` re-parses for the rare log line instead.
    init?(parsing bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return nil }
        Self.installArena
        jansson_arena_begin()
        guard let root = json_loadb(base.assumingMemoryBound(to: CChar.self), bytes.count, Self.flags, nil) else {
            jansson_arena_end()
            return nil
        }
        self.root = root
    }

    /// Routes jansson's allocations through the arena, once per process.
    private static let installArena: Void = jansson_arena_install()

    /// jansson's message for invalid `bytes` (parses again; for log lines only).
    static func errorMessage(for bytes: UnsafeRawBufferPointer) -> String {
        guard let base = bytes.baseAddress else { return "empty input" }
        var error = json_error_t()
        if let v = json_loadb(base.assumingMemoryBound(to: CChar.self), bytes.count, flags, &error) { json_decref(v) }
        return error.message
    }

    deinit { jansson_arena_end() }
}

/// jansson's value types, as `json_typeof` would return them.
enum JSONType: Int32 {
    case object = 0, array, string, integer, real, `true`, `false`, null

    init(_ value: UnsafePointer<json_t>) {
        self = JSONType(rawValue: Int32(cj_typeof(value))) ?? .null
    }
}

extension json_error_t {
    /// jansson's error text, for log lines.
    var message: String {
        withUnsafeBytes(of: text) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
