import CHiredis
import Pipeline
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// What went wrong talking to Redis.
public enum RedisError: Error, CustomStringConvertible, Sendable {
    /// Could not connect, or the connection broke (I/O error, reset, time-out).
    case connection(String)
    /// Redis closed the connection (end of file: a shutdown, a restart, `CLIENT KILL`).
    case closed
    /// Redis answered with an error reply (`-ERR …`, `-WRONGTYPE …`, `-NOPERM …`).
    case reply(String)
    /// `AUTH` was refused (the reply, e.g. `WRONGPASS …`).
    case authentication(String)
    /// A reply of a shape the caller did not expect.
    case protocolViolation(String)
    /// The server stopped being the master (`READONLY`, `UNBLOCKED` after a failover).
    case notMaster(String)

    public var description: String {
        switch self {
        case .connection(let s): "connection: \(s)"
        case .closed: "connection closed by Redis"
        case .reply(let s): "Redis replied: \(s)"
        case .authentication(let s): "authentication failed: \(s); check the user and password in the connection string"
        case .protocolViolation(let s): "unexpected reply: \(s)"
        case .notMaster(let s): "the server is no longer the master (\(s)); finding the master again"
        }
    }
}

/// A reply copied out of hiredis, for commands whose reply is small.
public enum RedisValue: Sendable, Equatable {
    case string([UInt8])
    case integer(Int64)
    case array([RedisValue])
    case status(String)
    case error(String)
    case null

    public var text: String? {
        switch self {
        case .string(let b): String(decoding: b, as: UTF8.self)
        case .status(let s): s
        default: nil
        }
    }
}

/// One connection to Redis: commands are formatted by hiredis
/// (`redisFormatCommandArgv`: binary-safe, no format strings) and queued; replies
/// are parsed by hiredis' reader from the bytes `RedisTransport` brings (plain
/// TCP or TLS). A reply is lent to a closure by `withReply` and freed right after
/// — nothing borrowed escapes. Owns the reader and frees it in `deinit`.
///
/// As hiredis' blocking `redisGetReply` does, queued commands are written only
/// when no reply is already buffered, so a pipeline tops up in few writes.
///
/// Not thread-safe: one thread uses a connection at a time.
public final class RedisConnection {
    private let transport: RedisTransport
    private let reader: UnsafeMutablePointer<redisReader>
    /// Formatted commands not yet written.
    private var output: [UInt8] = []
    /// What one read takes from the socket (or the TLS session).
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    /// The part of `input` read but not yet fed to the reader (`feedChunk` at a time).
    private var unfed = 0..<0
    /// hiredis 0.14 moves what it holds to the front of its buffer each time it has
    /// consumed 1 KiB, so a whole 64 KiB read fed at once is moved once per reply in
    /// it: about 8 bytes moved per byte received with pops of ~4 KiB (memmove was
    /// 3 % of the gateway's CPU). Fed this much at a time, under one byte per byte.
    static let feedChunk = 4096
    /// Bulk strings longer than this reach the reader cut (`ElementCut`); nil: every reply whole.
    /// Set between replies; once set, the cut keeps walking the stream (nil raises its limit).
    public var elementLimit: Int? {
        didSet {
            if cut == nil, let limit = elementLimit { cut = ElementCut(limit: limit) } else { cut?.limit = elementLimit ?? .max }
        }
    }
    private var cut: ElementCut?

    /// Connects (plain TCP) with `timeout` for the connect and `readTimeout` for every reply.
    public convenience init(host: String, port: Int, timeout: Double, readTimeout: Double) throws(RedisError) {
        try self.init(endpoint: RedisEndpoint(host: host, port: port), tls: nil, timeout: timeout, readTimeout: readTimeout)
    }

    /// Connects to `endpoint`, over TLS when `tls` is given (`timeout` covers the handshake).
    public init(endpoint: RedisEndpoint, tls: TLSClientSettings?, timeout: Double, readTimeout: Double, keepAlive: Int? = nil) throws(RedisError) {
        var context: TLSClientContext?
        if let tls {
            do { context = try TLSClientContext(tls) } catch { throw .connection(error.description) }
        }
        transport = try RedisTransport(endpoint: endpoint, tls: context.map { ($0, tls!) }, timeout: timeout, readTimeout: readTimeout,
                keepAlive: keepAlive)
        guard let r = redisReaderCreate() else { throw .connection("cannot allocate a hiredis reader") }
        reader = r
    }

    deinit {
        redisReaderFree(reader)
        input.deallocate()
    }

    /// Where this connection goes.
    public var endpoint: RedisEndpoint { transport.endpoint }
    public var isTLS: Bool { transport.isTLS }

    /// Queues a command; it is sent with the next `withReply`.
    public func append(_ args: [[UInt8]]) {
        var lengths = args.map { $0.count }
        withArgv(args) { argv in
            var cmd: UnsafeMutablePointer<CChar>?
            let n = redisFormatCommandArgv(&cmd, Int32(args.count), argv, &lengths)
            guard n > 0, let cmd else { return }
            output.append(contentsOf: UnsafeRawBufferPointer(start: cmd, count: Int(n)))
            redisFreeCommand(cmd)
        }
    }

    public func append(_ args: String...) { append(args.map { Array($0.utf8) }) }

    /// Flushes queued commands, reads the next reply and lends it to `body`.
    public func withReply<R>(_ body: (UnsafePointer<redisReply>) throws(RedisError) -> R) throws(RedisError) -> R {
        let raw = try nextReply()
        defer { freeReplyObject(raw) }
        return try body(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Reads the next reply, which answers a pop (`RPOP key count`, or `BLMPOP` when
    /// `blmpop`), appending its elements to `replies.batch` as they are parsed.
    public func readPop(into replies: PopReplies, blmpop: Bool, origin: UInt16) throws(RedisError) -> PopReplies.Outcome {
        let saved = (reader.pointee.fn, reader.pointee.privdata)
        reader.pointee.fn = PopReplies.functions
        reader.pointee.privdata = Unmanaged.passUnretained(replies).toOpaque()
        defer { (reader.pointee.fn, reader.pointee.privdata) = saved }
        replies.begin(blmpop: blmpop, origin: origin)
        _ = try nextReply()   // PopReplies' marker, not an object to free
        return replies.outcome
    }

    /// The next complete reply: from what the reader holds, else after writing the
    /// queued commands and reading until one is complete.
    private func nextReply() throws(RedisError) -> UnsafeMutableRawPointer {
        if let reply = try parsed() { return reply }
        if let reply = try feedUnfed() { return reply }
        if !output.isEmpty {
            let failure = output.withUnsafeBytes { b -> RedisError? in
                do throws(RedisError) { try transport.write(b); return nil } catch { return error }
            }
            if let failure { throw failure }
            output.removeAll(keepingCapacity: output.capacity <= 1 << 20)
        }
        while true {
            let n = try transport.read(into: input)
            if n == 0 { throw .closed }
            unfed = 0..<n
            if let reply = try feedUnfed() { return reply }
        }
    }

    /// Feeds the reader what was read and not fed yet, a chunk at a time, until it has a reply.
    private func feedUnfed() throws(RedisError) -> UnsafeMutableRawPointer? {
        while !unfed.isEmpty {
            let n = min(unfed.count, Self.feedChunk)
            let chunk = UnsafeRawBufferPointer(start: input.baseAddress! + unfed.lowerBound, count: n)
            if cut == nil {
                redisReaderFeed(reader, chunk.baseAddress!.assumingMemoryBound(to: CChar.self), n)
            } else {
                let reader = reader
                try cut!.feed(chunk) { part in redisReaderFeed(reader, part.baseAddress!.assumingMemoryBound(to: CChar.self), part.count) }
            }
            unfed = unfed.lowerBound + n..<unfed.upperBound
            if let reply = try parsed() { return reply }
        }
        return nil
    }

    private func parsed() throws(RedisError) -> UnsafeMutableRawPointer? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
            let message = withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw .protocolViolation("cannot parse the reply: \(message)")
        }
        return reply
    }

    /// Sends one command and returns its reply copied into Swift values; error
    /// replies are thrown.
    @discardableResult
    public func command(_ args: String...) throws(RedisError) -> RedisValue {
        try command(contentsOf: args)
    }

    /// The next reply of what was `append`ed (pipelining), copied; an error reply is thrown.
    @discardableResult
    public func reply() throws(RedisError) -> RedisValue {
        let value = try withReply { r throws(RedisError) in Self.copy(r) }
        if case .error(let message) = value { throw .reply(message) }
        return value
    }

    /// Sends one command given as a list of arguments.
    @discardableResult
    public func command(contentsOf args: [String]) throws(RedisError) -> RedisValue {
        append(args.map { Array($0.utf8) })
        let value = try withReply { r throws(RedisError) in Self.copy(r) }
        if case .error(let message) = value { throw .reply(message) }
        return value
    }

    /// Copies a reply into Swift values.
    public static func copy(_ r: UnsafePointer<redisReply>) -> RedisValue {
        switch r.pointee.type {
        case REDIS_REPLY_STRING:
            return .string(Array(UnsafeRawBufferPointer(start: r.pointee.str, count: r.pointee.len)))
        case REDIS_REPLY_INTEGER: return .integer(r.pointee.integer)
        case REDIS_REPLY_STATUS: return .status(string(r))
        case REDIS_REPLY_ERROR: return .error(string(r))
        case REDIS_REPLY_ARRAY:
            return .array((0..<r.pointee.elements).map { copy(r.pointee.element[$0]!) })
        default: return .null
        }
    }

    static func string(_ r: UnsafePointer<redisReply>) -> String {
        String(decoding: UnsafeRawBufferPointer(start: r.pointee.str, count: r.pointee.len), as: UTF8.self)
    }

    private func withArgv(_ args: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Void) {
        let pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: args.count)
        defer { pointers.deallocate() }
        func bind(_ i: Int) {
            if i == args.count { body(pointers); return }
            args[i].withUnsafeBufferPointer { buf in
                // An empty argument still needs a valid pointer.
                let p = buf.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
                pointers[i] = p ?? UnsafePointer(("" as StaticString).utf8Start.withMemoryRebound(to: CChar.self, capacity: 1) { $0 })
                bind(i + 1)
            }
        }
        bind(0)
    }
}

@available(*, unavailable)
extension RedisConnection: Sendable {}
