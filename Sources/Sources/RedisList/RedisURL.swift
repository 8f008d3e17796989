/// Where and how to connect: parsed from `redis://[user:password@]host:port[/db]`
/// or from the .NET gateway's StackExchange.Redis form
/// `host:port[,password=…][,user=…][,defaultDatabase=N][,name=…]` (other
/// `key=value` options of that form, such as `abortConnect`, are accepted and
/// ignored). Another scheme (`http://…`) is an error, not a host named `http`.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String = "localhost"
    public var port: Int = 6379
    public var user: String?
    public var password: String?
    public var database: Int = 0
    /// `CLIENT SETNAME` after connecting (the .NET form's `name=`).
    public var clientName: String?

    public init(host: String = "localhost", port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host; self.port = port; self.user = user; self.password = password; self.database = database
    }

    /// Without the password, for logs and `/ready`.
    public var description: String { "\(host):\(port)/\(database)" }

    public static func parse(_ text: String) -> Result<RedisURL, ParseError> {
        let s = String(text.trimmingWhitespace)
        if s.hasPrefix("rediss://") { return .failure(ParseError("TLS (rediss://) is not supported by hiredis 0.14")) }
        if s.hasPrefix("redis://") { return parseURL(String(s.dropFirst("redis://".count))) }
        if let scheme = s.range(of: "://") {
            return .failure(ParseError("unsupported scheme `\(s[..<scheme.lowerBound])://` (use redis://host:port/db or host:port)"))
        }
        return parseDotNet(s)
    }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ d: String) { description = d }
    }

    private static func parseURL(_ rest: String) -> Result<RedisURL, ParseError> {
        var url = RedisURL()
        var rest = Substring(rest)
        if let at = rest.lastIndex(of: "@") {
            let auth = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = auth.firstIndex(of: ":") {
                let user = percentDecode(auth[..<colon])
                url.user = user.isEmpty ? nil : user
                url.password = percentDecode(auth[auth.index(after: colon)...])
            } else {
                url.password = percentDecode(auth)
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0 else { return .failure(ParseError("database must be a non-negative integer, got `\(db)`")) }
                url.database = n
            }
        }
        return hostPort(rest, into: &url)
    }

    private static func parseDotNet(_ s: String) -> Result<RedisURL, ParseError> {
        var url = RedisURL()
        let parts = s.split(separator: ",", omittingEmptySubsequences: true).map { $0.trimmingWhitespace }
        var endpoint: Substring?
        for part in parts {
            if let eq = part.firstIndex(of: "=") {
                let key = part[..<eq].lowercased(), value = String(part[part.index(after: eq)...])
                switch key {
                case "password": url.password = value
                case "user": url.user = value
                case "defaultdatabase":
                    guard let n = Int(value), n >= 0 else { return .failure(ParseError("defaultDatabase must be a non-negative integer, got `\(value)`")) }
                    url.database = n
                case "name": url.clientName = value
                case "ssl" where value.lowercased() == "true":
                    return .failure(ParseError("ssl=true is not supported by hiredis 0.14"))
                default: break
                }
            } else if endpoint == nil {
                endpoint = part
            }
        }
        guard let endpoint else { return .failure(ParseError("no host:port in `\(s)`")) }
        return hostPort(endpoint, into: &url)
    }

    private static func hostPort(_ s: Substring, into url: inout RedisURL) -> Result<RedisURL, ParseError> {
        var host = s
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {   // [::1]:6379
            host = s[s.index(after: s.startIndex)..<close]
            let after = s[s.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { return .failure(ParseError("bad port in `\(s)`")) }
                url.port = p
            }
        } else if let colon = s.lastIndex(of: ":") {
            host = s[..<colon]
            guard let p = Int(s[s.index(after: colon)...]), (1...65535).contains(p) else { return .failure(ParseError("bad port in `\(s)`")) }
            url.port = p
        }
        url.host = host.isEmpty ? "localhost" : String(host)
        return .success(url)
    }

    private static func percentDecode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var i = s.utf8.startIndex
        let u = s.utf8
        while i < u.endIndex {
            if u[i] == UInt8(ascii: "%"), let j = u.index(i, offsetBy: 2, limitedBy: u.endIndex), j < u.endIndex,
               let v = UInt8(String(decoding: u[u.index(after: i)...j], as: UTF8.self), radix: 16) {
                bytes.append(v); i = u.index(after: j)
            } else {
                bytes.append(u[i]); i = u.index(after: i)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension StringProtocol {
    var trimmingWhitespace: Substring {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return s
    }
}
