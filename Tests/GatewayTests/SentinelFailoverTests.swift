import Foundation
import Redis
import Sources
import Synchronization
import Testing
import TestSupport

/// The gateway behind Sentinel with durability on, while a producer pushes:
/// a `SENTINEL FAILOVER`, then the new master killed with SIGKILL. The gateway
/// follows each new master without a restart, and every batch whose push Redis
/// confirmed on a replica (`WAIT 1`) is on the page in full.
@Suite struct SentinelFailoverTests {
    /// The producer's bookkeeping: confirmed batches, and those whose push failed
    /// or was not confirmed (they may or may not have survived the failover).
    struct Pushed { var confirmed: [Int] = []; var uncertain: [Int] = [] }

    static let perBatch = 20

    static func batch(_ b: Int) -> [String] {
        (0..<perBatch).map { _ in #"{"type":"counter","name":"fo_total","value":1,"labels":{"batch":"\#(b)"}}"# }
    }

    @Test func failoverAndKilledMaster_loseNoConfirmedSample() throws {
        let set = try SentinelSet()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sentinel-state-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let gateway = try GatewayProcess(environment: [
            "Redis__ConnectionString": "127.0.0.1:\(set.sentinelPort),serviceName=\(set.name)",
            "Metrics__StateFile": dir.appendingPathComponent("state").path, "Metrics__SnapshotInterval": "300ms", "Gateway__Instance": "t",
        ])
        let pushed = Mutex(Pushed())
        let stop = Atomic<Bool>(false)
        let producer = OSThreadRunner {
            var connection: RedisConnection?
            var b = 0
            while !stop.load(ordering: .acquiring) {
                defer { b += 1; usleep(20_000) }
                do {
                    if connection == nil {
                        guard let port = try set.currentMasterPort() else { throw RedisError.closed }
                        connection = try RedisConnection(host: "127.0.0.1", port: port, timeout: 0.5, readTimeout: 2)
                    }
                    try connection!.lpush(Self.batch(b))
                    guard case .integer(let replicas) = try connection!.command("WAIT", "1", "1000"), replicas >= 1 else {
                        throw RedisError.protocolViolation("not replicated")
                    }
                    pushed.withLock { $0.confirmed.append(b) }
                } catch {
                    pushed.withLock { $0.uncertain.append(b) }
                    connection = nil
                    usleep(100_000)
                }
            }
        }

        Thread.sleep(forTimeInterval: 1.5)
        do { try set.failover() } catch { stop.store(true, ordering: .releasing); producer.join(); throw error }
        #expect(eventually(timeout: 20) { (try? set.currentMasterPort()) == set.replica.port }, "the sentinel promoted the replica")
        // Wait until the old master replicates the new one, so it can be promoted back.
        #expect(eventually(timeout: 30) {
            guard let c = try? set.master.client(), let info = try? c.command("INFO", "replication").text else { return false }
            return info.contains("role:slave") && info.contains("master_link_status:up")
        })
        Thread.sleep(forTimeInterval: 1.5)
        set.replica.stop()   // SIGKILL the current master
        #expect(eventually(timeout: 40) { (try? set.currentMasterPort()) == set.master.port }, "the sentinel promoted the old master back")
        Thread.sleep(forTimeInterval: 1.5)
        stop.store(true, ordering: .releasing)
        producer.join()

        let (confirmed, uncertain) = pushed.withLock { ($0.confirmed, $0.uncertain) }
        #expect(confirmed.count > 50, "the producer kept pushing: \(confirmed.count) confirmed, \(uncertain.count) uncertain")
        #expect(eventually(timeout: 20) { (try? set.master.llen()) == 0 })
        var missing: [Int] = [], repeated = 0
        #expect(eventually(timeout: 20) {
            guard let page = try? gateway.metrics() else { return false }
            var values: [Int: Double] = [:]
            for line in page.split(separator: "\n") where line.hasPrefix("fo_total{batch=\"") {
                let b = Int(line.dropFirst("fo_total{batch=\"".count).prefix { $0 != "\"" })!
                values[b] = Double(line.split(separator: " ").last!)!
            }
            missing = confirmed.filter { (values[$0] ?? 0) < Double(Self.perBatch) }
            repeated = values.values.filter { $0 > Double(Self.perBatch) }.count
            return missing.isEmpty
        }, "confirmed batches missing or short: \(missing.prefix(20))")
        #expect(gateway.log.contains("no longer the master") || gateway.log.contains("lost Redis connection"), "the gateway noticed the failover")
        // Async replication can repeat what the gateway popped from a master in its
        // last moments (README, Sentinel); it is reported, not hidden.
        print("sentinel failover: \(confirmed.count) batches confirmed, \(uncertain.count) uncertain, \(repeated) applied more than once")
        #expect(gateway.terminate().status == 0)
    }
}
