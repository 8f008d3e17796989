import NIOCore
import NIOHTTP1
import NIOPosix
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// A request as the router sees it.
struct HTTPRequest: Sendable {
    var method: HTTPMethod
    var path: Substring { uri.split(separator: "?", maxSplits: 1).first ?? "" }
    var uri: String
    var acceptsGzip: Bool
    /// The `Authorization` header, for basic auth.
    var authorization: String? = nil
}

struct HTTPResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]
    var gzipped = false
    /// Extra headers (`Allow` on a 405, `Vary` on /metrics).
    var headers: [(String, String)] = []
}

/// The HTTP server could not bind: names the address and the OS reason.
struct ListenError: Error, CustomStringConvertible {
    var address: String
    var underlying: Error

    var description: String {
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
final class HTTPServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool
    private let channel: Channel

    /// The port actually bound (useful with port 0).
    var port: Int { channel.localAddress?.port ?? 0 }

    /// With `tls`, every connection is TLS (its handshake failures go to `onTLSFailure`).
    init(host: String, port: Int, idleTimeout: TimeAmount = .seconds(60), tls: ServerCertificates? = nil,
         onTLSFailure: @escaping @Sendable (String) -> Void = { _ in },
         route: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        pool = NIOThreadPool(numberOfThreads: 1)
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
                    try channel.pipeline.syncOperations.addHandler(HTTPHandler(pool: pool, route: route))
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

    func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
        try? pool.syncShutdownGracefully()
    }
}

private final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let pool: NIOThreadPool
    private let route: @Sendable (HTTPRequest) -> HTTPResponse
    private var head: HTTPRequestHead?

    init(pool: NIOThreadPool, route: @escaping @Sendable (HTTPRequest) -> HTTPResponse) {
        self.pool = pool
        self.route = route
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break   // request bodies are ignored
        case .end:
            guard let head else { return }
            self.head = nil
            let request = HTTPRequest(
                method: head.method, uri: head.uri,
                acceptsGzip: head.headers[canonicalForm: "accept-encoding"].contains { Self.acceptsGzip($0) },
                authorization: head.headers.first(name: "authorization"))
            let route = self.route
            let bound = NIOLoopBound((context, self), eventLoop: context.eventLoop)
            pool.runIfActive(eventLoop: context.eventLoop) { route(request) }
                .whenComplete { result in
                    let (context, handler) = bound.value
                    let response = (try? result.get()) ?? HTTPResponse(status: .internalServerError, contentType: "text/plain", body: Array("internal error\n".utf8))
                    handler.write(response, for: head, context: context)
                }
        }
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
