import COpenSSL

/// SHA-1 from libcrypto, for the one place it is needed: a Lua script's name in
/// Redis (`EVALSHA`), which is its SHA-1 in hex.
public enum SHA1 {
    public static func hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        _ = bytes.withUnsafeBufferPointer { b in COpenSSL.SHA1(b.baseAddress, b.count, &digest) }
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
