import NIOHTTP1
import Web

/// What an HTTP request to the `otlp` source gets before its body is decoded: the
/// OTLP/HTTP rules as a pure decision (table-tested).
enum OTLPRequestCheck {
    case refuse(HTTPResponse)
    case decode(OTLPEncoding, body: [UInt8])

    static func check(_ request: HTTPRequest, auth: BasicAuth?, limit: Int) -> OTLPRequestCheck {
        func text(_ status: HTTPResponseStatus, _ message: String, _ headers: [(String, String)] = []) -> OTLPRequestCheck {
            .refuse(HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array((message + "\n").utf8), headers: headers))
        }
        guard request.path == "/v1/metrics" else { return text(.notFound, "not found (OTLP metrics are POSTed to /v1/metrics)") }
        guard request.method == .POST else { return text(.methodNotAllowed, "method not allowed", [("Allow", "POST")]) }
        if let auth, !auth.allows(authorization: request.authorization) {
            return text(.unauthorized, "Unauthorized", [("WWW-Authenticate", "Basic realm=\"prom-stream-gateway\", charset=\"UTF-8\"")])
        }
        guard let encoding = OTLPEncoding(contentType: request.contentType) else {
            return text(.unsupportedMediaType, "unsupported Content-Type `\(request.contentType)`: send application/x-protobuf or application/json")
        }
        func status(_ s: HTTPResponseStatus, _ code: Int, _ message: String) -> OTLPRequestCheck {
            .refuse(HTTPResponse(status: s, contentType: encoding.contentType, body: encoding.status(code: code, message: message)))
        }
        guard !request.bodyTooLarge else { return status(.payloadTooLarge, 8, "the body exceeds max_request_body_size (\(limit) bytes)") }
        guard !request.overloaded else {
            return .refuse(HTTPResponse(status: .tooManyRequests, contentType: encoding.contentType,
                                        body: encoding.status(code: 8, message: "the gateway holds too many request bodies; retry later"),
                                        headers: [("Retry-After", "1")]))
        }
        switch request.contentEncoding.lowercased() {
        case "", "identity":
            return .decode(encoding, body: request.body)
        case "gzip":
            do { return .decode(encoding, body: try Gunzip.inflate(request.body, limit: limit)) } catch .tooLarge {
                return status(.payloadTooLarge, 8, "the body inflates beyond max_request_body_size (\(limit) bytes)")
            } catch {
                return status(.badRequest, 3, "the gzip body is malformed")
            }
        default:
            return text(.unsupportedMediaType, "unsupported Content-Encoding `\(request.contentEncoding)`: send gzip or none")
        }
    }
}

/// Whether an export is taken now: refused while stopping; 429 while `maxWaiting`
/// exports wait or its bytes do not fit the memory budget beside what is in flight
/// — but an export is always taken when nothing is (one larger than the whole budget
/// would otherwise never be), as `MemoryBudget.acquire` lets one batch through.
enum OTLPAdmission: Equatable {
    case accept, full, stopping

    init(closed: Bool, waiting: Int, maxWaiting: Int, inFlight: Int, bytes: Int, limit: Int) {
        if closed {
            self = .stopping
        } else if waiting >= maxWaiting || inFlight > 0 && inFlight + bytes > limit {
            self = .full
        } else {
            self = .accept
        }
    }
}
