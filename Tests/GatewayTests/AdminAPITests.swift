import Foundation
import Testing
import TestSupport

/// `--web.enable-admin-api` through the binary: series deleted by selector
/// (regexes, several `match[]`, no match, POST with a form body), mistakes
/// answered 400, 404 when off, and basic auth guarding it.
@Suite struct AdminAPITests {
    static func percent(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }

    func delete(_ gateway: GatewayProcess, _ selectors: [String], method: String = "DELETE") throws -> HTTPResult {
        let query = selectors.map { "match%5B%5D=\(Self.percent($0))" }.joined(separator: "&")
        if method == "POST" { return try httpGet(port: gateway.port, path: "/api/v1/series", method: "POST", body: query) }
        return try httpGet(port: gateway.port, path: "/api/v1/series?\(query)", method: method)
    }

    func lines(_ gateway: GatewayProcess, _ prefix: String) throws -> [String] {
        try gateway.metrics().split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }

    @Test func deleteBySelector_removesExactlyTheSelectedSeries() throws {
        let redis = try RedisServer()
        let gateway = try GatewayProcess(args: ["--web.enable-admin-api"], environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        var pushes: [String] = []
        for q in ["mail", "sms", "push"] { for r in ["eu", "us"] {
            pushes.append(#"{"type":"counter","name":"jobs_total","value":1,"labels":{"queue":"\#(q)","region":"\#(r)"}}"#)
        } }
        pushes += [#"{"type":"gauge","name":"temp","value":3,"labels":{"room":"a \"b\""}}"#,
                   #"{"type":"histogram","name":"lat","value":0.2,"buckets":[0.1,1],"labels":{"queue":"mail"}}"#]
        try redis.push(pushes)
        #expect(eventually { (try? lines(gateway, "jobs_total{").count) == 6 && (try? lines(gateway, "lat_count").count) == 1 })

        let one = try delete(gateway, [#"jobs_total{queue="mail",region="eu"}"#])
        #expect(one.status == 200 && one.text.contains(#""deleted":1"#) && one.text.contains(#"jobs_total{queue=\"mail\",region=\"eu\"}"#), "\(one.text)")
        let regex = try delete(gateway, [#"jobs_total{queue=~"s.*",region!="us"}"#])
        #expect(regex.text.contains(#""deleted":1"#), "\(regex.text)")   // sms/eu
        let several = try delete(gateway, [#"{__name__="lat"}"#, #"temp{room="a \"b\""}"#], method: "POST")
        #expect(several.status == 200 && several.text.contains(#""deleted":2"#), "\(several.text)")
        let none = try delete(gateway, [#"jobs_total{queue="nope"}"#])
        #expect(none.status == 200 && none.text.contains(#""deleted":0,"series":[]"#), "\(none.text)")

        let left = try lines(gateway, "jobs_total{")
        #expect(left.count == 4 && !left.contains { $0.contains(#"queue="mail",region="eu""#) || $0.contains(#"queue="sms",region="eu""#) }, "\(left)")
        #expect(try lines(gateway, "lat_").isEmpty && lines(gateway, "temp{").isEmpty)
        // A deleted series that is pushed again starts from zero.
        try redis.push([#"{"type":"counter","name":"jobs_total","value":5,"labels":{"queue":"mail","region":"eu"}}"#])
        #expect(eventually { (try? gateway.value(#"jobs_total{queue="mail",region="eu"}"#)) == 5 })

        let bad = try delete(gateway, [#"{a=~".*"}"#])
        #expect(bad.status == 400 && bad.text.contains(#""errorType":"bad_data""#) && bad.text.contains("does not match the empty string"), "\(bad.text)")
        #expect(try httpGet(port: gateway.port, path: "/api/v1/series", method: "DELETE").status == 400)
        let get = try httpGet(port: gateway.port, path: "/api/v1/series?match%5B%5D=x")
        #expect(get.status == 405 && get.headers["allow"] == "DELETE, POST")
        #expect(gateway.log.contains("deleted series through the admin API"))
    }

    @Test func adminAPI_isAbsentUnlessEnabled_andGuardedByBasicAuth() throws {
        let redis = try RedisServer()
        let off = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        #expect(try httpGet(port: off.port, path: "/api/v1/series?match%5B%5D=x", method: "DELETE").status == 404)
        #expect(off.terminate().status == 0)

        let htpasswd = try #require(RedisServer.which("htpasswd"), "htpasswd not installed (apt-get install apache2-utils)")
        let hash = try runCommand(htpasswd, ["-nbBC", "10", "admin", "pw"]).output.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("admin:".count)
        let web = FileManager.default.temporaryDirectory.appendingPathComponent("web-\(UUID().uuidString).yml")
        try "basic_auth_users: { admin: \(hash) }\n".write(to: web, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: web) }
        let on = try GatewayProcess(args: ["--web.enable-admin-api", "--web.config.file", web.path], environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        #expect(try httpGet(port: on.port, path: "/api/v1/series?match%5B%5D=x", method: "DELETE").status == 401)
        let auth = "Basic " + Data("admin:pw".utf8).base64EncodedString()
        #expect(try httpGet(port: on.port, path: "/api/v1/series?match%5B%5D=x", method: "DELETE", headers: ["Authorization": auth]).status == 200)
    }

    /// The README's curl line, run as written (only the port changed).
    @Test func readmeCurlExample_deletesWhatItSays() throws {
        let readme = try document("docs/operating.md")
        let section = try #require(readme.range(of: "## Admin API: deleting series"))
        let block = try #require(readme[section.upperBound...].range(of: "```sh\n"))
        let end = try #require(readme[block.upperBound...].range(of: "```"))
        let redis = try RedisServer()
        let gateway = try GatewayProcess(args: ["--web.enable-admin-api"], environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        try redis.push([#"{"type":"counter","name":"jobs_total","value":1,"labels":{"queue":"tmp-1"}}"#,
                        #"{"type":"counter","name":"jobs_total","value":1,"labels":{"queue":"mail"}}"#])
        #expect(eventually { (try? lines(gateway, "jobs_total{").count) == 2 })
        let command = String(readme[block.upperBound..<end.lowerBound]).replacingOccurrences(of: "localhost:9091", with: "127.0.0.1:\(gateway.port)")
        let r = try runCommand("/bin/sh", ["-c", command])
        #expect(r.status == 0 && r.output.contains(#""deleted":1"#), "\(r.output)")
        #expect(try lines(gateway, "jobs_total{") == [#"jobs_total{queue="mail"} 1"#])
    }
}
