import NIOCore
import TLS

/// TLS for one accepted connection, in front of the HTTP handlers: ciphertext in,
/// plaintext on; plaintext out, ciphertext on. OpenSSL does the protocol over
/// memory BIOs (`TLSServerSession`); this handler only moves bytes and closes the
/// channel when the handshake or the session fails.
final class TLSServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: TLSServerSession
    private let onFailure: @Sendable (String) -> Void
    private var scratch = [UInt8](repeating: 0, count: 16384)
    private var closing = false

    init(session: TLSServerSession, onFailure: @escaping @Sendable (String) -> Void) {
        self.session = session
        self.onFailure = onFailure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { session.feed($0) }
        if !session.handshakeDone {
            switch session.handshake() {
            case .pending:
                flushCiphertext(context: context)
                return
            case .failed(let reason):
                onFailure(reason)
                if reason.contains("http request") {
                    // As Go's server: tell a plain-HTTP client in plain HTTP.
                    var answer = context.channel.allocator.buffer(capacity: 128)
                    answer.writeString("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an "
                        + "HTTP request to an HTTPS server.\n")
                    let bound = NIOLoopBound(context, eventLoop: context.eventLoop)   // the write completes on this loop
                    context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in bound.value.close(promise: nil) }
                    return
                }
                flushCiphertext(context: context)   // the alert, so the client learns why
                context.close(promise: nil)
                return
            case .done:
                break
            }
        }
        while true {
            let n = scratch.withUnsafeMutableBytes { session.read(into: $0) }
            guard let n else {
                flushCiphertext(context: context)
                if let failure = session.failure { onFailure(failure) }
                context.close(promise: nil)
                return
            }
            if n == 0 { break }
            var plain = context.channel.allocator.buffer(capacity: n)
            plain.writeBytes(scratch[0..<n])
            context.fireChannelRead(wrapInboundOut(plain))
        }
        flushCiphertext(context: context)   // session tickets, key updates
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        let ok = buffer.withUnsafeReadableBytes { session.write($0) }
        guard ok else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            context.close(promise: nil)
            return
        }
        writeCiphertext(context: context, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if !closing && session.handshakeDone {
            closing = true
            session.shutdown()   // close_notify
            writeCiphertext(context: context, promise: nil)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    private func writeCiphertext(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let pending = session.pendingOutput
        guard pending > 0 else { promise?.succeed(()); return }
        var out = context.channel.allocator.buffer(capacity: pending)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { session.takeOutput(into: $0) }
        context.write(wrapOutboundOut(out), promise: promise)
    }

    private func flushCiphertext(context: ChannelHandlerContext) {
        guard session.pendingOutput > 0 else { return }
        writeCiphertext(context: context, promise: nil)
        context.flush()
    }
}
