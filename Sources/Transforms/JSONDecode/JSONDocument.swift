import CJansson
import CJanssonArena

/// A parsed jansson tree, lent to a closure and released right after it returns.
/// Every `json_t` reached from the root is borrowed and valid only inside the
/// closure, which is why the root is never stored.
///
/// The tree lives in the calling thread's jansson arena (`jansson_arena.h`): it is
/// released by resetting the arena, not with `json_decref`, which would walk it and
/// free every node. Scopes cannot nest on one thread (the arena aborts the process
/// rather than reset a live tree).
enum JSONDocument {
    /// Strict: duplicate keys rejected, NUL in strings rejected, UTF-8 validated,
    /// nesting capped at jansson's 2048 levels; every number is a double
    /// (`100000000000000000000` is 1e20, as JavaScript and Go senders mean it).
    static let flags = size_t(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL)

    /// Parses `bytes` and calls `body` with the root; nil when `bytes` is invalid
    /// JSON. No `json_error_t` on this path: jansson fills one on every call,
    /// success or not; `errorMessage(for:)` re-parses for the rare log line instead.
    static func parse<R>(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeMutablePointer<json_t>) -> R) -> R? {
        guard let base = bytes.baseAddress else { return nil }
        installArena
        jansson_arena_begin()
        defer { jansson_arena_end() }
        guard let root = json_loadb(base.assumingMemoryBound(to: CChar.self), bytes.count, flags, nil) else { return nil }
        return body(root)
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
