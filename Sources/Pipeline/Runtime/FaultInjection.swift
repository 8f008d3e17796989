#if canImport(Glibc)
import Glibc
#endif

/// Crash points for the durability tests: with `PSG_FAULT=<point>[:<n>]` in the
/// environment, the process kills itself with SIGKILL the `n`-th time (default
/// the first) it reaches `point`, exactly as `kill -9` would at that instant.
/// Without the variable a point costs one load of a cached value.
package enum FaultInjection {
    private static let armed: (point: String, after: Int)? = {
        guard let raw = getenv("PSG_FAULT") else { return nil }
        let parts = String(cString: raw).split(separator: ":")
        guard let point = parts.first else { return nil }
        return (String(point), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()
    nonisolated(unsafe) private static var hits = 0   // only touched when armed, on one thread per point

    @inline(__always)
    public static func point(_ name: StaticString) {
        guard let armed, armed.point == "\(name)" else { return }
        hits += 1
        if hits >= armed.after { kill(getpid(), SIGKILL) }
    }
}
