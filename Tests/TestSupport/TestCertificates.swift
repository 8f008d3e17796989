import Foundation

/// Certificates made for one test by the `openssl` CLI in a temporary folder: a
/// CA, a server certificate for `localhost` and `127.0.0.1`, a client
/// certificate, an expired server certificate, one for another host, and a
/// second CA that signed none of them. Fails loudly when `openssl` is missing.
public final class TestCertificates: @unchecked Sendable {
    public let dir: URL
    public var caFile: String { path("ca.crt") }
    public var otherCAFile: String { path("other-ca.crt") }
    public var serverCert: String { path("server.crt") }
    public var serverKey: String { path("server.key") }
    public var clientCert: String { path("client.crt") }
    public var clientKey: String { path("client.key") }
    public var expiredCert: String { path("expired.crt") }
    public var expiredKey: String { path("expired.key") }
    public var wrongHostCert: String { path("wronghost.crt") }
    public var wrongHostKey: String { path("wronghost.key") }

    public struct Missing: Error, CustomStringConvertible {
        public var description = "openssl not found: install it (apt-get install openssl, or `make test` does it)"
    }

    public init() throws {
        guard RedisServer.which("openssl") != nil else { throw Missing() }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("certs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try write("san-local.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        try write("san-other.ext", "subjectAltName=DNS:other.example\nextendedKeyUsage=serverAuth\n")
        try write("client.ext", "extendedKeyUsage=clientAuth\n")
        try selfSigned("ca", subject: "/CN=prom-stream-gateway test CA")
        try selfSigned("other-ca", subject: "/CN=an unrelated CA")
        try issue("server", subject: "/CN=localhost", ext: "san-local.ext", days: 30)
        try issue("client", subject: "/CN=gateway-client", ext: "client.ext", days: 30)
        try issue("expired", subject: "/CN=localhost", ext: "san-local.ext", days: -1)
        try issue("wronghost", subject: "/CN=other.example", ext: "san-other.ext", days: 30)
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    public func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A new server certificate and key for `localhost` in `name`.crt/.key (a reload test's replacement).
    public func issueServer(_ name: String, days: Int = 30) throws {
        try issue(name, subject: "/CN=localhost", ext: "san-local.ext", days: days)
    }

    /// The serial number of a certificate file, as `openssl x509 -serial` prints it.
    public func serial(of file: String) throws -> String {
        try openssl(["x509", "-in", file, "-noout", "-serial"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
    }

    private func selfSigned(_ name: String, subject: String) throws {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("\(name).key"), "-out", path("\(name).crt"), "-days", "30", "-subj", subject])
    }

    private func issue(_ name: String, subject: String, ext: String, days: Int) throws {
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", subject])
        try openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", caFile, "-CAkey", path("ca.key"), "-CAcreateserial",
                     "-out", path("\(name).crt"), "-days", String(days), "-extfile", path(ext)])
        // Readable by an unprivileged gateway (the keys are test keys).
        chmod(path("\(name).key"), 0o644)
    }

    @discardableResult
    private func openssl(_ args: [String]) throws -> String {
        let r = try runCommand(RedisServer.which("openssl")!, args)
        guard r.status == 0 else { throw CommandFailed(description: "openssl \(args.joined(separator: " ")): \(r.output)") }
        return r.output
    }

    struct CommandFailed: Error, CustomStringConvertible { var description: String }
}
