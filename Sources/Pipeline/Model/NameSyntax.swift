/// Prometheus name rules, on raw bytes. Used by `validate` and, as a last line of
/// defence for the exposition format, by the sink when it creates a series.
public enum NameSyntax {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    @inline(__always)
    public static func isValidMetricName(_ b: UnsafeRawBufferPointer) -> Bool {
        matches(b, firstLow: 0x0400_0000_0000_0000, restLow: 0x07FF_0000_0000_0000)
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    @inline(__always)
    public static func isValidLabelName(_ b: UnsafeRawBufferPointer) -> Bool {
        matches(b, firstLow: 0, restLow: 0x03FF_0000_0000_0000)
    }

    /// Label names starting with `__` are reserved for Prometheus' own use.
    @inline(__always)
    public static func isReservedLabelName(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 2 && b[0] == 0x5F && b[1] == 0x5F
    }

    /// A label name a sample may carry: valid syntax, not reserved.
    @inline(__always)
    public static func isUsableLabelName(_ b: UnsafeRawBufferPointer) -> Bool {
        isValidLabelName(b) && !isReservedLabelName(b)
    }

    /// Character classes as bit sets over ASCII, literal so that nothing is computed
    /// or initialised at run time: byte `c < 64` is allowed when bit `c` of the low
    /// word is set (digits are bits 48–57, `:` bit 58); bytes 64–127 share one high
    /// word for every class here: `A`–`Z` (bits 1–26), `_` (31), `a`–`z` (33–58).
    @inline(__always)
    private static func matches(_ b: UnsafeRawBufferPointer, firstLow: UInt64, restLow: UInt64) -> Bool {
        let high: UInt64 = 0x07FF_FFFE_87FF_FFFE
        @inline(__always) func allowed(_ c: UInt8, _ low: UInt64) -> Bool {
            c < 64 ? low >> c & 1 == 1 : c < 128 && high >> (c &- 64) & 1 == 1
        }
        guard let p = b.baseAddress?.assumingMemoryBound(to: UInt8.self), b.count > 0, allowed(p[0], firstLow) else { return false }
        var i = 1
        while i < b.count {
            guard allowed(p[i], restLow) else { return false }
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

    public static func isUsableLabelName(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { isUsableLabelName(UnsafeRawBufferPointer($0)) }
    }
}
