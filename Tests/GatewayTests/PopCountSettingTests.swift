import Foundation
import Testing
import TestSupport

/// `Redis__MetricQueueMaxPopCount` reaches the default pipeline's source: unset, small
/// elements are popped hundreds at a time; `25` pops them 25 at a time, as the .NET gateway does.
@Suite struct PopCountSettingTests {
    @Test(arguments: [(nil, 1...60), ("25", 120...180)] as [(String?, ClosedRange<Int>)])
    func maxPopCount_setsHowManySmallElementsAPopTakes(_ setting: String?, _ pops: ClosedRange<Int>) throws {
        let redis = try RedisServer()
        var environment = ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"]
        if let setting { environment["Redis__MetricQueueMaxPopCount"] = setting }
        let key = "prom-stream-gateway:metric-queue"
        // Pushed before the gateway starts: one backlog of 3 000 elements.
        try redis.push((0..<3000).map { #"{"type":"counter","name":"pops_total","value":1,"labels":{"n":"\#($0 % 10)"}}"# }, key: key)
        let gateway = try GatewayProcess(environment: environment)
        func total() -> Double { (0..<10).reduce(0) { $0 + ((try? gateway.value(#"pops_total{n="\#($1)"}"#)) ?? 0) } }
        #expect(eventually { total() == 3000 })
        let info = try redis.client().command("INFO", "commandstats").text ?? ""
        func calls(_ command: String) -> Int {
            guard let r = info.range(of: "cmdstat_\(command):calls=") else { return 0 }
            return Int(info[r.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        // 3 000 in pops of 400 (or of 25), the first pop's one, and the empty ones of the last window in flight:
        // measured 37 (149).
        #expect(pops.contains(calls("rpop")), "\(calls("rpop")) RPOPs")
        #expect(gateway.terminate().status == 0)
    }
}
