import Foundation
import Redis
import Sources
import Testing
import TestSupport

@Suite struct ExamplePipelineTests {
    @Test func relabelYAML_renamesDropsAndAddsLabels() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(args: ["--config", packageRoot.appendingPathComponent("pipelines/relabel.yaml").path],
                                         environment: ["REDIS_URL": redis.url, "GATEWAY_ENV": "test"])
        try redis.push([
            #"{"type":"counter","name":"legacy_jobs_total","value":2,"labels":{"request_id":"r1","queue":"q"}}"#,
            #"{"type":"counter","name":"legacy_jobs_total","value":3,"labels":{"request_id":"r2","queue":"q"}}"#,
            #"{"type":"gauge","name":"debug_internal","value":1}"#,
            #"{"type":"gauge","name":"kept","value":1,"labels":{"env":"mine"}}"#,
        ])
        #expect(eventually { (try? gateway.value(#"jobs_total{env="test",queue="q"}"#)) == 5 })
        let page = try gateway.metrics()
        #expect(!page.contains("legacy_jobs_total"))
        #expect(!page.contains("request_id"))
        #expect(!page.contains("debug_internal"))
        #expect(page.contains(#"kept{env="mine"} 1"#))
        #expect(page.contains(#"reason="relabel_drop"} 1"#))
        #expect(gateway.terminate().status == 0)
    }

    @Test func twoQueuesYAML_fansInFromTwoRedisServers() throws {
        let a = try RedisServer(), b = try RedisServer()
        let gateway = try GatewayProcess(args: ["--config", packageRoot.appendingPathComponent("pipelines/two-queues.yaml").path],
                                         environment: ["REDIS_URL_A": a.url, "REDIS_URL_B": b.url])
        try a.push((0..<100).map { _ in #"{"type":"counter","name":"fanin_total","value":1,"labels":{"from":"a"}}"# }, key: "prom-stream-gateway:jobs")
        try b.push((0..<50).map { _ in #"{"type":"counter","name":"fanin_total","value":1,"labels":{"from":"b"}}"# }, key: "prom-stream-gateway:web")
        try b.push([#"{"type":"counter","name":"fanin_total","value":1,"labels":{"from":"a"}}"#], key: "prom-stream-gateway:web")
        #expect(eventually { (try? gateway.value(#"fanin_total{from="a"}"#)) == 101 && (try? gateway.value(#"fanin_total{from="b"}"#)) == 50 })
        let page = try gateway.metrics()
        #expect(page.contains(#"queueKey="prom-stream-gateway:jobs""#))
        #expect(page.contains(#"queueKey="prom-stream-gateway:web""#))
        let ready = try httpGet(port: gateway.port, path: "/ready")
        #expect(ready.status == 200 && ready.text.contains("\"jobs\"") && ready.text.contains("\"web\""))
        #expect(gateway.terminate().status == 0)
    }
}

@Suite struct CustomStageTests {
    /// The README's "Writing a stage" shows this very file.
    @Test func readmeExample_isTheCompiledStage() throws {
        let file = try String(contentsOf: packageRoot.appendingPathComponent("Sources/Transforms/StaticLabels/StaticLabelsTransform.swift"), encoding: .utf8)
        let readme = try document("docs/writing-a-stage.md")
        #expect(readme.contains("```swift\n" + file + "```"))
    }

    @Test func customStage_runsWhenWiredThroughYAML_andIsListed() throws {
        let redis = try RedisServer()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("custom-\(UUID().uuidString).yaml")
        try """
        sources:
          queue: { type: redis_list, url: "\(redis.url)" }
        transforms:
          decode: { type: json_decode, inputs: [queue] }
          region: { type: static_labels, inputs: [decode], labels: { region: eu-west-1, team: data } }
          sort: { type: sort_labels, inputs: [region] }
        sinks:
          prometheus: { type: prometheus, inputs: [sort], listen: "${GATEWAY_LISTEN}" }
        """.write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let gateway = try GatewayProcess(args: ["--config", config.path])
        try redis.push([#"{"type":"counter","name":"custom_total","value":1,"labels":{"team":"web"}}"#])
        #expect(eventually { (try? gateway.value(#"custom_total{region="eu-west-1",team="web"}"#)) == 1 })
        let (_, stages) = try runCommand(GatewayProcess.binary, ["stages"])
        #expect(stages.contains("static_labels (transform, samples → samples)"))
    }
}

@Suite struct ReadmeReferenceTests {
    @Test func stageReference_isWhatGatewayStagesPrints() throws {
        let readme = try document("docs/stages.md")
        let (status, markdown) = try runCommand(GatewayProcess.binary, ["stages", "--markdown"])
        #expect(status == 0)
        #expect(readme.contains("<!-- stages:begin -->\n" + markdown + "<!-- stages:end -->"), "run `make readme`")
    }

    /// The README's connection-string table names exactly the keys the parser knows.
    @Test func connectionStringTable_listsEveryKeyTheParserKnows() throws {
        let readme = try document("docs/security.md")
        let start = try #require(readme.range(of: "| key | here |\n|---|---|\n"))
        let table = readme[start.upperBound...].prefix { _ in true }.split(separator: "\n").prefix { $0.hasPrefix("|") }
        var documented: Set<String> = []
        for row in table {
            let first = row.dropFirst().prefix { $0 != "|" }
            for part in first.split(separator: ",") {
                let name = part.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "`"))
                documented.insert(name)
            }
        }
        documented.remove("$COMMAND=")
        #expect(documented == Set(RedisURL.connectionStringKeys.map(\.key)))
        for (key, meaning) in RedisURL.connectionStringKeys {
            if let meaning { #expect(readme.contains("| `\(key)` | \(meaning.replacingOccurrences(of: "|", with: "\\|")) |"), "\(key)") }
        }
    }
}
