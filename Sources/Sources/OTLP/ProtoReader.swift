/// Reads protobuf's wire format from a byte slice: varints, fixed64, length-delimited
/// fields. Every read is bounds-checked and a malformed message is an error, never
/// a crash — the body is whatever a sender (or an attacker) posted.
struct ProtoReader {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    enum WireType: UInt8 { case varint = 0, fixed64 = 1, bytes = 2, fixed32 = 5 }

    private let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int
    private let end: Int

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes; offset = 0; end = bytes.count }
    private init(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int) { self.bytes = bytes; offset = from; end = to }

    var isAtEnd: Bool { offset >= end }

    /// The next field's number and wire type.
    mutating func field() throws(Malformed) -> (number: UInt64, wire: WireType) {
        let key = try varint()
        guard let wire = WireType(rawValue: UInt8(key & 7)) else {
            throw Malformed(description: "wire type \(key & 7) (groups are not used by OTLP)")
        }
        guard key >> 3 > 0 else { throw Malformed(description: "field number 0") }
        return (key >> 3, wire)
    }

    mutating func varint() throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < end {
            let b = bytes[offset]
            offset += 1
            value |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return value }
            shift += 7
            guard shift < 64 else { throw Malformed(description: "varint longer than 10 bytes") }
        }
        throw Malformed(description: "truncated varint")
    }

    mutating func fixed64() throws(Malformed) -> UInt64 {
        guard end - offset >= 8 else { throw Malformed(description: "truncated fixed64") }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        offset += 8
        return v
    }

    mutating func double() throws(Malformed) -> Double { Double(bitPattern: try fixed64()) }

    mutating func sint32() throws(Malformed) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    /// A length-delimited field's reader (a sub-message or packed list).
    mutating func nested() throws(Malformed) -> ProtoReader {
        let length = try varint()
        guard length <= UInt64(end - offset) else { throw Malformed(description: "length \(length) beyond the message") }
        let sub = ProtoReader(bytes, from: offset, to: offset + Int(length))
        offset += Int(length)
        return sub
    }

    mutating func string() throws(Malformed) -> String {
        let sub = try nested()
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[sub.offset..<sub.end]), as: UTF8.self)
    }

    mutating func data() throws(Malformed) -> [UInt8] {
        let sub = try nested()
        return Array(bytes[sub.offset..<sub.end])
    }

    mutating func skip(_ wire: WireType) throws(Malformed) {
        switch wire {
        case .varint: _ = try varint()
        case .fixed64: guard end - offset >= 8 else { throw Malformed(description: "truncated fixed64") }; offset += 8
        case .fixed32: guard end - offset >= 4 else { throw Malformed(description: "truncated fixed32") }; offset += 4
        case .bytes: _ = try nested()
        }
    }

    /// A repeated fixed64/double field, packed or not.
    mutating func appendFixed64(_ wire: WireType, to out: inout [UInt64], limit: Int) throws(Malformed) {
        if wire == .fixed64 { out.append(try fixed64()) } else {
            guard wire == .bytes else { throw Malformed(description: "repeated fixed64 with wire type \(wire.rawValue)") }
            var sub = try nested()
            guard (sub.end - sub.offset) % 8 == 0 else { throw Malformed(description: "packed fixed64 of \(sub.end - sub.offset) bytes") }
            while !sub.isAtEnd { out.append(try sub.fixed64()) }
        }
        guard out.count <= limit else { throw Malformed(description: "more than \(limit) buckets") }
    }

    /// A repeated varint field, packed or not.
    mutating func appendVarints(_ wire: WireType, to out: inout [UInt64], limit: Int) throws(Malformed) {
        if wire == .varint { out.append(try varint()) } else {
            guard wire == .bytes else { throw Malformed(description: "repeated varint with wire type \(wire.rawValue)") }
            var sub = try nested()
            while !sub.isAtEnd { out.append(try sub.varint()); guard out.count <= limit else { break } }
        }
        guard out.count <= limit else { throw Malformed(description: "more than \(limit) buckets") }
    }

    /// Checks the wire type a field must have.
    func expect(_ wire: WireType, _ want: WireType, _ field: String) throws(Malformed) {
        guard wire == want else { throw Malformed(description: "\(field) has wire type \(wire.rawValue)") }
    }
}
