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
        // Eight bytes at a time (`wordMatches`): a name is checked once per sample in `validate`.
        let colon = restLow >> 0x3A & 1 == 1
        while i + 8 <= b.count {
            guard wordMatches(UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self), colon: colon) else { return false }
            i += 8
        }
        while i < b.count {
            guard allowed(p[i], restLow) else { return false }
            i += 1
        }
        return true
    }

    /// Whether all eight bytes of `w` are in `[a-zA-Z0-9_]` (and `:` when `colon`), with no
    /// branch per byte. Bytes are ASCII first (else false), so no per-byte sum below carries
    /// into the next byte: a byte's top bit after adding `0x80 - lo` says `byte >= lo`, after
    /// adding `0x7F - hi` says `byte > hi`; a byte equal to `c` is a zero byte of `w ^ c`.
    @inline(__always)
    static func wordMatches(_ w: UInt64, colon: Bool) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, high: UInt64 = 0x8080_8080_8080_8080, low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        guard w & high == 0 else { return false }
        @inline(__always) func inRange(_ x: UInt64, _ lo: UInt64, _ hi: UInt64) -> UInt64 {
            (x &+ (0x80 - lo) &* ones) & ~(x &+ (0x7F - hi) &* ones) & high
        }
        @inline(__always) func equal(_ c: UInt64) -> UInt64 {
            let x = w ^ (c &* ones)
            return ~(((x & low7) &+ low7) | x) & high
        }
        var ok = inRange(w, 0x30, 0x39) | inRange(w | (0x20 &* ones), 0x61, 0x7A) | equal(0x5F)
        if colon { ok |= equal(0x3A) }
        return ok == high
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
