import Foundation
import Logging
import Pipeline
import Redis
import Sources
import Testing
import TestSupport

/// TLS to a real `redis-server --tls-port … --port 0`: draining through both
/// connection-string forms, mTLS, and every failure a user can act on — each a
/// clear reason in `/ready`'s detail, then recovery once the cause is fixed
/// (without restarting the source: files are re-read on every connect).
@Suite struct RedisTLSTests {
    static func tlsOptions(ca: String? = nil, cert: String? = nil, key: String? = nil) -> String {
        var parts: [String] = []
        if let ca { parts.append("ca_file: \"\(ca)\"") }
        if let cert { parts.append("cert_file: \"\(cert)\"") }
        if let key { parts.append("key_file: \"\(key)\"") }
        return ", max_backoff: 200ms, tls: { \(parts.joined(separator: ", ")) }"
    }

    func detail(_ runtime: PipelineRuntime) -> String { runtime.health.snapshot.first?.detail ?? "" }

    func drains(_ redis: RedisServer, _ runtime: PipelineRuntime, key: String, count: Int = 300) throws -> Bool {
        try redis.push((0..<count).map { "e\($0)" }, key: "q")
        return eventually { TestRegistry.shared.values(key).count >= count } && runtime.health.allReady
    }

    @Test func rediss_andDotNetSslForm_drainThroughTLS() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs)
        for url in ["rediss://127.0.0.1:\(redis.port)/0", "localhost:\(redis.port),ssl=true,sslHost=localhost", "127.0.0.1:\(redis.port),SSL=True"] {
            let key = uniqueKey()
            let runtime = try startPipeline(url: url, key: key, options: Self.tlsOptions(ca: certs.caFile))
            #expect(try drains(redis, runtime, key: key), "\(url): \(detail(runtime))")
            #expect(detail(runtime).hasPrefix("connected to rediss://"), "\(detail(runtime))")
            runtime.stop(); runtime.wait()
            #expect(TestRegistry.shared.values(key).map(\.0) == (0..<300).map { "e\($0)" })
        }
    }

    @Test func requiredClientCertificate_isNamedWhenMissing_andDrainsWithIt() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs, requireClientCertificates: true)
        let without = try startPipeline(url: redis.url, key: uniqueKey(), options: Self.tlsOptions(ca: certs.caFile))
        #expect(eventually { detail(without).contains("requires a client certificate") }, "\(detail(without))")
        #expect(!without.health.allReady)
        without.stop(); without.wait()

        let key = uniqueKey()
        let with = try startPipeline(url: redis.url, key: key, options: Self.tlsOptions(ca: certs.caFile, cert: certs.clientCert, key: certs.clientKey))
        #expect(try drains(redis, with, key: key), "\(detail(with))")
        with.stop(); with.wait()
    }

    @Test func wrongCA_saysCertificateVerifyFailed_andRecoversWhenTheCAFileIsReplaced() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs)
        let ca = certs.path("rotating-ca.crt")
        try FileManager.default.copyItem(atPath: certs.otherCAFile, toPath: ca)
        let key = uniqueKey()
        let runtime = try startPipeline(url: redis.url, key: key, options: Self.tlsOptions(ca: ca))
        #expect(eventually { detail(runtime).contains("certificate verify failed") }, "\(detail(runtime))")
        #expect(!runtime.health.allReady)
        try FileManager.default.removeItem(atPath: ca)
        try FileManager.default.copyItem(atPath: certs.caFile, toPath: ca)
        #expect(try drains(redis, runtime, key: key), "\(detail(runtime))")
        runtime.stop(); runtime.wait()
    }

    @Test func certificateForAnotherHost_isAHostnameMismatch_untilTheServerPresentsTheRightOne() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs, serving: (certs.wrongHostCert, certs.wrongHostKey))
        let key = uniqueKey()
        let runtime = try startPipeline(url: "localhost:\(redis.port),ssl=true", key: key, options: Self.tlsOptions(ca: certs.caFile))
        #expect(eventually { detail(runtime).contains("hostname mismatch") && detail(runtime).contains("not for `localhost`") }, "\(detail(runtime))")
        try redis.client().command("CONFIG", "SET", "tls-cert-file", certs.serverCert, "tls-key-file", certs.serverKey)
        #expect(try drains(redis, runtime, key: key), "\(detail(runtime))")
        runtime.stop(); runtime.wait()
    }

    @Test func expiredServerCertificate_isNamedAsExpired_untilRenewed() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs, serving: (certs.expiredCert, certs.expiredKey))
        let key = uniqueKey()
        let runtime = try startPipeline(url: redis.url, key: key, options: Self.tlsOptions(ca: certs.caFile))
        #expect(eventually { detail(runtime).contains("certificate has expired") }, "\(detail(runtime))")
        try redis.client().command("CONFIG", "SET", "tls-cert-file", certs.serverCert, "tls-key-file", certs.serverKey)
        #expect(try drains(redis, runtime, key: key), "\(detail(runtime))")
        runtime.stop(); runtime.wait()
    }

    @Test func plainToATLSPort_andTLSToAPlainPort_sayWhichSideSpeaksTLS() throws {
        let certs = try TestCertificates()
        let tlsRedis = try RedisServer(tls: certs)
        let plain = try startPipeline(url: "redis://127.0.0.1:\(tlsRedis.port)/0", key: uniqueKey(), options: ", max_backoff: 200ms")
        #expect(eventually { detail(plain).contains("is it a TLS port") || detail(plain).contains("a TLS port?") }, "\(detail(plain))")
        #expect(!plain.health.allReady)
        plain.stop(); plain.wait()

        let plainRedis = try RedisServer()
        let tls = try startPipeline(url: "rediss://127.0.0.1:\(plainRedis.port)/0", key: uniqueKey(),
                                    options: Self.tlsOptions(ca: certs.caFile) + ", connect_timeout: 300ms")
        #expect(eventually { detail(tls).contains("TLS handshake failed") && detail(tls).contains("TLS port") }, "\(detail(tls))")
        #expect(!tls.health.allReady)
        tls.stop(); tls.wait()
    }

    @Test func wrongPasswordOverTLS_isAnAuthenticationFailure_untilThePasswordMatches() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs, args: ["--requirepass", "right"])
        let key = uniqueKey()
        let runtime = try startPipeline(url: "localhost:\(redis.port),ssl=true,password=wrong", key: key, options: Self.tlsOptions(ca: certs.caFile))
        #expect(eventually { detail(runtime).contains("authentication failed") }, "\(detail(runtime))")
        let admin = try redis.client()
        try admin.command("AUTH", "right")
        try admin.command("CONFIG", "SET", "requirepass", "wrong")
        #expect(eventually { runtime.health.allReady }, "\(detail(runtime))")
        runtime.stop(); runtime.wait()
    }

    @Test func insecureSkipVerify_connectsToAnyCertificate_andIsLoggedAsAWarning_asAreIgnoredKeysAtInfo() throws {
        let certs = try TestCertificates()
        let redis = try RedisServer(tls: certs, serving: (certs.wrongHostCert, certs.wrongHostKey))
        let key = uniqueKey()
        let logs = CapturedLogs()
        let spec = try PipelineSpec.load(yaml: """
            sources:
              queue: { type: redis_list, url: "127.0.0.1:\(redis.port),ssl=true,abortConnect=false,allowAdmin=true", key: q, tls: { insecure_skip_verify: true } }
            sinks:
              out: { type: test_collect_payloads, inputs: [queue], key: \(key) }
            """, environment: [:], registry: registry)
        let runtime = try PipelineRuntime(spec: spec, logger: logs.logger)
        try runtime.start()
        #expect(try drains(redis, runtime, key: key), "\(detail(runtime))")
        runtime.stop(); runtime.wait()
        #expect(logs.messages.contains { $0.level == .warning && $0.text.contains("insecure_skip_verify is on") })
        #expect(logs.messages.filter { $0.level == .info && $0.text.contains("no meaning for this gateway") }.count == 1)
        #expect(logs.messages.first { $0.text.contains("no meaning") }?.metadata["keys"]?.description == "abortConnect,allowAdmin")
    }

    @Test func tlsSettingsWithoutATLSURL_isAConfigError() throws {
        #expect {
            _ = try PipelineSpec.load(yaml: """
                sources:
                  queue: { type: redis_list, url: "localhost:6379", tls: { ca_file: /etc/hostname } }
                sinks:
                  out: { type: test_collect_payloads, inputs: [queue], key: k }
                """, environment: [:], registry: registry)
        } throws: { "\($0)".contains("sources.queue.tls: TLS settings are given but the url does not ask for TLS") }
        #expect {
            _ = try PipelineSpec.load(yaml: """
                sources:
                  queue: { type: redis_list, url: "rediss://h", tls: { ca_file: /nonexistent/ca.pem } }
                sinks:
                  out: { type: test_collect_payloads, inputs: [queue], key: k }
                """, environment: [:], registry: registry)
        } throws: { "\($0)".contains("sources.queue.tls.ca_file: cannot read `/nonexistent/ca.pem`: No such file or directory") }
    }
}
