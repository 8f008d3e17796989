#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex with one condition variable, for the blocking hand-offs between
/// stage threads (`Synchronization.Mutex` has no condition variable).
///
/// Owns its two pthread objects and destroys them in `deinit`. `@unchecked Sendable`:
/// the pthread primitives are the synchronisation.
public final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for a broadcast; the caller holds the lock and re-checks its predicate.
    public func wait() { pthread_cond_wait(cond, mutex) }

    /// Waits at most `seconds`; returns false on time-out. The caller holds the lock.
    @discardableResult
    public func wait(seconds: Double) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let whole = Int(seconds)
        var nsec = now.tv_nsec + Int((seconds - Double(whole)) * 1e9)
        var sec = now.tv_sec + whole
        if nsec >= 1_000_000_000 { sec += 1; nsec -= 1_000_000_000 }
        var deadline = timespec(tv_sec: sec, tv_nsec: nsec)
        return pthread_cond_timedwait(cond, mutex, &deadline) == 0
    }

    public func broadcast() { pthread_cond_broadcast(cond) }
    public func signal() { pthread_cond_signal(cond) }
}

/// Starts a detached-from-Swift-concurrency OS thread. Stage workers block in
/// condition waits, which must never happen on the cooperative pool.
public final class OSThread: @unchecked Sendable {
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
