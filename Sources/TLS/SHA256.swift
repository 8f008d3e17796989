import COpenSSL

/// SHA-256 and HMAC-SHA-256 from libcrypto, for request signing (AWS SigV4).
public enum SHA256 {
    public static func digest(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBytes { b in _ = COpenSSL.SHA256(b.baseAddress?.assumingMemoryBound(to: UInt8.self), b.count, &digest) }
        return digest
    }

    public static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        message.withUnsafeBytes { m in
            _ = HMAC(EVP_sha256(), key, Int32(key.count), m.baseAddress?.assumingMemoryBound(to: UInt8.self), m.count, &digest, &length)
        }
        return Array(digest[0..<Int(length)])
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
