import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// How a client verifies the server and proves itself (mTLS).
public struct TLSClientSettings: Sendable, Equatable {
    /// PEM bundle of trusted CAs; nil: the system trust store.
    public var caFile: String?
    /// Client certificate chain and key (PEM), for servers that require one.
    public var certFile: String?
    public var keyFile: String?
    /// The name the certificate must be for (and SNI); nil: the host connected to.
    public var serverName: String?
    /// Skips certificate and host-name verification (a warning is logged).
    public var insecureSkipVerify = false
    public var minVersion: TLSVersion = .tls12
    public var maxVersion: TLSVersion?

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, serverName: String? = nil, insecureSkipVerify: Bool = false) {
        self.caFile = caFile; self.certFile = certFile; self.keyFile = keyFile
        self.serverName = serverName; self.insecureSkipVerify = insecureSkipVerify
    }
}

/// Owns one client `SSL_CTX` (trust, client certificate, versions) and frees it
/// in `deinit`. A context is immutable once built and OpenSSL lets threads share
/// it; it is built anew on every connect so that rotated files are picked up.
public final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer

    public init(_ s: TLSClientSettings) throws(TLSError) {
        OpenSSLErrors.clear()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw .setup(OpenSSLErrors.describe(or: "SSL_CTX_new failed")) }
        context = ctx
        _ = psg_SSL_CTX_set_min_proto_version(ctx, s.minVersion.openSSL)
        if let max = s.maxVersion { _ = psg_SSL_CTX_set_max_proto_version(ctx, max.openSSL) }
        if let ca = s.caFile {
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else {
                throw .setup("cannot load the CA file \(ca): \(OpenSSLErrors.describe(or: fileReason(ca)))")
            }
        } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
            throw .setup("cannot load the system trust store: \(OpenSSLErrors.describe(or: "unknown error"))")
        }
        if let cert = s.certFile {
            try useCertificate(ctx, chain: cert, key: s.keyFile ?? cert, naming: ("the client certificate", "the client key"))
        }
        SSL_CTX_set_verify(ctx, s.insecureSkipVerify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nil)
    }

    deinit { SSL_CTX_free(context) }
}

/// Why a TLS set-up or session failed, in words a user can act on.
public enum TLSError: Error, CustomStringConvertible, Sendable {
    /// Files or settings (CA, certificate, key).
    case setup(String)
    /// The handshake or a read or write on the session.
    case session(String)

    public var description: String {
        switch self {
        case .setup(let s), .session(let s): s
        }
    }
}

/// Loads a certificate chain and its key into `ctx` and checks that they match;
/// `naming` says what they are in the messages (`cert_file`, `the client key`).
func useCertificate(_ ctx: OpaquePointer, chain: String, key: String, naming: (chain: String, key: String)) throws(TLSError) {
    guard SSL_CTX_use_certificate_chain_file(ctx, chain) == 1 else {
        throw .setup("cannot load \(naming.chain) \(chain): \(OpenSSLErrors.describe(or: fileReason(chain)))")
    }
    guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
        throw .setup("cannot load \(naming.key) \(key): \(OpenSSLErrors.describe(or: fileReason(key)))")
    }
    guard SSL_CTX_check_private_key(ctx) == 1 else {
        throw .setup("\(naming.key) \(key) does not match \(naming.chain) \(chain)")
    }
}

/// Why a file could not be read, for messages where OpenSSL says nothing useful.
func fileReason(_ path: String) -> String {
    if access(path, R_OK) != 0 { return String(cString: strerror(errno)) }
    return "not a PEM file of the expected kind"
}
