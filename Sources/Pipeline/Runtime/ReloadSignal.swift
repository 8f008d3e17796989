import Synchronization

/// Reloading, across the stages that trigger it and the process that does it.
/// SIGHUP bumps `generation` (stages that re-read files, such as the web config's
/// certificates, compare it with the one they last saw); the gateway installs
/// `handler`, which `POST /-/reload` calls; the outcome is kept for the
/// `prom_stream_gateway_config_last_reload_*` meta-metrics.
package enum ReloadSignal {
    public static let generation = Atomic<UInt64>(0)

    public static func bump() { generation.add(1, ordering: .releasing) }

    /// What a reload request got: accepted (the pipeline is being replaced, or the
    /// file did not change), or refused with the file's errors.
    public enum Outcome: Sendable { case accepted(String), refused([String]), unavailable }

    private static let handler = Mutex<(@Sendable () -> Outcome)?>(nil)

    public static func install(_ h: @escaping @Sendable () -> Outcome) { handler.withLock { $0 = h } }

    /// Asks for a reload (`POST /-/reload`); returns without waiting for it.
    public static func request() -> Outcome { handler.withLock { $0 }?() ?? .unavailable }

    /// 1 after a successful reload (and at start), 0 after a refused one.
    public static let lastSuccessful = Atomic<Bool>(true)
    /// Wall-clock seconds of the last successful reload (or of the start).
    public static let lastSuccessSeconds = Atomic<UInt64>(wallClockNanos() / 1_000_000_000)

    public static func record(success: Bool) {
        lastSuccessful.store(success, ordering: .releasing)
        if success { lastSuccessSeconds.store(wallClockNanos() / 1_000_000_000, ordering: .releasing) }
    }
}
