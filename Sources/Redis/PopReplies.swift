import CHiredis
import Pipeline

/// Collects the elements of `RPOP key count` and `BLMPOP` replies straight into a
/// `PayloadBatch`. While a pop reply is read (`RedisConnection.readPop`), hiredis
/// builds it through this type's reply-object functions instead of its own: each
/// element's bytes are appended to `batch` as the reader meets them, so popping
/// allocates no `redisReply` and no string copy per element (hiredis' own objects
/// cost two mallocs, two frees and a copy per element).
///
/// Not thread-safe: belongs to the source's thread, like the connection.
public final class PopReplies {
    /// What the reader's callbacks change, behind a pointer: a class's stored `var`
    /// costs a dynamic exclusivity check (a thread-local access set) at every access,
    /// which was 3 % of the gateway's CPU when paid per element.
    private struct State {
        var batch = PayloadBatch()
        var origin: UInt16 = 0
        var appended = 0
        var error: String?
        var unexpected: String?
        /// BLMPOP nests the elements one level deeper: `[key, [elements…]]`.
        var elementDepth = 1
    }
    private let state: UnsafeMutablePointer<State>

    public init() {
        state = .allocate(capacity: 1)
        state.initialize(to: State())
    }

    deinit {
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// Where elements go; the source hands it on and replaces it when it is full.
    public var batch: PayloadBatch {
        get { state.pointee.batch }
        _modify { yield &state.pointee.batch }
        set { state.pointee.batch = newValue }
    }

    /// Origin of the elements of the reply being read.
    public var origin: UInt16 { state.pointee.origin }

    /// What the last reply was.
    public enum Outcome: Equatable {
        /// `count` elements appended (0 for a nil reply: the list was empty).
        case elements(Int)
        /// An error reply such as `-WRONGTYPE …`.
        case error(String)
        /// A reply no pop gives (an integer, a status, an unexpected nesting).
        case unexpected(String)
    }

    /// Prepares for the next reply; `blmpop` tells which shape it has.
    public func begin(blmpop: Bool, origin: UInt16) {
        state.pointee.origin = origin
        state.pointee.elementDepth = blmpop ? 2 : 1
        state.pointee.appended = 0
        state.pointee.error = nil
        state.pointee.unexpected = nil
    }

    /// The reply read since `begin`.
    public var outcome: Outcome {
        if let error = state.pointee.error { return .error(error) }
        if let unexpected = state.pointee.unexpected { return .unexpected(unexpected) }
        return .elements(state.pointee.appended)
    }

    /// 0 for the reply itself, 1 for its elements, 2 for theirs.
    private static func depth(_ task: UnsafePointer<redisReadTask>) -> Int {
        task.pointee.parent == nil ? 0 : task.pointee.parent.pointee.parent == nil ? 1 : 2
    }

    fileprivate func string(_ task: UnsafePointer<redisReadTask>, _ bytes: UnsafeRawBufferPointer) {
        let depth = Self.depth(task), elementDepth = state.pointee.elementDepth
        switch task.pointee.type {
        case REDIS_REPLY_STRING where depth == elementDepth || depth == 0 && elementDepth == 1:
            // An element (or the single element of a count-less RPOP on an old server).
            state.pointee.batch.append(bytes, origin: state.pointee.origin)
            state.pointee.appended += 1
        case REDIS_REPLY_STRING where depth == 1 && elementDepth == 2:
            break   // BLMPOP's key
        case REDIS_REPLY_ERROR where depth == 0:
            state.pointee.error = String(decoding: bytes, as: UTF8.self)
        default:
            state.pointee.unexpected = "a \(task.pointee.type == REDIS_REPLY_STATUS ? "status" : "string") at depth \(depth)"
        }
    }

    fileprivate func other(_ task: UnsafePointer<redisReadTask>, _ what: String) {
        let depth = Self.depth(task)
        let expected = what == "nil" ? depth == 0 : what == "array" && depth < state.pointee.elementDepth
        if !expected { state.pointee.unexpected = "\(what) at depth \(depth)" }
    }

    /// The reply-object functions, with `privdata` = an unretained `PopReplies`.
    /// hiredis needs a non-NULL object back (NULL means out of memory); nothing is
    /// built, so every function returns the same marker and `freeObject` does nothing.
    /// Valid with hiredis 0.14's reader, which stores the objects it gets and hands
    /// them back without dereferencing them; the CHiredis shim fails the build
    /// against any other version.
    /// (`nonisolated(unsafe)`: initialised once, then only read.)
    nonisolated(unsafe) static let functions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
        let f = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
        f.initialize(to: redisReplyObjectFunctions(
            createString: { task, str, len in
                collector(task!) { $0.string(task!, UnsafeRawBufferPointer(start: str, count: len)) }
                return marker
            },
            createArray: { task, _ in collector(task!) { $0.other(task!, "array") }; return marker },
            createInteger: { task, _ in collector(task!) { $0.other(task!, "integer") }; return marker },
            createNil: { task in collector(task!) { $0.other(task!, "nil") }; return marker },
            freeObject: { _ in }))
        return f
    }()

    nonisolated(unsafe) static let marker = UnsafeMutableRawPointer(bitPattern: 1)!

    /// The reader's collector, borrowed (the reader's caller holds it): no retain and
    /// release per element.
    @inline(__always)
    private static func collector(_ task: UnsafePointer<redisReadTask>, _ body: (PopReplies) -> Void) {
        Unmanaged<PopReplies>.fromOpaque(task.pointee.privdata!)._withUnsafeGuaranteedRef(body)
    }
}

@available(*, unavailable)
extension PopReplies: Sendable {}
