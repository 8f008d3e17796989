import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Pipeline

/// Turns SIGTERM, SIGINT and SIGHUP into a callback on a thread of its own. The signals
/// are blocked before any other thread starts, so every thread inherits the mask
/// and only `sigwait` here receives them.
final class SignalWaiter: Sendable {
    static func blockTerminationSignals() -> SignalWaiter {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        return SignalWaiter()
    }

    func onSignal(_ handler: @escaping @Sendable (Int32) -> Void) {
        _ = OSThread.spawn(name: "signals") {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGTERM)
            sigaddset(&set, SIGINT)
            sigaddset(&set, SIGHUP)
            var received: Int32 = 0
            while sigwait(&set, &received) == 0 {
                handler(received)
            }
        }
    }
}
