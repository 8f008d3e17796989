import CHiredis
import Pipeline
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

    public var description: String {
        switch self {
        case .connection(let s): "connection: \(s)"
        case .closed: "connection closed by Redis"
        case .reply(let s): "Redis replied: \(s)"
        case .authentication(let s): "authentication failed: \(s); check the user and password in the connection string"
        case .protocolViolation(let s): "unexpected reply: \(s)"
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

/// Owns one blocking hiredis `redisContext` and frees it in `deinit`. Commands go
/// through `redisAppendCommandArgv` (binary-safe, no format strings); a reply is
/// read with `withReply`, which lends the `redisReply` to a closure and frees it
/// right after — nothing borrowed escapes.
///
/// Not thread-safe: one thread uses a connection at a time.
public final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>
    /// For error messages: hiredis reports a read time-out as EAGAIN.
    private let readTimeout: Double

    /// Connects with `timeout` for the connect and `readTimeout` for every reply.
    public init(host: String, port: Int, timeout: Double, readTimeout: Double) throws(RedisError) {
        guard let c = redisConnectWithTimeout(host, Int32(port), Self.timeval(timeout)) else {
            throw .connection("cannot allocate a hiredis context")
        }
        if c.pointee.err != 0 {
            let failure = Self.failure(c, timeout: timeout, what: "connect")
            redisFree(c)
            throw failure
        }
        context = c
        self.readTimeout = readTimeout
        guard redisSetTimeout(c, Self.timeval(readTimeout)) == REDIS_OK else {
            throw .connection("cannot set the read timeout: \(Self.errorString(c))")
        }
    }

    /// Connects to `url`'s server and authenticates and selects its database:
    /// the set-up every client of the gateway does.
    public static func open(_ url: RedisURL, timeout: Double, readTimeout: Double) throws(RedisError) -> RedisConnection {
        let c = try RedisConnection(host: url.host, port: url.port, timeout: timeout, readTimeout: readTimeout)
        if let password = url.password {
            do {
                if let user = url.user { try c.command("AUTH", user, password) } else { try c.command("AUTH", password) }
            } catch .reply(let message) {
                throw .authentication(message)
            }
        }
        if url.database != 0 { try c.command("SELECT", String(url.database)) }
        if let name = url.clientName { try c.command("CLIENT", "SETNAME", name) }
        return c
    }

    deinit { redisFree(context) }

    /// Queues a command; it is sent with the next `withReply`.
    public func append(_ args: [[UInt8]]) {
        var lengths = args.map { $0.count }
        withArgv(args) { argv in
            _ = redisAppendCommandArgv(context, Int32(args.count), argv, &lengths)
        }
    }

    public func append(_ args: String...) { append(args.map { Array($0.utf8) }) }

    /// Flushes queued commands, reads the next reply and lends it to `body`.
    public func withReply<R>(_ body: (UnsafePointer<redisReply>) throws(RedisError) -> R) throws(RedisError) -> R {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw Self.failure(context, timeout: readTimeout, what: "reply")
        }
        defer { freeReplyObject(raw) }
        return try body(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Reads the next reply, which answers a pop (`RPOP key count`, or `BLMPOP` when
    /// `blmpop`), appending its elements to `replies.batch` as they are parsed.
    func readPop(into replies: PopReplies, blmpop: Bool, origin: UInt16) throws(RedisError) -> PopReplies.Outcome {
        let reader = context.pointee.reader!
        let saved = (reader.pointee.fn, reader.pointee.privdata)
        reader.pointee.fn = PopReplies.functions
        reader.pointee.privdata = Unmanaged.passUnretained(replies).toOpaque()
        defer { (reader.pointee.fn, reader.pointee.privdata) = saved }
        replies.begin(blmpop: blmpop, origin: origin)
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, raw != nil else {
            throw Self.failure(context, timeout: readTimeout, what: "reply")
        }
        return replies.outcome
    }

    /// Sends one command and returns its reply copied into Swift values; error
    /// replies are thrown.
    @discardableResult
    public func command(_ args: String...) throws(RedisError) -> RedisValue {
        try command(contentsOf: args)
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

    /// The context's error as a `RedisError`: end of file is `.closed`; hiredis'
    /// EAGAIN/ETIMEDOUT ("Resource temporarily unavailable") is said as the time-out it is.
    private static func failure(_ c: UnsafeMutablePointer<redisContext>, timeout: Double, what: String) -> RedisError {
        if c.pointee.err == REDIS_ERR_EOF { return .closed }
        let e = errno
        let text = errorString(c)
        if c.pointee.err == REDIS_ERR_IO,
           e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT || text.contains("temporarily unavailable") || text.contains("timed out") {
            return .connection("no \(what) within \(timeout) s (time-out)")
        }
        return .connection(text)
    }

    private static func errorString(_ c: UnsafeMutablePointer<redisContext>) -> String {
        let message = withUnsafeBytes(of: c.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return message.isEmpty ? "error \(c.pointee.err)" : message
    }

    private static func timeval(_ seconds: Double) -> Glibc.timeval {
        Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
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
