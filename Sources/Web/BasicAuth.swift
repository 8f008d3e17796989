import CCrypt
import COpenSSL
import Pipeline
import Synchronization

/// Checks `Authorization: Basic …` against the web config's bcrypt hashes.
///
/// bcrypt at cost 10 takes tens of milliseconds by design, so a credential that
/// verified once is remembered as the SHA-256 of user, password and hash (never the
/// password) and later scrapes compare digests — in constant time, like the bcrypt
/// result. An unknown user still pays one bcrypt, against a fixed hash, so timing
/// does not tell which users exist (as exporter-toolkit does).
package final class BasicAuth: Sendable {
    private let users: [String: String]
    private let verified = Mutex<[String: [UInt8]]>([:])
    /// Bounds the cache: a flood of wrong passwords never grows it (only successes
    /// enter), but rotated passwords would.
    private static let cacheLimit = 1024
    /// Any valid bcrypt hash; checked against when the user is unknown.
    private static let decoy = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

    package init(users: [String: String]) { self.users = users }

    static func isBcrypt(_ hash: String) -> Bool {
        let u = Array(hash.utf8)
        guard u.count == 60, hash.hasPrefix("$2y$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2a$") else { return false }
        return u[6] == UInt8(ascii: "$") && u[4...5].allSatisfy { (48...57).contains($0) }
    }

    /// Whether the header's credentials are valid.
    package func allows(authorization: String?) -> Bool {
        guard let authorization, let (user, password) = Self.credentials(authorization) else { return false }
        guard let hash = users[user] else {
            _ = Self.bcryptMatches(password, Self.decoy)
            return false
        }
        let digest = Self.sha256(Array(user.utf8) + [0] + password + [0] + Array(hash.utf8))
        if let known = verified.withLock({ $0[user] }), Self.constantTimeEqual(known, digest) { return true }
        guard Self.bcryptMatches(password, hash) else { return false }
        verified.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll() }
            cache[user] = digest
        }
        return true
    }

    /// `Basic base64(user:password)` → user and password bytes.
    static func credentials(_ header: String) -> (String, [UInt8])? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic", let decoded = Base64.decode(parts[1].utf8) else { return nil }
        guard let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        return (String(decoding: decoded[..<colon], as: UTF8.self), Array(decoded[(colon + 1)...]))
    }

    package static func bcryptMatches(_ password: [UInt8], _ hash: String) -> Bool {
        guard !password.contains(0) else { return false }   // crypt takes a C string
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        data.initialize(to: crypt_data())
        let phrase = password.map { CChar(bitPattern: $0) } + [0]
        guard let out = crypt_r(phrase, hash, data) else { return false }
        let result = Array(String(cString: out).utf8), expected = Array(hash.utf8)
        return result.count == expected.count && constantTimeEqual(result, expected)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0 } }
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        _ = bytes.withUnsafeBufferPointer { SHA256($0.baseAddress, $0.count, &out) }
        return out
    }
}
