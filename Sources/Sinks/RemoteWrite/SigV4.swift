#if canImport(Glibc)
import Glibc
#endif
import TLS

/// AWS Signature Version 4 for one request (Amazon Managed Prometheus: service
/// `aps`), a pure function of the request, the credentials and the time.
///
/// Signs the headers given (names lower-cased, values trimmed) plus `host` and
/// `x-amz-date` (and `x-amz-security-token` with a session token); the path is
/// URI-encoded once, the query sorted. Checked against AWS's `get-vanilla` example
/// and against botocore (`RemoteWriteSigV4Tests`).
struct SigV4: Sendable, Equatable {
    var accessKey: String
    var secretKey: String
    var sessionToken: String?
    var region: String
    var service = "aps"

    /// The headers to add: `X-Amz-Date`, `X-Amz-Security-Token` if any, `Authorization`.
    /// `date` is `YYYYMMDDTHHMMSSZ`.
    func sign(method: String, host: String, target: String, headers: [(String, String)], payload: [UInt8], date: String) -> [(String, String)] {
        let day = String(date.prefix(8))
        var signed = headers.map { ($0.0.lowercased(), $0.1.trimmingCharacters(in: .whitespaces)) }
        signed.append(("host", host))
        signed.append(("x-amz-date", date))
        if let sessionToken { signed.append(("x-amz-security-token", sessionToken)) }
        signed.sort { $0.0 < $1.0 }
        let names = signed.map(\.0).joined(separator: ";")
        let (path, query) = Self.split(target)
        let canonical = [method, Self.encodePath(path), Self.canonicalQuery(query),
                         signed.map { "\($0.0):\($0.1)\n" }.joined(), names, SHA256.hex(SHA256.digest(payload))].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = "AWS4-HMAC-SHA256\n\(date)\n\(scope)\n\(SHA256.hex(SHA256.digest(Array(canonical.utf8))))"
        var key = SHA256.hmac(key: Array("AWS4\(secretKey)".utf8), Array(day.utf8))
        for part in [region, service, "aws4_request"] { key = SHA256.hmac(key: key, Array(part.utf8)) }
        let signature = SHA256.hex(SHA256.hmac(key: key, Array(toSign.utf8)))
        var out = [("X-Amz-Date", date)]
        if let sessionToken { out.append(("X-Amz-Security-Token", sessionToken)) }
        out.append(("Authorization", "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope), SignedHeaders=\(names), Signature=\(signature)"))
        return out
    }

    static func split(_ target: String) -> (path: String, query: String) {
        guard let q = target.firstIndex(of: "?") else { return (target, "") }
        return (String(target[..<q]), String(target[target.index(after: q)...]))
    }

    /// RFC 3986 unreserved characters stay; everything else is `%XX` (upper-case).
    static func encode(_ s: some Sequence<UInt8>, keepSlash: Bool) -> String {
        var out = ""
        for b in s {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(b)))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }

    static func encodePath(_ path: String) -> String { path.isEmpty ? "/" : encode(percentDecoded(path), keepSlash: true) }

    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { item -> (String, String) in
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = kv.count > 1 ? String(kv[1]) : ""
            return (encode(percentDecoded(String(kv[0])), keepSlash: false), encode(percentDecoded(value), keepSlash: false))
        }
        return pairs.sorted { $0 < $1 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    static func percentDecoded(_ s: String) -> [UInt8] {
        let b = Array(s.utf8)
        var out: [UInt8] = [], i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let v = UInt8(String(decoding: b[i + 1...i + 2], as: UTF8.self), radix: 16) {
                out.append(v); i += 3
            } else {
                out.append(b[i]); i += 1
            }
        }
        return out
    }

    /// `YYYYMMDDTHHMMSSZ` for a Unix time.
    static func amzDate(unixSeconds: Int) -> String {
        var t = time_t(unixSeconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { String(v).leftPadded(2) }
        return "\(tm.tm_year + 1900)\(two(tm.tm_mon + 1))\(two(tm.tm_mday))T\(two(tm.tm_hour))\(two(tm.tm_min))\(two(tm.tm_sec))Z"
    }
}

extension String {
    fileprivate func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
