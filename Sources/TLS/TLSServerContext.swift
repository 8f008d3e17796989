import COpenSSL

/// Which client certificates a server asks for and accepts; the exporter-toolkit
/// web config's `client_auth_type` values (Go's `tls.ClientAuthType`).
public enum ClientAuthType: String, CaseIterable, Sendable {
    case noClientCert = "NoClientCert"
    case requestClientCert = "RequestClientCert"
    case requireAnyClientCert = "RequireAnyClientCert"
    case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
    case requireAndVerifyClientCert = "RequireAndVerifyClientCert"

    /// Whether the certificate is checked against `client_ca_file`.
    public var verifies: Bool { self == .verifyClientCertIfGiven || self == .requireAndVerifyClientCert }
}

/// A server's TLS settings, as the web config's `tls_server_config` gives them.
public struct TLSServerSettings: Sendable, Equatable {
    public var certFile: String
    public var keyFile: String
    public var clientAuth: ClientAuthType = .noClientCert
    public var clientCAFile: String?
    public var minVersion: TLSVersion = .tls12
    public var maxVersion: TLSVersion?
    /// OpenSSL cipher names for TLS ≤ 1.2 (TLS 1.3's suites are not configurable, as in Go).
    public var ciphers: [String] = []
    /// OpenSSL group names (`P-256`, `X25519`).
    public var groups: [String] = []
    public var preferServerCiphers = false

    public init(certFile: String, keyFile: String) { self.certFile = certFile; self.keyFile = keyFile }

    /// The files the context is built from (what a reload watches).
    public var files: [String] { [certFile, keyFile] + (clientCAFile.map { [$0] } ?? []) }
}

/// Owns one server `SSL_CTX` built from `TLSServerSettings`; immutable once built,
/// shared by the connections accepted while it is current. A reload builds a new one.
public final class TLSServerContext: @unchecked Sendable {
    let context: OpaquePointer

    public init(_ s: TLSServerSettings) throws(TLSError) {
        OpenSSLErrors.clear()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw .setup(OpenSSLErrors.describe(or: "SSL_CTX_new failed")) }
        context = ctx
        _ = psg_SSL_CTX_set_min_proto_version(ctx, s.minVersion.openSSL)
        if let max = s.maxVersion { _ = psg_SSL_CTX_set_max_proto_version(ctx, max.openSSL) }
        try useCertificate(ctx, chain: s.certFile, key: s.keyFile, naming: ("cert_file", "key_file"))
        if !s.ciphers.isEmpty, SSL_CTX_set_cipher_list(ctx, s.ciphers.joined(separator: ":")) != 1 {
            throw .setup("cipher_suites: OpenSSL accepts none of \(s.ciphers.joined(separator: ", "))")
        }
        if !s.groups.isEmpty, psg_SSL_CTX_set1_groups_list(ctx, s.groups.joined(separator: ":")) != 1 {
            throw .setup("curve_preferences: OpenSSL accepts none of \(s.groups.joined(separator: ", "))")
        }
        if s.preferServerCiphers { psg_SSL_CTX_prefer_server_ciphers(ctx) }
        if let ca = s.clientCAFile {
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1, let names = SSL_load_client_CA_file(ca) else {
                throw .setup("cannot load client_ca_file \(ca): \(OpenSSLErrors.describe(or: fileReason(ca)))")
            }
            SSL_CTX_set_client_CA_list(ctx, names)
        }
        switch s.clientAuth {
        case .noClientCert: SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        case .requestClientCert: psg_SSL_CTX_verify_without_chain_check(ctx, SSL_VERIFY_PEER)
        case .requireAnyClientCert: psg_SSL_CTX_verify_without_chain_check(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT)
        case .verifyClientCertIfGiven: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        case .requireAndVerifyClientCert: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        }
    }

    deinit { SSL_CTX_free(context) }
}

/// Owns one server-side `SSL` over two memory BIOs, for an event loop: ciphertext
/// from the network goes in with `feed`, plaintext comes out of `read`; what
/// OpenSSL wants to send is taken with `takeOutput`. Not thread-safe (one channel).
public final class TLSServerSession {
    private let ssl: OpaquePointer
    private let input: OpaquePointer    // network → OpenSSL
    private let output: OpaquePointer   // OpenSSL → network
    public private(set) var handshakeDone = false

    public init(context: TLSServerContext) throws(TLSError) {
        guard let ssl = SSL_new(context.context) else { throw .setup(OpenSSLErrors.describe(or: "SSL_new failed")) }
        guard let i = BIO_new(BIO_s_mem()), let o = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .setup("cannot allocate memory BIOs")
        }
        self.ssl = ssl; input = i; output = o
        SSL_set_bio(ssl, i, o)   // the SSL owns both BIOs now
        SSL_set_accept_state(ssl)
    }

    deinit { SSL_free(ssl) }

    public func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        _ = BIO_write(input, bytes.baseAddress, Int32(bytes.count))
    }

    public enum Progress { case pending, done, failed(String) }

    /// Advances the handshake with what was fed.
    public func handshake() -> Progress {
        OpenSSLErrors.clear()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 { handshakeDone = true; return .done }
        let e = SSL_get_error(ssl, rc)
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return .pending }
        return .failed(OpenSSLErrors.describe(or: "SSL error \(e)"))
    }

    /// Decrypted bytes into `buffer`: > 0 read, 0 nothing yet, nil the peer closed
    /// or the session failed (`failure` says why).
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        OpenSSLErrors.clear()
        var n = 0
        if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &n) == 1 { return n }
        let e = SSL_get_error(ssl, 0)
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return 0 }
        failure = e == SSL_ERROR_ZERO_RETURN ? nil : OpenSSLErrors.describe(or: "SSL error \(e)")
        return nil
    }

    public private(set) var failure: String?

    /// Encrypts `bytes` (memory BIOs never block, so all of it).
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !bytes.isEmpty else { return true }
        var written = 0
        return SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &written) == 1
    }

    public func shutdown() { _ = SSL_shutdown(ssl) }

    /// Bytes waiting to go to the network.
    public var pendingOutput: Int { Int(BIO_ctrl_pending(output)) }

    /// Moves up to `buffer.count` pending bytes into `buffer`.
    public func takeOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = BIO_read(output, buffer.baseAddress, Int32(buffer.count))
        return n > 0 ? Int(n) : 0
    }
}

@available(*, unavailable)
extension TLSServerSession: Sendable {}
