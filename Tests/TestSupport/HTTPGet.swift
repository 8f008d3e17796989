import Foundation

public struct HTTPResult: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A minimal blocking HTTP/1.1 client for tests (loopback only): sends one request
/// with `Connection: close` and reads the whole answer.
public func httpGet(port: Int, path: String, method: String = "GET", headers: [String: String] = [:], body: String? = nil, timeout: Double = 10) throws -> HTTPResult {
    var headers = headers
    if body != nil, headers["Content-Type"] == nil { headers["Content-Type"] = "application/x-www-form-urlencoded" }
    return try httpRequest(port: port, path: path, method: method, headers: headers, body: body.map { Array($0.utf8) }, timeout: timeout)
}

/// `POST` of raw bytes (an OTLP export), with the headers given (`Content-Type`, `Content-Encoding`).
public func httpPost(port: Int, path: String, headers: [String: String], body: [UInt8], timeout: Double = 10) throws -> HTTPResult {
    try httpRequest(port: port, path: path, method: "POST", headers: headers, body: body, timeout: timeout)
}

func httpRequest(port: Int, path: String, method: String, headers: [String: String], body: [UInt8]?, timeout: Double) throws -> HTTPResult {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { throw HTTPError.connect(port) }
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for (k, v) in headers { request += "\(k): \(v)\r\n" }
    if let body { request += "Content-Length: \(body.count)\r\n" }
    let bytes = Array((request + "\r\n").utf8) + (body ?? [])
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }
        sent += n
    }
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        data.append(contentsOf: buf[0..<n])
    }
    guard let split = data.firstRange(of: Array("\r\n\r\n".utf8)) else { throw HTTPError.malformed(String(decoding: data, as: UTF8.self)) }
    let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).split(separator: "\r\n")
    let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
    var hs: [String: String] = [:]
    for line in head.dropFirst() {
        if let c = line.firstIndex(of: ":") {
            hs[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
    }
    let body = Array(data[split.upperBound...])
    return HTTPResult(status: status, headers: hs, body: hs["transfer-encoding"]?.lowercased() == "chunked" ? dechunk(body) : body)
}

/// The body of a `Transfer-Encoding: chunked` answer (Prometheus's API sends them).
func dechunk(_ b: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while i < b.count {
        guard let lineEnd = b[i...].firstRange(of: Array("\r\n".utf8)) else { break }
        let sizeText = String(decoding: b[i..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
        guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
        let start = lineEnd.upperBound
        out.append(contentsOf: b[start..<min(b.count, start + size)])
        i = start + size + 2
    }
    return out
}

public enum HTTPError: Error { case connect(Int), malformed(String) }
