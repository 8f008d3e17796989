import NIOCore
import NIOHTTP1
import NIOPosix
import Pipeline
import Synchronization
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// A request as the router sees it.
package struct HTTPRequest: Sendable {
    package var method: HTTPMethod
    package var path: Substring { uri.split(separator: "?", maxSplits: 1).first ?? "" }
    package var uri: String
    package var acceptsGzip: Bool
    /// The `Authorization` header, for basic auth.
    package var authorization: String? = nil
    /// The `Accept` header(s), joined with commas (what `/metrics` negotiates on).
    package var accept: String = ""
    /// `Content-Type` and `Content-Encoding` (an OTLP export's body).
    package var contentType: String = ""
    package var contentEncoding: String = ""
    /// The request body, at most the server's `maxBody` bytes.
    package var body: [UInt8] = []
    package var bodyTooLarge = false
    /// The server's `BodyBudget` was spent by other requests' bodies: this one was discarded (answer 429).
    package var overloaded = false

    package init(method: HTTPMethod, uri: String, acceptsGzip: Bool = false, authorization: String? = nil, accept: String = "",
                 contentType: String = "", contentEncoding: String = "", body: [UInt8] = [], bodyTooLarge: Bool = false) {
        self.method = method; self.uri = uri; self.acceptsGzip = acceptsGzip; self.authorization = authorization; self.accept = accept
        self.contentType = contentType; self.contentEncoding = contentEncoding; self.body = body; self.bodyTooLarge = bodyTooLarge
    }

    /// The values of a query or form parameter (`match[]`), percent- and `+`-decoded,
    /// from the URI and then the body.
    package func parameters(_ name: String) -> [String] {
        var out: [String] = []
        let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        for source in [query, String(decoding: body, as: UTF8.self)] {
            for pair in source.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let key = kv.first.map({ Self.formDecode($0) }), key == name else { continue }
                out.append(kv.count > 1 ? Self.formDecode(kv[1]) : "")
            }
        }
        return out
    }

    package static func formDecode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "+") { bytes.append(32); i += 1; continue }
            if u[i] == UInt8(ascii: "%"), i + 2 < u.count, let v = UInt8(String(decoding: u[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                bytes.append(v); i += 3; continue
            }
            bytes.append(u[i]); i += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

package struct HTTPResponse: Sendable {
    package var status: HTTPResponseStatus
    package var contentType: String
    package var body: [UInt8]
    package var gzipped = false
    /// Extra headers (`Allow` on a 405, `Vary` on /metrics).
    package var headers: [(String, String)] = []

    package init(status: HTTPResponseStatus, contentType: String, body: [UInt8], gzipped: Bool = false, headers: [(String, String)] = []) {
        self.status = status; self.contentType = contentType; self.body = body; self.gzipped = gzipped; self.headers = headers
    }
}

package enum HTTPHandlerLimits {
    /// Larger request bodies are not kept (the request is answered 413 where a body matters).
    package static let maxBody = 1 << 20
}

/// Bytes of request bodies a server holds at once, over all connections: a thousand
/// clients each sending a body up to `maxBody` cannot take more than `limit` between
/// them. One body is always let through when nothing else is held.
package final class BodyBudget: Sendable {
    private let used = Atomic<Int>(0)
    package let limit: Int

    package init(limit: Int) { self.limit = limit }

    package var held: Int { used.load(ordering: .relaxed) }

    /// Charges `n` bytes; false (nothing charged) when they do not fit beside what others hold.
    package func take(_ n: Int) -> Bool {
        let now = used.add(n, ordering: .relaxed).newValue
        guard now > limit && now != n else { return true }
        used.subtract(n, ordering: .relaxed)
        return false
    }

    package func release(_ n: Int) { if n > 0 { used.subtract(n, ordering: .relaxed) } }
}

/// Answers a request once, from any thread (a route that waits for something, as an
/// OTLP export waits until its points are durable, answers later without holding a thread).
package typealias HTTPRespond = @Sendable (HTTPResponse) -> Void

/// `HOST:PORT` (`[::1]:9091`, `:9091` for every interface), as `listen` options take it.
package enum ListenAddress {
    package static func parse(_ s: String) -> (host: String, port: Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}

/// The HTTP server could not bind: names the address and the OS reason.
package struct ListenError: Error, CustomStringConvertible {
    package var address: String
    package var underlying: Error

    package var description: String {
        if let io = underlying as? IOError {
            return "cannot listen on \(address): \(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))"
        }
        return "cannot listen on \(address): \(underlying)"
    }
}

/// A small HTTP/1.1 server on swift-nio: keep-alive, HEAD, idle connections closed
/// after `idleTimeout`. Routing runs on a thread pool, so rendering a large page
/// never blocks the event loop, and a slow or half-open client ties up nothing but
/// its own connection.
package final class HTTPServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool
    private let channel: Channel

    /// The port actually bound (useful with port 0).
    package var port: Int { channel.localAddress?.port ?? 0 }

    /// With `tls`, every connection is TLS (its handshake failures go to `onTLSFailure`).
    package convenience init(host: String, port: Int, idleTimeout: TimeAmount = .seconds(60), tls: ServerCertificates? = nil,
                             onTLSFailure: @escaping @Sendable (String) -> Void = { _ in },
                             route: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        try self.init(host: host, port: port, idleTimeout: idleTimeout, tls: tls, onTLSFailure: onTLSFailure) { request, respond in
            respond(route(request))
        }
    }

    /// `route` runs on one of `threads` pool threads and calls `respond` exactly once,
    /// then or later. Bodies over `maxBody` are read and discarded (`bodyTooLarge`).
    package init(host: String, port: Int, idleTimeout: TimeAmount = .seconds(60), tls: ServerCertificates? = nil,
                 threads: Int = 1, maxBody: Int = HTTPHandlerLimits.maxBody, bodyBudget: BodyBudget? = nil,
                 onTLSFailure: @escaping @Sendable (String) -> Void = { _ in },
                 route: @escaping @Sendable (HTTPRequest, @escaping HTTPRespond) -> Void) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
        let pool = self.pool
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // `.tcpOption`, not `.socketOption`: the latter is level SOL_SOCKET, where
            // option 1 is SO_DEBUG, refused to unprivileged processes (the accepted
            // channel is then closed, so every request is reset).
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let session = try TLSServerSession(context: tls.current())
                        try channel.pipeline.syncOperations.addHandler(TLSServerHandler(session: session, onFailure: onTLSFailure))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(HTTPHandler(pool: pool, maxBody: maxBody, budget: bodyBudget, route: route))
                }
            }
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            try? pool.syncShutdownGracefully()
            throw ListenError(address: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)", underlying: error)
        }
    }

    package func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
        try? pool.syncShutdownGracefully()
    }
}

private final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let pool: NIOThreadPool
    private let maxBody: Int
    private let budget: BodyBudget?
    private let route: @Sendable (HTTPRequest, @escaping HTTPRespond) -> Void
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var bodyTooLarge = false
    private var overloaded = false
    /// Bytes of `body` charged to `budget`.
    private var held = 0

    init(pool: NIOThreadPool, maxBody: Int, budget: BodyBudget?, route: @escaping @Sendable (HTTPRequest, @escaping HTTPRespond) -> Void) {
        self.pool = pool
        self.maxBody = maxBody
        self.budget = budget
        self.route = route
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h; body = []; bodyTooLarge = false; overloaded = false
        case .body(let part):
            if bodyTooLarge || overloaded { return }
            if body.count + part.readableBytes > maxBody { bodyTooLarge = true; dropBody(); return }
            if let budget, !budget.take(part.readableBytes) { overloaded = true; dropBody(); return }
            held += budget == nil ? 0 : part.readableBytes
            body += part.readableBytesView
        case .end:
            guard let head else { return }
            self.head = nil
            var request = HTTPRequest(
                method: head.method, uri: head.uri,
                acceptsGzip: head.headers[canonicalForm: "accept-encoding"].contains { Self.acceptsGzip($0) },
                authorization: head.headers.first(name: "authorization"),
                accept: head.headers["accept"].joined(separator: ","),
                contentType: head.headers.first(name: "content-type") ?? "", contentEncoding: head.headers.first(name: "content-encoding") ?? "",
                body: body, bodyTooLarge: bodyTooLarge)
            request.overloaded = overloaded
            body = []
            bodyTooLarge = false
            overloaded = false
            // The body's bytes stay charged until the route has taken what it needs from them.
            let (budget, held) = (self.budget, self.held)
            self.held = 0
            let route = self.route
            let loop = context.eventLoop
            let bound = NIOLoopBound((context, self), eventLoop: loop)
            let respond: HTTPRespond = { response in
                loop.execute { let (context, handler) = bound.value; handler.write(response, for: head, context: context) }
            }
            let finished = request   // what the pool thread takes, no longer a var
            pool.runIfActive(eventLoop: loop) { route(finished, respond); budget?.release(held) }
                .whenFailure { _ in
                    budget?.release(held)
                    respond(HTTPResponse(status: .serviceUnavailable, contentType: "text/plain", body: Array("shutting down\n".utf8)))
                }
        }
    }

    /// Gives up the body read so far (and its charge).
    private func dropBody() {
        body = []
        budget?.release(held)
        held = 0
    }

    func channelInactive(context: ChannelHandlerContext) {
        dropBody()   // a client gone mid-body
        context.fireChannelInactive()
    }

    private static func acceptsGzip(_ token: Substring) -> Bool {
        let parts = token.split(separator: ";").map { $0.trimmingSpaces }
        guard parts.first?.lowercased() == "gzip" || parts.first == "*" else { return false }
        return !parts.dropFirst().contains { $0.replacingSpaces == "q=0" || $0.replacingSpaces == "q=0.0" }
    }

    private func write(_ response: HTTPResponse, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        let keepAlive = head.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        if response.gzipped { headers.add(name: "Content-Encoding", value: "gzip") }
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
        if head.method != .HEAD && !response.body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: response.body.count)
            buffer.writeBytes(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
        if !keepAlive {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            promise.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

private extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
    var replacingSpaces: String { String(filter { $0 != " " }) }
}

extension HTTPResponse {
    /// A `ProcessEndpoints` answer.
    package init(_ a: ProcessEndpoints.Answer) {
        self.init(status: HTTPResponseStatus(statusCode: a.status), contentType: a.contentType, body: Array(a.body.utf8),
                  headers: a.allow.map { [("Allow", $0)] } ?? [])
    }
}
