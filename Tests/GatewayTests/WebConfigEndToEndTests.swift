import Foundation
import Testing
import TestSupport

/// `gateway run --web.config.file` through the real binary: HTTPS with basic auth
/// scraped by a real Prometheus, 401 without credentials, mTLS, certificates
/// re-read without dropping the listener, and `validate` on a broken file.
@Suite struct WebConfigEndToEndTests {
    static let curl = "/usr/bin/curl"

    /// curl's status code (`000` when no HTTP answer), headers and body.
    func curl(_ url: String, _ extra: [String] = []) throws -> (code: String, headers: String, body: String, exit: Int32) {
        let dir = FileManager.default.temporaryDirectory
        let headers = dir.appendingPathComponent("h-\(UUID().uuidString)").path, body = dir.appendingPathComponent("b-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: headers); try? FileManager.default.removeItem(atPath: body) }
        let r = try runCommand(Self.curl, ["-s", "-m", "5", "-o", body, "-D", headers, "-w", "%{http_code}"] + extra + [url])
        return (r.output, (try? String(contentsOfFile: headers, encoding: .utf8)) ?? "", (try? String(contentsOfFile: body, encoding: .utf8)) ?? "", r.status)
    }

    func bcrypt(_ user: String, _ password: String) throws -> String {
        let htpasswd = try #require(RedisServer.which("htpasswd"), "htpasswd not installed (apt-get install apache2-utils)")
        let line = try runCommand(htpasswd, ["-nbBC", "10", user, password]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        return String(line.dropFirst(user.count + 1))
    }

    func write(_ text: String, _ certs: TestCertificates, _ name: String = "web.yml") throws -> String {
        let path = certs.path(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func httpsWithBasicAuth_isScrapedByPrometheus_andUnauthenticatedScrapesGet401() throws {
        let certs = try TestCertificates()
        let web = try write("""
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
            http_server_config:
              headers:
                X-Content-Type-Options: nosniff
            basic_auth_users:
              prometheus: \(try bcrypt("prometheus", "s3cret"))
            """, certs)
        let redis = try RedisServer()
        let gateway = try GatewayProcess(args: ["--web.config.file", web], environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"], https: true)
        try redis.push([#"{"type":"counter","name":"tls_scraped_total","value":7}"#])
        let base = "https://localhost:\(gateway.port)"
        let ca = ["--cacert", certs.caFile]

        let anonymous = try curl(base + "/metrics", ca)
        #expect(anonymous.code == "401", "\(anonymous)")
        #expect(anonymous.headers.lowercased().contains("www-authenticate: basic realm=\"prom-stream-gateway\""), "\(anonymous.headers)")
        #expect(try curl(base + "/metrics", ca + ["-u", "prometheus:wrong"]).code == "401")
        #expect(try curl(base + "/metrics", ca + ["-u", "nobody:s3cret"]).code == "401")
        #expect(eventually { (try? curl(base + "/metrics", ca + ["-u", "prometheus:s3cret"]).body.contains("tls_scraped_total 7")) == true })
        let ok = try curl(base + "/metrics", ca + ["-u", "prometheus:s3cret"])
        #expect(ok.headers.contains("X-Content-Type-Options: nosniff"), "\(ok.headers)")
        // Probes stay open; the certificate is verified against the test CA by curl.
        #expect(try curl(base + "/", ca).code == "200")
        #expect(try curl(base + "/-/ready", ca).code == "200")
        // Plain HTTP to the TLS port is told so, as Go's servers do.
        let plain = try curl("http://127.0.0.1:\(gateway.port)/metrics")
        #expect(plain.code == "400" && plain.body.contains("HTTP request to an HTTPS server"), "\(plain)")
        #expect(try curl(base + "/metrics", []).exit != 0, "curl without the CA refuses the certificate")

        let prometheus = try PrometheusServer(scrapeConfigs: """
              - job_name: gateway
                scheme: https
                basic_auth: { username: prometheus, password: s3cret }
                tls_config: { ca_file: "\(certs.caFile)", server_name: localhost }
                static_configs: [{ targets: ["127.0.0.1:\(gateway.port)"] }]
              - job_name: anonymous
                scheme: https
                tls_config: { ca_file: "\(certs.caFile)", server_name: localhost }
                static_configs: [{ targets: ["127.0.0.1:\(gateway.port)"] }]
            """)
        let query = prometheus.query
        #expect(eventually(timeout: 30) { query(#"up{job="gateway"}"#).contains(#","1"]"#) }, "\(query("up"))")
        #expect(eventually(timeout: 10) { query("tls_scraped_total").contains(#","7"]"#) }, "\(query("tls_scraped_total"))")
        #expect(eventually(timeout: 10) { query(#"up{job="anonymous"}"#).contains(#","0"]"#) }, "a scrape without credentials fails: \(query("up"))")
        let page = try curl(base + "/metrics", ca + ["-u", "prometheus:s3cret"]).body
        let refused = page.split(separator: "\n").first { $0.hasPrefix("prom_stream_gateway_http_unauthorized_requests_total ") }
        #expect(refused.flatMap { Double($0.split(separator: " ").last!) }.map { $0 >= 3 } == true, "\(refused ?? "no such line")")
    }

    @Test func requireAndVerifyClientCert_rejectsAClientWithoutACertificate() throws {
        let certs = try TestCertificates()
        let web = try write("""
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: ca.crt
            """, certs)
        let redis = try RedisServer()
        let gateway = try GatewayProcess(args: ["--web.config.file", web], environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"], https: true)
        let url = "https://localhost:\(gateway.port)/metrics"
        let without = try curl(url, ["--cacert", certs.caFile])
        #expect(without.code == "000" && without.exit != 0, "\(without)")
        // A certificate from another CA is refused too.
        let foreign = try curl(url, ["--cacert", certs.caFile, "--cert", certs.path("other-ca.crt"), "--key", certs.path("other-ca.key")])
        #expect(foreign.code == "000", "\(foreign)")
        let with = try curl(url, ["--cacert", certs.caFile, "--cert", certs.clientCert, "--key", certs.clientKey])
        #expect(with.code == "200" && with.body.contains("prom_stream_gateway_info"), "\(with)")
        #expect(eventually { gateway.log.contains("TLS handshake with a client failed") }, "the refusal is logged")

        // Prometheus with a client certificate scrapes; without one it cannot.
        let prometheus = try PrometheusServer(scrapeConfigs: """
              - job_name: mtls
                scheme: https
                tls_config: { ca_file: "\(certs.caFile)", cert_file: "\(certs.clientCert)", key_file: "\(certs.clientKey)", server_name: localhost }
                static_configs: [{ targets: ["127.0.0.1:\(gateway.port)"] }]
              - job_name: nocert
                scheme: https
                tls_config: { ca_file: "\(certs.caFile)", server_name: localhost }
                static_configs: [{ targets: ["127.0.0.1:\(gateway.port)"] }]
            """)
        #expect(eventually(timeout: 30) { prometheus.query(#"up{job="mtls"}"#).contains(#","1"]"#) }, "\(prometheus.query("up"))")
        #expect(eventually(timeout: 10) { prometheus.query(#"up{job="nocert"}"#).contains(#","0"]"#) }, "\(prometheus.query("up"))")
    }

    func servedSerial(_ port: Int, _ certs: TestCertificates) throws -> String {
        let r = try runCommand("/bin/bash", ["-c", "openssl s_client -connect 127.0.0.1:\(port) -servername localhost -CAfile \(certs.caFile) </dev/null 2>/dev/null | openssl x509 -noout -serial"])
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func certificateFiles_areReReadWithoutDroppingTheListener_andABrokenOneIsRefused() throws {
        let certs = try TestCertificates()
        let web = try write("tls_server_config: { cert_file: server.crt, key_file: server.key }\n", certs)
        let redis = try RedisServer()
        let gateway = try GatewayProcess(args: ["--web.config.file", web], environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"], https: true)
        let first = try certs.serial(of: certs.serverCert)
        #expect(try servedSerial(gateway.port, certs) == first)

        // Rotation as cert-manager does it: new files renamed into place.
        try certs.issueServer("renewed")
        let renewed = try certs.serial(of: certs.path("renewed.crt"))
        #expect(renewed != first)
        rename(certs.path("renewed.key"), certs.serverKey)
        rename(certs.path("renewed.crt"), certs.serverCert)
        #expect(eventually(timeout: 5) { (try? servedSerial(gateway.port, certs)) == renewed }, "the renewed certificate is served")

        // A broken replacement is logged and the renewed one stays in use.
        try "not a certificate".write(toFile: certs.serverCert + ".tmp", atomically: false, encoding: .utf8)
        rename(certs.serverCert + ".tmp", certs.serverCert)
        #expect(eventually(timeout: 5) { (try? servedSerial(gateway.port, certs)) == renewed && gateway.log.contains("cannot reload the TLS certificate") })

        // SIGHUP re-reads at once (and does not stop the gateway).
        try certs.issueServer("third")
        rename(certs.path("third.key"), certs.serverKey)
        rename(certs.path("third.crt"), certs.serverCert)
        kill(gateway.process.processIdentifier, SIGHUP)
        let third = try certs.serial(of: certs.serverCert)
        #expect(eventually(timeout: 5) { (try? servedSerial(gateway.port, certs)) == third })
        #expect(gateway.log.contains("received SIGHUP"))
        #expect(gateway.process.isRunning)
        #expect(gateway.terminate().status == 0)
    }

    @Test func commandLineTools_reachATLSRedisWithTheDefaultPipelinesVariables() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs, requireClientCertificates: true)
        let env = ["Redis__TlsCaFile": certs.caFile, "Redis__TlsCertFile": certs.clientCert, "Redis__TlsKeyFile": certs.clientKey, "PATH": "/usr/bin:/bin"]
        let r = try runCommand(GatewayProcess.binary, ["loadgen", "--redis", "rediss://localhost:\(redis.port)", "--count", "100", "--quiet"], environment: env)
        #expect(r.status == 0, "\(r.output)")
        #expect(try redis.llen() == 100)
        let list = try runCommand(GatewayProcess.binary, ["processing", "list", "--redis", "localhost:\(redis.port),ssl=true"], environment: env)
        #expect(list.status == 0, "\(list.output)")
    }

    @Test func validate_namesEveryMistakeOfTheWebConfigWithItsLine() throws {
        let certs = try TestCertificates()
        let web = try write("""
            tls_server_config:
              cert_file: server.crt
              key_file: missing.key
              client_auth_type: Sometimes
            basic_auth_users:
              alice: plain-text
            http_server_confg: {}
            """, certs)
        let r = try runCommand(GatewayProcess.binary, ["validate", "--web.config.file", web])
        #expect(r.status == 1, "\(r.output)")
        let key = "sinks.prometheus.web_config_file (from environment variable `GATEWAY_WEB_CONFIG_FILE`): "
        #expect(r.output.contains(key + "\(web):4: tls_server_config.client_auth_type: `Sometimes` is not one of"), "\(r.output)")
        #expect(r.output.contains("\(web):1: tls_server_config: cannot read \(certs.path("missing.key")): No such file or directory"), "\(r.output)")
        #expect(r.output.contains("\(web):6: basic_auth_users.alice: not a bcrypt hash"), "\(r.output)")
        #expect(r.output.contains("\(web):7: unknown key `http_server_confg` in the web config; did you mean `http_server_config`?"), "\(r.output)")

        let good = try write("basic_auth_users: { alice: \(try bcrypt("alice", "x")) }\n", certs, "good.yml")
        let ok = try runCommand(GatewayProcess.binary, ["validate", "--web.config.file", good])
        #expect(ok.status == 0, "\(ok.output)")
        // A --config that does not read ${GATEWAY_WEB_CONFIG_FILE} would silently serve without it.
        let pipeline = certs.path("p.yaml")
        try """
            sources: { q: { type: redis_list } }
            transforms: { d: { type: json_decode, inputs: [q] } }
            sinks: { p: { type: prometheus, inputs: [d] } }
            """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let ignored = try runCommand(GatewayProcess.binary, ["validate", "--config", pipeline, "--web.config.file", good])
        #expect(ignored.status == 1 && ignored.output.contains("--web.config.file \(good) has no effect"), "\(ignored.output)")
    }
}
