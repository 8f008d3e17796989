import Foundation

/// The built `gateway` binary run as a child process, the way users run it.
public final class GatewayProcess: @unchecked Sendable {
    public let process = Process()
    public let port: Int
    private let logURL: URL

    /// `.build/<config>/gateway`, next to the test bundle.
    public static var binary: String {
        if let env = ProcessInfo.processInfo.environment["GATEWAY_BIN"] { return env }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("gateway").path
    }

    /// Starts `gateway run` with `args` and `environment` (added to a minimal one)
    /// listening on a free port, and waits until `/` answers. `launcher` runs it
    /// through another command (`setpriv --reuid=10001 …`). With `https`, it waits
    /// for the port to accept instead (the test speaks TLS with curl).
    public init(args: [String] = [], environment: [String: String] = [:], launcher: [String] = [], https: Bool = false) throws {
        port = freePort()
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let command = launcher + [Self.binary, "run", "--listen", "127.0.0.1:\(port)"] + args
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "LOG_LEVEL": "debug"]
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        ExitReaper.track(process.processIdentifier)
        let port = self.port
        let answers: () -> Bool = https ? { portAccepts(port) } : { (try? httpGet(port: port, path: "/", timeout: 1))?.status == 200 }
        guard eventually(timeout: 15, { answers() || !process.isRunning }),
              process.isRunning else {
            throw StartError(log: self.log)
        }
    }

    public struct StartError: Error, CustomStringConvertible { public var log: String; public var description: String { "gateway did not start:\n\(log)" } }

    deinit {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        ExitReaper.forget(process.processIdentifier)
        try? FileManager.default.removeItem(at: logURL)
    }

    public var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    public func metrics() throws -> String { try httpGet(port: port, path: "/metrics").text }

    /// The value of the first line of the page that starts with `series` followed by a space.
    public func value(_ series: String) throws -> Double? {
        for line in try metrics().split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.split(separator: " ").last!) ?? (line.hasSuffix("+Inf") ? .infinity : .nan)
        }
        return nil
    }

    /// Sends SIGTERM and waits; returns the exit status and how long it took.
    public func terminate(timeout: Double = 10) -> (status: Int32, seconds: Double) {
        let start = Date()
        kill(process.processIdentifier, SIGTERM)
        let deadline = start.addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        ExitReaper.forget(process.processIdentifier)
        return (process.terminationStatus, Date().timeIntervalSince(start))
    }
}

/// Whether something accepts TCP connections on the loopback `port`.
public func portAccepts(_ port: Int) -> Bool {
    guard let fd = connectLoopback(port: port) else { return false }
    close(fd)
    return true
}

/// A TCP socket connected to the loopback `port` (the caller closes it), or nil when
/// nothing accepts there: for tests that speak raw bytes (a half-sent request).
public func connectLoopback(port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let rc = withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { close(fd); return nil }
    return fd
}
