import Pipeline

/// How attribute values become label text.
enum OTLPText {
    /// Go's `strconv.FormatFloat(v, 'f', -1, 64)` for the usual values: integers
    /// without a fraction, others in Swift's shortest round-trip form.
    static func double(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// `s` as a JSON string literal (attribute arrays and maps as label text).
    static func jsonString(_ s: String) -> String { "\"" + jsonEscape(s) + "\"" }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
