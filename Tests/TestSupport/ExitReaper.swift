import Foundation
import Synchronization

/// Servers a test started and has not stopped yet, killed when the test process
/// exits: a suite that keeps its servers in a `static let` (never released) would
/// otherwise leave a gateway or a redis-server running after every `make test`.
public enum ExitReaper {
    private static let children = Mutex<(pids: Set<Int32>, installed: Bool)>(([], false))

    public static func track(_ pid: Int32) {
        let install = children.withLock { c in
            c.pids.insert(pid)
            defer { c.installed = true }
            return !c.installed
        }
        if install { atexit { for pid in ExitReaper.children.withLock({ $0.pids }) { kill(pid, SIGKILL) } } }
    }

    /// The child was stopped and waited for (its pid may be reused from now on).
    public static func forget(_ pid: Int32) { children.withLock { _ = $0.pids.remove(pid) } }
}
