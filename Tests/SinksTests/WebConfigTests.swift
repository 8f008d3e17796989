import Foundation
import Testing
import TestSupport
import TLS
@testable import Aggregation
@testable import Sinks
@testable import Web

/// The exporter-toolkit web config: what it accepts, and every mistake named with
/// its line.
@Suite struct WebConfigTests {
    static let hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

    func problems(_ yaml: String) -> [String] {
        switch WebConfig.parse(yaml, folder: "/etc/web") {
        case .success: return []
        case .failure(let p): return p.list.map(\.description)
        }
    }

    @Test func fullConfig_isRead_withPathsRelativeToTheFile() throws {
        let certs = try TestCertificates()
        let yaml = """
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
              client_ca_file: ca.crt
              min_version: TLS13
              cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
              curve_preferences: [X25519, CurveP256]
              prefer_server_cipher_suites: true
            http_server_config:
              http2: false
              headers:
                x-frame-options: deny
                Strict-Transport-Security: max-age=31536000
            basic_auth_users:
              alice: \(Self.hash)
            """
        let c = try WebConfig.parse(yaml, folder: certs.dir.path).get()
        let tls = try #require(c.tls)
        #expect(tls.certFile == certs.serverCert && tls.keyFile == certs.serverKey && tls.clientCAFile == certs.caFile)
        #expect(tls.clientAuth == .requireAndVerifyClientCert, "a client CA without a type verifies and requires, as exporter-toolkit")
        #expect(tls.minVersion == .tls13 && tls.ciphers == ["ECDHE-ECDSA-AES128-GCM-SHA256"] && tls.groups == ["X25519", "P-256"] && tls.preferServerCiphers)
        #expect(c.headers.map(\.0) == ["X-Frame-Options", "Strict-Transport-Security"])
        #expect(c.users == ["alice": Self.hash])
        _ = try TLSServerContext(tls)   // OpenSSL accepts it
    }

    @Test func emptyFile_meansPlainHTTPWithoutAuth() throws {
        #expect(try WebConfig.parse("", folder: "/").get() == WebConfig())
        #expect(try WebConfig.parse("# nothing\n", folder: "/").get() == WebConfig())
    }

    @Test(arguments: [
        ("tls_server_confg: {}\n", "line 1: unknown key `tls_server_confg` in the web config; did you mean `tls_server_config`?"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cert: x\n", "line 4: tls_server_config.cert: inline certificates are not supported; use cert_file"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans: [x]\n", "line 4: tls_server_config.client_allowed_sans: not supported"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Always\n", "line 4: tls_server_config.client_auth_type: `Always` is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n", "line 1: tls_server_config.client_auth_type RequireAndVerifyClientCert needs client_ca_file"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: SSL3\n", "line 4: tls_server_config.min_version: `SSL3` is not one of TLS10, TLS11, TLS12, TLS13"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "line 4: tls_server_config.cipher_suites: TLS_AES_128_GCM_SHA256 is a TLS 1.3 suite"),
        ("tls_server_config:\n  cert_file: a\n", "line 1: tls_server_config.key_file is missing (cert_file is given)"),
        ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n", "line 1: tls_server_config: cannot read /nonexistent.crt: No such file or directory"),
        ("http_server_config:\n  headers:\n    Set-Cookie: a=b\n", "line 3: http_server_config.headers: `Set-Cookie` may not be set"),
        ("http_server_config:\n  htp2: true\n", "line 2: unknown key `htp2` in http_server_config; did you mean `http2`?"),
        ("basic_auth_users:\n  bob: secret\n", "line 2: basic_auth_users.bob: not a bcrypt hash"),
        ("basic_auth_users: [bob]\n", "line 1: basic_auth_users: expected a mapping"),
        ("tls_server_config: {}\ntls_server_config: {}\n", "line 2: `tls_server_config`: duplicate key (first at line 1)"),
    ])
    func mistake_isNamedWithItsLine(_ yaml: String, _ expected: String) {
        let found = problems(yaml)
        #expect(found.contains { $0.hasPrefix(expected) }, "\(found)")
    }

    @Test func basicAuth_acceptsHtpasswdAndCryptHashes_andNothingElse() throws {
        let htpasswd = try #require(RedisServer.which("htpasswd"), "htpasswd not installed (apt-get install apache2-utils)")
        let y = try runCommand(htpasswd, ["-nbBC", "10", "alice", "wonder land"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let b = try runCommand("/usr/bin/python3", ["-W", "ignore", "-c", "import crypt; print(crypt.crypt('pässword', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))"])
            .output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(y.hasPrefix("alice:$2y$10$") && b.hasPrefix("$2b$10$"), "\(y) \(b)")
        let auth = BasicAuth(users: ["alice": String(y.dropFirst("alice:".count)), "bob": b])
        func basic(_ s: String) -> String { "Basic " + Data(s.utf8).base64EncodedString() }
        #expect(auth.allows(authorization: basic("alice:wonder land")))
        #expect(auth.allows(authorization: basic("alice:wonder land")), "again, from the cache")
        #expect(!auth.allows(authorization: basic("alice:wonder")), "a wrong password after a cached success")
        #expect(auth.allows(authorization: basic("bob:pässword")))
        #expect(auth.allows(authorization: "basic " + Data("bob:pässword".utf8).base64EncodedString()), "the scheme is case-insensitive")
        for bad in [nil, "", "Basic", "Basic !!!", "Bearer abc", basic("alice"), basic("carol:wonder land"), basic(":"), basic("alice:wonder land\u{0}x")] {
            #expect(!auth.allows(authorization: bad), "\(bad ?? "nil")")
        }
        #expect(BasicAuth.bcryptMatches(Array("x".utf8), Self.hash) == false, "the decoy hash is valid and matches nothing likely")
    }
}
