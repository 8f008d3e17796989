#if canImport(Glibc)
import Glibc
#endif

/// Owns one TCP socket, and the TLS session over it when there is one; closes both
/// in `deinit`. The Redis client (`RedisTransport`) and the remote-write sender
/// talk through it.
///
/// The socket is blocking with `SO_RCVTIMEO`/`SO_SNDTIMEO`: every read and write,
/// plain or TLS, returns within the time-out. Not thread-safe: one thread uses a
/// stream at a time.
public final class ClientStream {
    private let fd: Int32
    private let tls: TLSClientSession?
    private let readTimeout: Double

    /// Connects within `timeout` (TCP, then the TLS handshake when `tls` is given).
    public init(host: String, port: Int, tls: (TLSClientContext, TLSClientSettings)?, timeout: Double, readTimeout: Double,
                keepAlive: Int? = nil) throws(StreamError) {
        Self.ignoreSIGPIPE
        self.readTimeout = readTimeout
        fd = try Self.connect(host: host, port: port, timeout: timeout)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if let keepAlive, keepAlive > 0 {
            var idle = Int32(keepAlive)
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &idle, socklen_t(MemoryLayout<Int32>.size))
        }
        if let (context, settings) = tls {
            Self.setTimeouts(fd, timeout)   // the handshake counts as connecting
            do {
                self.tls = try TLSClientSession(context: context, fd: fd, host: host, settings: settings)
            } catch {
                close(fd)
                throw StreamError(error.description)
            }
        } else {
            self.tls = nil
        }
        Self.setTimeouts(fd, readTimeout)
    }

    deinit {
        tls?.shutdown()
        close(fd)
    }

    public var isTLS: Bool { tls != nil }

    /// Sends all of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(StreamError) {
        if let tls {
            do { try tls.write(bytes) } catch { throw failure(error.description, what: "write") }
            return
        }
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(String(cString: strerror(errno)), what: "write", errno: errno)
            }
            offset += n
        }
    }

    /// Reads what is available (at least one byte); 0 means the peer closed the connection.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int {
        if let tls {
            do { return try tls.read(into: buffer) } catch { throw failure(error.description, what: "reply") }
        }
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw failure(String(cString: strerror(errno)), what: "reply", errno: errno)
        }
    }

    private func failure(_ text: String, what: String, errno e: Int32 = 0) -> StreamError {
        if e == EAGAIN || e == EWOULDBLOCK || text == "time-out" {
            return StreamError("no \(what) within \(readTimeout) s (time-out)")
        }
        return StreamError(text)
    }

    /// Resolves and connects, trying each address in turn; non-blocking connect
    /// plus `poll` bounds it by `timeout`.
    private static func connect(host: String, port: Int, timeout: Double) throws(StreamError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw StreamError("cannot resolve `\(host)`: \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            if fd < 0 { lastError = String(cString: strerror(errno)); continue }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = String(cString: strerror(errno)); close(fd); continue
            }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&p, 1, Int32(max(1, timeout * 1000)))
            if ready == 0 { lastError = "no connection within \(timeout) s (time-out)"; close(fd); continue }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            if ready < 0 || soError != 0 {
                lastError = String(cString: strerror(soError != 0 ? soError : errno)); close(fd); continue
            }
            _ = fcntl(fd, F_SETFL, flags)
            return fd
        }
        throw StreamError("cannot connect to \(host):\(port): \(lastError)")
    }

    private static func setTimeouts(_ fd: Int32, _ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// OpenSSL writes with write(2): a peer that closed must be an error, not SIGPIPE.
    private static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN); return () }()
}

@available(*, unavailable)
extension ClientStream: Sendable {}

/// Why a connection, read or write failed, in words for the log.
public struct StreamError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
