/// Prometheus name rules, on raw bytes. Used by `validate` and, as a last line of
/// defence for the exposition format, by the sink when it creates a series.
public enum NameSyntax {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    @inline(__always)
    public static func isValidMetricName(_ b: UnsafeRawBufferPointer) -> Bool {
        guard let first = b.first, isLetter(first) || first == 0x5F || first == 0x3A else { return false }
        for c in b.dropFirst() where !(isLetter(c) || isDigit(c) || c == 0x5F || c == 0x3A) { return false }
        return true
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    @inline(__always)
    public static func isValidLabelName(_ b: UnsafeRawBufferPointer) -> Bool {
        guard let first = b.first, isLetter(first) || first == 0x5F else { return false }
        for c in b.dropFirst() where !(isLetter(c) || isDigit(c) || c == 0x5F) { return false }
        return true
    }

    public static func isValidMetricName(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { isValidMetricName(UnsafeRawBufferPointer($0)) }
    }

    public static func isValidLabelName(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { isValidLabelName(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) static func isLetter(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }
    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}
