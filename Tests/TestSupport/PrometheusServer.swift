import Foundation

/// A real `prometheus` on a free loopback port with the given scrape configs
/// (scraping every second), its data in a temporary folder; stopped when dropped.
/// Fails loudly when `prometheus` is not installed.
public final class PrometheusServer: @unchecked Sendable {
    public let port: Int
    private var process = Process()
    private let dir: URL
    private var arguments: [String] = []
    private var bin = ""

    public struct Missing: Error, CustomStringConvertible {
        public var description = "prometheus not installed (apt-get install prometheus, or `make test` does it)"
    }

    /// `scrapeConfigs`: the YAML list under `scrape_configs:`, indented by two spaces;
    /// `ruleFiles`: absolute paths of rule files to evaluate (every second);
    /// `features`: `--enable-feature` values (`native-histograms`, `exemplar-storage`).
    /// `extraArguments`: more flags (`--web.enable-remote-write-receiver`, `--web.config.file=…`).
    public init(scrapeConfigs: String = "", ruleFiles: [String] = [], features: [String] = [], extraArguments: [String] = []) throws {
        guard let bin = RedisServer.which("prometheus") else { throw Missing() }
        self.bin = bin
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("prom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = dir.appendingPathComponent("prometheus.yml")
        try """
        global: { scrape_interval: 1s, evaluation_interval: 1s }
        rule_files: [\(ruleFiles.map { "\"\($0)\"" }.joined(separator: ", "))]
        scrape_configs:
        \(scrapeConfigs)
        """.write(to: config, atomically: true, encoding: .utf8)
        port = freePort()
        arguments = ["--config.file=\(config.path)", "--storage.tsdb.path=\(dir.path)/data",
                     "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
            + (features.isEmpty ? [] : ["--enable-feature=" + features.joined(separator: ",")]) + extraArguments
        try launch()
    }

    private func launch() throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        ExitReaper.track(process.processIdentifier)
    }

    /// Stops it (SIGTERM, waits), keeping its data.
    public func stop() {
        process.terminate()
        process.waitUntilExit()
        ExitReaper.forget(process.processIdentifier)
    }

    /// Starts it again on the same port with the same data.
    public func restart() throws { try launch() }

    /// Whether `/-/ready` answers 200.
    public var isReady: Bool { (try? httpGet(port: port, path: "/-/ready", timeout: 1))?.status == 200 }

    deinit {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dir)
    }

    /// The body of `/api/v1/query_exemplars` for `q` over the last hour.
    public func exemplars(_ q: String) -> String {
        let encoded = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? q
        let now = Int(Date().timeIntervalSince1970)
        return (try? httpGet(port: port, path: "/api/v1/query_exemplars?query=\(encoded)&start=\(now - 3600)&end=\(now + 60)", timeout: 2).text) ?? ""
    }

    /// The body of `/api/v1/query` for `q` (empty when Prometheus does not answer).
    public func query(_ q: String) -> String {
        let encoded = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? q
        return (try? httpGet(port: port, path: "/api/v1/query?query=\(encoded)", timeout: 2).text) ?? ""
    }
}
