/// The bodies OTLP/HTTP answers with, in the request's encoding: an
/// `ExportMetricsServiceResponse` (with `partial_success` when points were rejected)
/// on 200, a `google.rpc.Status` on errors.
enum OTLPEncoding: Equatable, Sendable {
    case protobuf, json

    /// From a `Content-Type` (parameters ignored); nil: 415.
    init?(contentType: String) {
        let media = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: " ").lowercased() } ?? ""
        switch media {
        case "application/x-protobuf", "application/protobuf": self = .protobuf
        case "application/json": self = .json
        default: return nil
        }
    }

    var contentType: String { self == .protobuf ? "application/x-protobuf" : "application/json" }

    func success(rejected: Int, message: String?) -> [UInt8] {
        guard rejected > 0 else { return self == .protobuf ? [] : Array("{}".utf8) }
        let text = message ?? ""
        switch self {
        case .protobuf:
            var inner: [UInt8] = [0x08]
            Self.varint(UInt64(rejected), into: &inner)
            Self.string(2, text, into: &inner)
            var out: [UInt8] = [0x0A]
            Self.varint(UInt64(inner.count), into: &out)
            return out + inner
        case .json:
            return Array("{\"partialSuccess\":{\"rejectedDataPoints\":\"\(rejected)\",\"errorMessage\":\(OTLPText.jsonString(text))}}".utf8)
        }
    }

    /// `google.rpc.Status`: `code` is a gRPC code (3 invalid argument, 8 resource exhausted, 14 unavailable).
    func status(code: Int, message: String) -> [UInt8] {
        switch self {
        case .protobuf:
            var out: [UInt8] = [0x08]
            Self.varint(UInt64(code), into: &out)
            Self.string(2, message, into: &out)
            return out
        case .json:
            return Array("{\"code\":\(code),\"message\":\(OTLPText.jsonString(message))}".utf8)
        }
    }

    private static func varint(_ v: UInt64, into out: inout [UInt8]) {
        var v = v
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    private static func string(_ field: UInt8, _ s: String, into out: inout [UInt8]) {
        out.append(field << 3 | 2)
        varint(UInt64(s.utf8.count), into: &out)
        out.append(contentsOf: s.utf8)
    }
}

private extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
