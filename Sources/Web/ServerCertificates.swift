import Logging
import Pipeline
import Synchronization
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// The server certificate the listener hands to new connections, re-read when its
/// files change (checked at most once a second, on an accept) or on SIGHUP —
/// without closing the listener, as exporter-toolkit does. A reload that fails
/// (a half-written key, a certificate for another key) is logged and the previous
/// certificate stays in use; connections already open keep theirs.
package final class ServerCertificates: Sendable {
    private let settings: TLSServerSettings
    private let logger: Logger
    private struct State {
        var context: TLSServerContext
        var stamps: [FileStamp]
        var checkedAt: UInt64
        var reloadGeneration: UInt64
    }
    private let state: Mutex<State>

    package init(settings: TLSServerSettings, logger: Logger) throws(TLSError) {
        self.settings = settings
        self.logger = logger
        let context = try TLSServerContext(settings)
        state = Mutex(State(context: context, stamps: settings.files.map(FileStamp.init), checkedAt: monotonicNanos(),
                            reloadGeneration: ReloadSignal.generation.load(ordering: .acquiring)))
    }

    /// The context for a connection accepted now.
    package func current() -> TLSServerContext {
        state.withLock { s in
            let now = monotonicNanos()
            let generation = ReloadSignal.generation.load(ordering: .acquiring)
            let signalled = generation != s.reloadGeneration
            guard signalled || now - s.checkedAt >= 1_000_000_000 else { return s.context }
            s.checkedAt = now
            s.reloadGeneration = generation
            let stamps = settings.files.map(FileStamp.init)
            guard signalled || stamps != s.stamps else { return s.context }
            s.stamps = stamps
            do {
                s.context = try TLSServerContext(settings)
                logger.info("reloaded the TLS certificate", metadata: ["cert_file": "\(settings.certFile)",
                        "reason": "\(signalled ? "SIGHUP" : "files changed")"])
            } catch {
                logger.error("cannot reload the TLS certificate; keeping the previous one", metadata: ["error": "\(error)"])
            }
            return s.context
        }
    }
}

/// What tells that a file changed: inode, size and modification time.
struct FileStamp: Equatable, Sendable {
    var inode: UInt64 = 0, size: Int64 = 0, seconds: Int = 0, nanoseconds: Int = 0
    init(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }
        inode = UInt64(st.st_ino); size = Int64(st.st_size)
        seconds = st.st_mtim.tv_sec; nanoseconds = st.st_mtim.tv_nsec
    }
}
