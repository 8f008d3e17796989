#if canImport(Glibc)
import Glibc
#endif

/// Starts a detached-from-Swift-concurrency OS thread. Stage workers block in
/// condition waits, which must never happen on the cooperative pool.
package final class OSThread: @unchecked Sendable {
    private var handle = pthread_t()
    private let name: String
    private let body: @Sendable () -> Void

    private init(name: String, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }

    /// Spawns a joinable thread running `body`. `name` shows in `top -H` (15 bytes max).
    public static func spawn(name: String, _ body: @escaping @Sendable () -> Void) -> OSThread {
        let thread = OSThread(name: String(decoding: name.utf8.prefix(15), as: UTF8.self), body: body)
        let context = Unmanaged.passRetained(thread).toOpaque()
        let rc = pthread_create(&thread.handle, nil, { raw in
            let me = Unmanaged<OSThread>.fromOpaque(raw!).takeRetainedValue()
            _ = setThreadName(pthread_self(), me.name)
            me.body()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return thread
    }

    public func join() { pthread_join(handle, nil) }
}

/// glibc's `pthread_setname_np` is declared only under `_GNU_SOURCE`, which Glibc's
/// module map does not set.
@_silgen_name("pthread_setname_np")
private func setThreadName(_ thread: pthread_t, _ name: UnsafePointer<CChar>) -> Int32
