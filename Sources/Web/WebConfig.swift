import Pipeline
import TLS
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// The exporter-toolkit web config file (`--web.config.file`), as Prometheus's
/// own exporters read it: `tls_server_config`, `http_server_config.headers`,
/// `basic_auth_users` (bcrypt). Every key is checked; one this gateway does not
/// implement is an error naming it and its line, never silently ignored — a
/// security setting that does nothing is worse than none.
public struct WebConfig: Sendable, Equatable {
    public var tls: TLSServerSettings?
    /// Extra response headers (the ones exporter-toolkit allows).
    public var headers: [(String, String)] = []
    /// User name → bcrypt hash.
    public var users: [String: String] = [:]

    public static func == (a: Self, b: Self) -> Bool {
        a.tls == b.tls && a.users == b.users && a.headers.map { "\($0.0)\n\($0.1)" } == b.headers.map { "\($0.0)\n\($0.1)" }
    }

    /// One mistake, with its line in the web config file.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var line: Int?
        public var message: String
        public var description: String { (line.map { "line \($0): " } ?? "") + message }
    }

    public struct Problems: Error, Sendable, Equatable {
        public var list: [Problem]
    }

    /// The response headers exporter-toolkit lets a web config set.
    public static let allowedHeaders = ["Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "X-XSS-Protection",
            "Content-Security-Policy"]

    /// Go's cipher-suite names (TLS 1.0–1.2) and OpenSSL's for the same suite.
    public static let cipherSuites: [String: String] = [
        "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    ]
    static let tls13Suites: Set = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
    /// Go's curve names and OpenSSL's groups.
    public static let curves = ["CurveP256": "P-256", "CurveP384": "P-384", "CurveP521": "P-521", "X25519": "X25519"]

    /// Keys exporter-toolkit knows that this gateway does not implement, and what to use instead.
    static let unsupported = [
        "cert": "inline certificates are not supported; use cert_file",
        "key": "inline keys are not supported; use key_file",
        "client_ca": "an inline CA is not supported; use client_ca_file",
        "client_allowed_sans": "not supported; issue client certificates from a CA of their own instead",
    ]

    /// Reads and checks the file; relative paths in it are relative to its folder,
    /// as exporter-toolkit resolves them.
    public static func load(path: String) -> Result<WebConfig, Problems> {
        guard let f = fopen(path, "rb") else {
            return .failure(Problems(list: [Problem(line: nil, message: "cannot read \(path): \(String(cString: strerror(errno)))")]))
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while case let n = fread(&chunk, 1, chunk.count, f), n > 0 { bytes += chunk[0..<n] }
        fclose(f)
        let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        return parse(String(decoding: bytes, as: UTF8.self), folder: folder.isEmpty ? "/" : folder)
    }

    public static func parse(_ text: String, folder: String) -> Result<WebConfig, Problems> {
        var problems: [Problem] = []
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let error as YamlError {
            let e = PipelineSpec.describe(error, text: text)
            return .failure(Problems(list: [Problem(line: e.line, message: (e.key.map { "`\($0)`: " } ?? "") + e.message)]))
        } catch {
            return .failure(Problems(list: [Problem(line: nil, message: "invalid YAML: \(error)")]))
        }
        var config = WebConfig()
        guard let root else { return .success(config) }   // an empty file: plain HTTP, no auth
        guard let top = root.mapping else { return .failure(Problems(list: [Problem(line: root.mark?.line,
                message: "expected a mapping at the top")])) }
        func entries(_ m: Node.Mapping, in section: String, known: [String]) -> [(String, Node, Int?)] {
            var out: [(String, Node, Int?)] = []
            for (k, v) in m {
                let line = k.mark?.line
                guard let key = k.scalar?.string else { problems.append(Problem(line: line, message: "expected a string key in \(section)"));
                        continue }
                if let why = unsupported[key], section == "tls_server_config" {
                    problems.append(Problem(line: line, message: "tls_server_config.\(key): \(why)")); continue
                }
                guard known.contains(key) else {
                    let hint = OptionReader.closest(to: key, in: known).map { "; did you mean `\($0)`?" } ?? ""
                    problems.append(Problem(line: line, message: "unknown key `\(key)` in \(section)\(hint)"))
                    continue
                }
                out.append((key, v, line))
            }
            return out
        }
        func string(_ n: Node, _ key: String, _ line: Int?) -> String? {
            guard let s = n.scalar?.string else { problems.append(Problem(line: line, message: "\(key): expected a string")); return nil }
            return s
        }
        func stringList(_ n: Node, _ key: String, _ line: Int?) -> [String] {
            guard let seq = n.sequence else { problems.append(Problem(line: line, message: "\(key): expected a list of strings")); return [] }
            return seq.compactMap { string($0, key, $0.mark?.line ?? line) }
        }
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : "\(folder)/\(p)" }

        for (key, value, line) in entries(top, in: "the web config", known: ["tls_server_config", "http_server_config", "basic_auth_users"]) {
            if value.scalar?.string == "" || value.scalar?.string == "null" || value.scalar?.string == "~" { continue }
            guard let m = value.mapping else { problems.append(Problem(line: line, message: "\(key): expected a mapping")); continue }
            switch key {
            case "tls_server_config":
                var certFile: String?, keyFile: String?
                var s = TLSServerSettings(certFile: "", keyFile: "")
                var authGiven = false
                for (k, v, l) in entries(m, in: key, known: ["cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
                        "max_version", "cipher_suites", "curve_preferences", "prefer_server_cipher_suites"]) {
                    let name = "tls_server_config.\(k)"
                    switch k {
                    case "cert_file": certFile = string(v, name, l).map(resolve)
                    case "key_file": keyFile = string(v, name, l).map(resolve)
                    case "client_ca_file": s.clientCAFile = string(v, name, l).map(resolve)
                    case "client_auth_type":
                        guard let t = string(v, name, l) else { continue }
                        guard let a = ClientAuthType(rawValue: t) else {
                            problems.append(Problem(line: l,
                                    message: "\(name): `\(t)` is not one of "
                                        + "\(ClientAuthType.allCases.map(\.rawValue).joined(separator: ", "))")); continue
                        }
                        s.clientAuth = a; authGiven = true
                    case "min_version", "max_version":
                        guard let t = string(v, name, l) else { continue }
                        guard let version = TLSVersion(spelling: t) else {
                            problems.append(Problem(line: l, message: "\(name): `\(t)` is not one of TLS10, TLS11, TLS12, TLS13")); continue
                        }
                        if k == "min_version" { s.minVersion = version } else { s.maxVersion = version }
                    case "cipher_suites":
                        for suite in stringList(v, name, l) {
                            if let o = cipherSuites[suite] { s.ciphers.append(o) }
                            else if tls13Suites.contains(suite) { problems.append(Problem(line: l,
                                    message: "\(name): \(suite) is a TLS 1.3 suite, which is not configurable (as in Go)")) }
                            else { problems.append(Problem(line: l, message: "\(name): unknown cipher suite `\(suite)`")) }
                        }
                    case "curve_preferences":
                        for curve in stringList(v, name, l) {
                            if let g = curves[curve] { s.groups.append(g) } else {
                                problems.append(Problem(line: l,
                                        message: "\(name): `\(curve)` is not one of \(curves.keys.sorted().joined(separator: ", "))"))
                            }
                        }
                    case "prefer_server_cipher_suites":
                        guard let b = v.scalar.flatMap({ Bool.construct(from: $0) }) else { problems.append(Problem(line: l,
                                message: "\(name): expected true or false")); continue }
                        s.preferServerCiphers = b
                    default: break
                    }
                }
                // exporter-toolkit: a client CA without a type means verify and require.
                if s.clientCAFile != nil && !authGiven { s.clientAuth = .requireAndVerifyClientCert }
                if s.clientAuth.verifies && s.clientCAFile == nil {
                    problems.append(Problem(line: line, message: "tls_server_config.client_auth_type \(s.clientAuth.rawValue) needs client_ca_file"))
                }
                if let max = s.maxVersion, max < s.minVersion {
                    problems.append(Problem(line: line, message: "tls_server_config.max_version is below min_version"))
                }
                switch (certFile, keyFile) {
                case (nil, nil):
                    if !m.isEmpty { problems.append(Problem(line: line, message: "tls_server_config needs cert_file and key_file")) }
                case (nil, _): problems.append(Problem(line: line, message: "tls_server_config.cert_file is missing (key_file is given)"))
                case (_, nil): problems.append(Problem(line: line, message: "tls_server_config.key_file is missing (cert_file is given)"))
                case (let c?, let k?):
                    s.certFile = c; s.keyFile = k
                    for file in s.files where access(file, R_OK) != 0 {
                        problems.append(Problem(line: line, message: "tls_server_config: cannot read \(file): \(String(cString: strerror(errno)))"))
                    }
                    config.tls = s
                }
            case "http_server_config":
                for (k, v, l) in entries(m, in: key, known: ["headers", "http2"]) {
                    switch k {
                    case "http2":
                        // HTTP/1.1 is served either way; a Prometheus that offers h2 falls back.
                        if v.scalar.flatMap({ Bool.construct(from: $0) }) == nil { problems.append(Problem(line: l,
                                message: "http_server_config.http2: expected true or false")) }
                    case "headers":
                        guard let hm = v.mapping else { problems.append(Problem(line: l,
                                message: "http_server_config.headers: expected a mapping")); continue }
                        for (hk, hv) in hm {
                            guard let name = hk.scalar?.string, let value = hv.scalar?.string else {
                                problems.append(Problem(line: hk.mark?.line,
                                        message: "http_server_config.headers: expected string names and values")); continue
                            }
                            guard let canonical = allowedHeaders.first(where: { $0.lowercased() == name.lowercased() }) else {
                                problems.append(Problem(line: hk.mark?.line,
                                        message: "http_server_config.headers: `\(name)` may not be set (allowed: "
                                            + "\(allowedHeaders.joined(separator: ", ")))")); continue
                            }
                            guard !value.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                                problems.append(Problem(line: hv.mark?.line,
                                        message: "http_server_config.headers.\(name): a value must be one line")); continue
                            }
                            config.headers.append((canonical, value))
                        }
                    default: break
                    }
                }
            case "basic_auth_users":
                for (hk, hv) in m {
                    let l = hk.mark?.line
                    guard let user = hk.scalar?.string, let hash = hv.scalar?.string else {
                        problems.append(Problem(line: l, message: "basic_auth_users: expected user: bcrypt-hash pairs")); continue
                    }
                    guard BasicAuth.isBcrypt(hash) else {
                        problems.append(Problem(line: l,
                                message: "basic_auth_users.\(user): not a bcrypt hash ($2y$, $2b$ or $2a$, 60 characters, as `htpasswd "
                                    + "-nBC 10 \(user)` prints)")); continue
                    }
                    config.users[user] = hash
                }
            default: break
            }
        }
        return problems.isEmpty ? .success(config) : .failure(Problems(list: problems))
    }
}

extension WebConfig {
    /// Reads a stage's `web_config_file` option (the same on every stage that listens):
    /// the path, and the file parsed, its problems reported against the key.
    package static func option(_ o: OptionReader, doc: String) -> (path: String?, config: WebConfig?) {
        let path = o.string("web_config_file", default: "", doc: doc)
        guard !path.isEmpty else { return (nil, nil) }
        switch load(path: path) {
        case .success(let c): return (path, c)
        case .failure(let problems):
            for p in problems.list { o.fail("web_config_file", "\(path)\(p.line.map { ":\($0)" } ?? ""): \(p.message)") }
            return (path, nil)
        }
    }

    /// What the file held, for a stage's `externalFingerprint`: a reload that changes
    /// only the file rebuilds the stage.
    package var fingerprint: String {
        let users = users.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
        return "\(String(describing: tls))\u{0}\(users)\u{0}\(headers.map { "\($0.0):\($0.1)" })"
    }
}
