/// Prometheus name rules, on raw bytes. Used by `validate` and, as a last line of
/// defence for the exposition format, by the sink when it creates a series.
public enum NameSyntax {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    @inline(__always)
    public static func isValidMetricName(_ b: UnsafeRawBufferPointer) -> Bool {
        matches(b, first: metricFirst, rest: metricRest)
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    @inline(__always)
    public static func isValidLabelName(_ b: UnsafeRawBufferPointer) -> Bool {
        matches(b, first: labelFirst, rest: labelRest)
    }

    // Character classes as 128-bit sets (bit c set = byte c allowed): a shift and a
    // mask per byte, no table in memory, nothing to initialise.
    private static let letters: UInt128 = (UInt128(0x3FF_FFFF) << 0x41) | (UInt128(0x3FF_FFFF) << 0x61)   // A-Z a-z
    private static let digits: UInt128 = UInt128(0x3FF) << 0x30
    private static let underscore: UInt128 = 1 << 0x5F
    private static let colon: UInt128 = 1 << 0x3A
    static let labelFirst = letters | underscore
    static let labelRest = labelFirst | digits
    static let metricFirst = labelFirst | colon
    static let metricRest = labelRest | colon

    @inline(__always)
    private static func matches(_ b: UnsafeRawBufferPointer, first: UInt128, rest: UInt128) -> Bool {
        guard let p = b.baseAddress?.assumingMemoryBound(to: UInt8.self), b.count > 0 else { return false }
        guard p[0] < 0x80, first >> p[0] & 1 == 1 else { return false }
        var i = 1
        while i < b.count {
            let c = p[i]
            guard c < 0x80, rest >> c & 1 == 1 else { return false }
            i += 1
        }
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
}
