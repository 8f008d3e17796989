import Foundation
import Pipeline
import Redis
import Sources
import Testing
import TestSupport

/// Sentinel with a real `redis-sentinel`, a master and its replica: the source
/// asks for the master, follows a failover without a restart, and names a
/// sentinel that does not know the master.
@Suite(.serialized) struct RedisSentinelTests {
    func detail(_ runtime: PipelineRuntime) -> String { runtime.health.snapshot.first?.detail ?? "" }

    @Test func unknownMasterName_isNamedInReady() throws {
        let set = try SentinelSet()
        let runtime = try startPipeline(url: "127.0.0.1:\(set.sentinelPort),serviceName=nosuchmaster", key: uniqueKey(), options: ", max_backoff: 200ms")
        #expect(eventually { detail(runtime).contains("sentinel 127.0.0.1:\(set.sentinelPort) does not know master `nosuchmaster`") }, "\(detail(runtime))")
        #expect(!runtime.health.allReady)
        runtime.stop(); runtime.wait()
    }

    @Test func yamlSentinelBlock_andServiceName_bothFindTheMaster() throws {
        let set = try SentinelSet()
        for (url, options) in [("127.0.0.1:\(set.sentinelPort),serviceName=\(set.name)", ""),
                               ("localhost", ", sentinel: { master: \(set.name), addresses: [\"127.0.0.1:\(set.sentinelPort)\"] }")] {
            let key = uniqueKey()
            let runtime = try startPipeline(url: url, key: key, options: ", max_backoff: 200ms" + options)
            try set.master.push((0..<100).map { "s\($0)" }, key: "q")
            #expect(eventually { TestRegistry.shared.values(key).count == 100 }, "\(detail(runtime))")
            #expect(detail(runtime) == "connected to 127.0.0.1:\(set.master.port)/0", "\(detail(runtime))")
            runtime.stop(); runtime.wait()
        }
    }

    @Test func sentinelWithAPassword_isAskedWithTheYAMLPassword_andAWrongOneIsNamed() throws {
        let set = try SentinelSet(sentinelPassword: "sentinel-secret")
        let key = uniqueKey()
        let block = { (pw: String) in ", max_backoff: 200ms, sentinel: { master: \(set.name), addresses: [\"127.0.0.1:\(set.sentinelPort)\"], password: \(pw) }" }
        let wrong = try startPipeline(url: "localhost", key: uniqueKey(), options: block("nope"))
        #expect(eventually { detail(wrong).contains("sentinel 127.0.0.1:\(set.sentinelPort): authentication failed: WRONGPASS") }, "\(detail(wrong))")
        wrong.stop(); wrong.wait()
        let runtime = try startPipeline(url: "localhost", key: key, options: block("sentinel-secret"))
        try set.master.push((0..<50).map { "p\($0)" }, key: "q")
        #expect(eventually { TestRegistry.shared.values(key).count == 50 }, "\(detail(runtime))")
        runtime.stop(); runtime.wait()
    }

    @Test func failover_isFollowedWithoutARestart() throws {
        let set = try SentinelSet()
        let key = uniqueKey()
        let runtime = try startPipeline(url: "127.0.0.1:\(set.sentinelPort),serviceName=\(set.name)", key: key, options: ", max_backoff: 200ms")
        try set.master.push((0..<100).map { "before\($0)" }, key: "q")
        #expect(eventually { TestRegistry.shared.values(key).count == 100 })
        try set.failover()
        #expect(eventually(timeout: 20) { (try? set.currentMasterPort()) == set.replica.port })
        // The old master is told to replicate the new one; the source must move too.
        #expect(eventually(timeout: 20) { detail(runtime) == "connected to 127.0.0.1:\(set.replica.port)/0" }, "\(detail(runtime))")
        try set.replica.push((0..<100).map { "after\($0)" }, key: "q")
        #expect(eventually { TestRegistry.shared.values(key).count == 200 }, "\(detail(runtime))")
        #expect(runtime.health.allReady)
        runtime.stop(); runtime.wait()
        #expect(TestRegistry.shared.values(key).map(\.0).suffix(100) == (0..<100).map { "after\($0)" })
    }
}
