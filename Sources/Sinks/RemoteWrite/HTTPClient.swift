import TLS

/// `http://` or `https://HOST[:PORT]/PATH?QUERY`, as a remote-write `url`.
package struct HTTPEndpoint: Equatable, Sendable {
    var https: Bool
    var host: String
    var port: Int
    /// Path and query, `/` at least.
    var target: String

    init(https: Bool, host: String, port: Int, target: String) {
        self.https = https; self.host = host; self.port = port; self.target = target
    }

    package init?(_ url: String) {
        let rest: Substring
        if url.hasPrefix("https://") {
            https = true; rest = url.dropFirst(8)
        } else if url.hasPrefix("http://") {
            https = false; rest = url.dropFirst(7)
        } else {
            return nil
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<slash]
        target = slash == rest.endIndex ? "/" : String(rest[slash...])
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }   // userinfo: not supported, ignored
        port = https ? 443 : 80
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { guard let p = Int(after.dropFirst()) else { return nil }; port = p }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = p
        } else {
            host = String(authority)
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
    }

    /// The `Host` header: the port only when it is not the scheme's.
    var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (https ? 443 : 80) ? h : "\(h):\(port)"
    }
}

/// An HTTP/1.1 response: status, headers (names lower-cased) and up to `maxBody` bytes of body.
package struct HTTPClientResponse: Sendable {
    package var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
}

/// A blocking HTTP/1.1 client on one keep-alive connection (`ClientStream`: TCP, TLS
/// for `https`), reconnecting when the server closed it or a request failed. One
/// thread uses it at a time (the remote-write sender).
package final class HTTPClient {
    let endpoint: HTTPEndpoint
    private let tls: TLSClientSettings?
    private let timeout: Double
    private var stream: ClientStream?
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var pending: [UInt8] = []
    static let maxBody = 64 * 1024

    package init(endpoint: HTTPEndpoint, tls: TLSClientSettings?, timeout: Double) {
        self.endpoint = endpoint
        self.tls = tls
        self.timeout = timeout
    }

    /// POSTs `body`; throws when no answer arrived (connection, time-out, malformed answer).
    package func post(headers: [(String, String)], body: [UInt8]) throws(StreamError) -> HTTPClientResponse {
        // A kept-alive connection the server has since closed fails on first use: retry once on a new one.
        let reused = stream != nil
        do {
            return try exchange(headers: headers, body: body)
        } catch {
            stream = nil
            guard reused else { throw error }
            return try exchange(headers: headers, body: body)
        }
    }

    func close() { stream = nil }

    private func exchange(headers: [(String, String)], body: [UInt8]) throws(StreamError) -> HTTPClientResponse {
        if stream == nil {
            // Each connection reads the tls_config files again, so rotated certificates are used, as Prometheus does.
            var context: (TLSClientContext, TLSClientSettings)?
            if endpoint.https, let tls {
                do { context = (try TLSClientContext(tls), tls) } catch { throw StreamError("tls_config: \(error)") }
            }
            stream = try ClientStream(host: endpoint.host, port: endpoint.port, tls: context, timeout: timeout, readTimeout: timeout)
            pending.removeAll()
        }
        guard let stream else { throw StreamError("no connection") }
        var head = "POST \(endpoint.target) HTTP/1.1\r\nHost: \(endpoint.hostHeader)\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        var request = Array(head.utf8)
        request += body
        let failure = request.withUnsafeBytes { b -> StreamError? in
            do throws(StreamError) { try stream.write(b); return nil } catch { return error }
        }
        if let failure { throw failure }
        let response = try readResponse(stream)
        if response.header("connection")?.lowercased() == "close" { self.stream = nil }
        return response
    }

    private func fill(_ stream: ClientStream) throws(StreamError) {
        let read = buffer.withUnsafeMutableBytes { b -> Result<Int, StreamError> in
            do throws(StreamError) { return .success(try stream.read(into: b)) } catch { return .failure(error) }
        }
        let n = try read.get()
        guard n > 0 else { throw StreamError("the server closed the connection") }
        pending += buffer[0..<n]
    }

    private func line(_ stream: ClientStream) throws(StreamError) -> String {
        while true {
            if let i = pending.firstIndex(of: 0x0A) {
                let l = pending[..<i]
                pending.removeSubrange(...i)
                return String(decoding: l.last == 0x0D ? l.dropLast() : l, as: UTF8.self)
            }
            guard pending.count < 16 * 1024 else { throw StreamError("a response header line over 16 KiB") }
            try fill(stream)
        }
    }

    private func bytes(_ count: Int, _ stream: ClientStream, keep: inout [UInt8]) throws(StreamError) {
        var left = count
        while left > 0 {
            if pending.isEmpty { try fill(stream) }
            let n = min(left, pending.count)
            if keep.count < Self.maxBody { keep += pending[0..<min(n, Self.maxBody - keep.count)] }
            pending.removeSubrange(0..<n)
            left -= n
        }
    }

    private func readResponse(_ stream: ClientStream) throws(StreamError) -> HTTPClientResponse {
        var statusLine = try line(stream)
        while statusLine.hasPrefix("HTTP/1.1 1") || statusLine.hasPrefix("HTTP/1.0 1") {   // 100 Continue and friends
            while try !line(stream).isEmpty {}
            statusLine = try line(stream)
        }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw StreamError("not an HTTP response: `\(statusLine.prefix(80))`")
        }
        var headers: [(String, String)] = []
        while true {
            let l = try line(stream)
            if l.isEmpty { break }
            guard let colon = l.firstIndex(of: ":") else { continue }
            headers.append((l[..<colon].lowercased(), l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = HTTPClientResponse(status: status, headers: headers, body: [])
        if response.header("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try line(stream)
                guard let size = Int(sizeLine.split(separator: ";").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "", radix: 16),
                      size >= 0 else { throw StreamError("a malformed chunk size") }
                if size == 0 { while try !line(stream).isEmpty {}; break }
                try bytes(size, stream, keep: &response.body)
                _ = try line(stream)
            }
        } else if let length = response.header("content-length").flatMap({ Int($0) }), length >= 0 {
            try bytes(length, stream, keep: &response.body)
        } else if status != 204 && status != 304 {
            // No length: the body runs to the close.
            self.stream = nil
            while true {
                do { try fill(stream) } catch { break }
                if response.body.count < Self.maxBody { response.body += pending.prefix(Self.maxBody - response.body.count) }
                pending.removeAll()
            }
        }
        return response
    }
}

@available(*, unavailable)
extension HTTPClient: Sendable {}
