import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One gateway per state file, as Prometheus locks its TSDB directory: `<state_file>.lock`, held
/// with `flock` while a sink uses the file. Two gateways on one file (two replicas on a shared
/// volume) would overwrite each other's aggregate and stream positions; the second one does not
/// start. Within the process a path's lock is shared, so a reload's successor takes it over from
/// its predecessor (two sinks of one pipeline on one file are refused by the configuration).
/// The kernel lets go of it when the process dies, `kill -9` included.
public enum StateFileLock {
    private static let held = Mutex<[String: (fd: Int32, users: Int)]>([:])

    public struct Taken: Error, CustomStringConvertible {
        public var description: String
    }

    /// Takes the path's lock, or another share of it. A lock file that cannot be made (a missing
    /// or read-only directory) is no lock: the snapshots report that themselves.
    public static func acquire(_ path: String) throws(Taken) {
        let failure: Taken? = held.withLock { h in
            if let entry = h[path] { h[path] = (entry.fd, entry.users + 1); return nil }
            let fd = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return nil }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                var buffer = [UInt8](repeating: 0, count: 32)
                let n = read(fd, &buffer, buffer.count)
                close(fd)
                let pid = String(decoding: buffer.prefix(max(0, n)).filter { (0x30...0x39).contains($0) }, as: UTF8.self)
                return Taken(description: "\(path) is in use by another gateway (\(pid.isEmpty ? "its lock" : "process \(pid)") holds "
                             + "\(path).lock): one gateway per state file")
            }
            let pid = Array("\(getpid())\n".utf8)
            _ = ftruncate(fd, 0)
            _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            h[path] = (fd, 1)
            return nil
        }
        if let failure { throw failure }
    }

    /// Gives up a share; the last one unlocks.
    public static func release(_ path: String) {
        held.withLock { h in
            guard let entry = h[path] else { return }
            if entry.users > 1 { h[path] = (entry.fd, entry.users - 1); return }
            close(entry.fd)
            h[path] = nil
        }
    }
}
