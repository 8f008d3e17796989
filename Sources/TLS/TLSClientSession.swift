import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// Owns one client `SSL` over a connected, blocking socket (whose time-outs,
/// `SO_RCVTIMEO`/`SO_SNDTIMEO`, bound every call) and frees it in `deinit`. The
/// socket stays the caller's. Not thread-safe: one thread uses a session at a time.
public final class TLSClientSession {
    private let ssl: OpaquePointer

    /// Handshakes over `fd` as a client of `host` (the name verified and sent as
    /// SNI, unless `settings.serverName` says another).
    public init(context: TLSClientContext, fd: Int32, host: String, settings: TLSClientSettings) throws(TLSError) {
        OpenSSLErrors.clear()
        guard let ssl = SSL_new(context.context) else { throw .setup(OpenSSLErrors.describe(or: "SSL_new failed")) }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        let name = settings.serverName ?? host
        if !Self.isIPAddress(name) { _ = psg_SSL_set_tlsext_host_name(ssl, name) }
        if !settings.insecureSkipVerify {
            let param = SSL_get0_param(ssl)
            let ok = Self.isIPAddress(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name) : X509_VERIFY_PARAM_set1_host(param, name, 0)
            guard ok == 1 else { throw .setup("cannot verify against the name `\(name)`") }
        }
        let rc = SSL_connect(ssl)
        guard rc == 1 else { throw .session(handshakeFailure(rc, name: name)) }
    }

    deinit {
        SSL_free(ssl)
    }

    /// Sends all of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(TLSError) {
        guard !bytes.isEmpty else { return }
        OpenSSLErrors.clear()
        var written = 0
        let rc = SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &written)
        guard rc == 1 else { throw .session(ioFailure(operation: "write")) }
    }

    /// Reads what is available into `buffer`, blocking until something is; 0 means
    /// the server closed the session.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> Int {
        OpenSSLErrors.clear()
        var n = 0
        if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &n) == 1 { return n }
        let e = SSL_get_error(ssl, 0)
        if e == SSL_ERROR_ZERO_RETURN { return 0 }
        if e == SSL_ERROR_SYSCALL && errno == 0 && ERR_peek_error() == 0 { return 0 }   // EOF without close_notify
        throw .session(ioFailure(operation: "read"))
    }

    /// Sends close_notify (best effort, never waits for the peer's).
    public func shutdown() { _ = SSL_shutdown(ssl) }

    private func ioFailure(operation: String) -> String {
        let e = SSL_get_error(ssl, 0)
        let saved = errno
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE || saved == EAGAIN || saved == EWOULDBLOCK {
            return "time-out"
        }
        let reasons = OpenSSLErrors.drain()
        if !reasons.isEmpty { return Self.explain(reasons.joined(separator: ": ")) }
        if e == SSL_ERROR_SYSCALL, saved != 0 { return String(cString: strerror(saved)) }
        return "TLS \(operation) failed (SSL error \(e))"
    }

    private func handshakeFailure(_ rc: Int32, name: String) -> String {
        let e = SSL_get_error(ssl, rc)
        let saved = errno
        let verify = SSL_get_verify_result(ssl)
        let reasons = OpenSSLErrors.drain()
        if verify != X509_V_OK {
            let why = String(cString: X509_verify_cert_error_string(verify))
            if verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH {
                return "TLS handshake failed: certificate verify failed: \(why) (the server's certificate is not for `\(name)`; set "
                    + "sslHost= or tls.server_name to the name it is for)"
            }
            if verify == X509_V_ERR_CERT_HAS_EXPIRED {
                return "TLS handshake failed: certificate verify failed: \(why) (the server's certificate is no longer valid)"
            }
            return "TLS handshake failed: certificate verify failed: \(why) (is tls.ca_file / Redis__TlsCaFile the CA that signed the "
                + "server's certificate?)"
        }
        if !reasons.isEmpty { return "TLS handshake failed: " + Self.explain(reasons.joined(separator: ": ")) }
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE || saved == EAGAIN || saved == EWOULDBLOCK {
            return "TLS handshake failed: time-out (the server did not answer the TLS hello; is this a TLS port?)"
        }
        if e == SSL_ERROR_SYSCALL {
            return "TLS handshake failed: the server closed the connection" + (saved != 0 ? " (\(String(cString: strerror(saved))))" : "")
        }
        return "TLS handshake failed (SSL error \(e))"
    }

    /// Adds the likely cause to OpenSSL's terse reasons.
    static func explain(_ reason: String) -> String {
        if reason.contains("wrong version number") || reason.contains("packet length too long") || reason.contains("record layer failure") {
            return reason + " (the server does not speak TLS on this port; use redis:// or drop ssl=true, or point at the TLS port)"
        }
        if reason.contains("certificate required") || reason.contains("alert handshake failure") && reason.contains("sslv3") {
            return reason + " (the server requires a client certificate: tls.cert_file and tls.key_file, or Redis__TlsCertFile and Redis__TlsKeyFile)"
        }
        if reason.contains("unknown ca") || reason.contains("bad certificate") {
            return reason + " (the server rejected the client certificate)"
        }
        return reason
    }

    static func isIPAddress(_ s: String) -> Bool {
        var buf = in6_addr()
        return inet_pton(AF_INET, s, &buf) == 1 || inet_pton(AF_INET6, s, &buf) == 1
    }
}

@available(*, unavailable)
extension TLSClientSession: Sendable {}
