/// Pieces of the Prometheus text format 0.0.4, appended to a byte buffer.
public enum TextFormat {
    /// Label value escaping: `\` → `\\`, `"` → `\"`, newline → `\n`.
    @inline(__always)
    static func appendLabelValue(_ b: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        var plain = true
        for c in b where c == 0x5C || c == 0x22 || c == 0x0A { plain = false; break }
        if plain { out.append(contentsOf: b); return }
        for c in b {
            switch c {
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x0A: out.append(0x5C); out.append(0x6E)
            default: out.append(c)
            }
        }
    }

    /// Help escaping: `\` → `\\`, newline → `\n`.
    static func appendHelp(_ b: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        for c in b {
            switch c {
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(0x6E)
            default: out.append(c)
            }
        }
    }

    static func append(_ s: StaticString, to out: inout [UInt8]) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    static func append(_ s: String, to out: inout [UInt8]) {
        out.append(contentsOf: s.utf8)
    }

    /// Formats like Go's `strconv.FormatFloat(v, 'g', -1, 64)`, as client_golang
    /// does: the shortest digits that round-trip, in exponent form when the decimal
    /// exponent is < -4 or >= 6 (`123456`, `1e+06`, `0.0001`, `1e-05`), and `+Inf`,
    /// `-Inf`, `NaN` as the exposition format spells them.
    public static func appendFloat(_ v: Double, to out: inout [UInt8]) {
        if v.isNaN { append("NaN", to: &out); return }
        if v.isInfinite { append(v < 0 ? "-Inf" : "+Inf", to: &out); return }
        if v == 0 { if v.sign == .minus { out.append(0x2D) }; out.append(0x30); return }
        // Fast path: integers below 1e6 print as plain digits in Go's %g too.
        if v == v.rounded(.towardZero), abs(v) < 1e6 {
            appendInt(Int(v), to: &out)
            return
        }
        // Fast path: a decimal of up to six places in the range Go prints without an exponent.
        // With m the integer nearest v·10^k, m / 10^k == v (division rounds correctly) says those
        // digits round-trip; the first k that does is the shortest (a shorter decimal would have
        // matched at a smaller k), and one m at most is that close. Double.description was a
        // third of a page's render.
        let a = abs(v)
        if a >= 1e-4, a < 1e6 {
            var scale = 10.0
            for k in 1...6 {
                let m = (a * scale).rounded()
                if m / scale == a { appendDecimal(UInt64(m), places: k, negative: v < 0, to: &out); return }
                scale *= 10
            }
        }
        appendShortest(v, to: &out)
    }

    /// `m` with a decimal point `places` digits from its end: `0.05` for 5 and 2.
    static func appendDecimal(_ m: UInt64, places: Int, negative: Bool, to out: inout [UInt8]) {
        if negative { out.append(0x2D) }
        var p: UInt64 = 1
        for _ in 0..<places { p *= 10 }
        appendInt(Int(m / p), to: &out)
        out.append(0x2E)
        var rest = m % p
        for _ in 0..<places {
            p /= 10
            out.append(UInt8(rest / p) + 0x30)
            rest %= p
        }
    }

    /// The general case of `appendFloat` (finite, not zero, not a small integer): Swift's
    /// shortest round-trip digits (a small string: no allocation), re-laid out the way Go
    /// does, through a stack buffer.
    static func appendShortest(_ v: Double, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digits in
            var n = 0
            var dp = 0   // decimal point position relative to the digits
            var sawPoint = false
            var exponent = 0
            var negative = false
            var inExponent = false, expNegative = false
            for c in v.description.utf8 {
                if inExponent {
                    if c == 0x2D { expNegative = true } else if c >= 0x30 && c <= 0x39 { exponent = exponent * 10 + Int(c - 0x30) }
                    continue
                }
                switch c {
                case 0x2D: negative = true
                case 0x2E: sawPoint = true
                case 0x65, 0x45: inExponent = true
                case 0x30...0x39:
                    if n == 0 && c == 0x30 { if sawPoint { dp -= 1 }; continue }   // leading zeros
                    if n < digits.count { digits[n] = c; n += 1 }
                    if !sawPoint { dp += 1 }
                default: break
                }
            }
            if expNegative { exponent = -exponent }
            dp += exponent
            while n > 0 && digits[n - 1] == 0x30 { n -= 1 }
            if n == 0 { out.append(0x30); return }
            if negative { out.append(0x2D) }
            let exp = dp - 1
            if exp < -4 || exp >= 6 {
                out.append(digits[0])
                if n > 1 { out.append(0x2E); out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[1..<n])) }
                out.append(0x65)
                out.append(exp < 0 ? 0x2D : 0x2B)
                let e = abs(exp)
                if e < 10 { out.append(0x30) }
                appendInt(e, to: &out)
            } else if dp <= 0 {
                out.append(0x30); out.append(0x2E)
                for _ in 0..<(-dp) { out.append(0x30) }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[0..<n]))
            } else {
                for i in 0..<dp { out.append(i < n ? digits[i] : 0x30) }
                if n > dp { out.append(0x2E); out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[dp..<n])) }
            }
        }
    }

    /// Unix seconds as plain decimals (`1732550000.123`): Swift's shortest
    /// round-trip digits, which need no exponent for any date from 1970 to 2^53 s.
    static func appendTimestamp(_ t: Double, to out: inout [UInt8]) {
        if t == t.rounded(.towardZero), abs(t) < 9e15 { appendInt(Int(t), to: &out); return }
        append(t.description, to: &out)
    }

    static func appendInt(_ v: Int, to out: inout [UInt8]) {
        if v < 0 { out.append(0x2D) }
        var m = v.magnitude
        if m == 0 { out.append(0x30); return }
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &tmp) { buf in
            while m > 0 { buf[n] = UInt8(m % 10) + 0x30; m /= 10; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { out.append(buf[i]) }
        }
    }

    static func formatFloat(_ v: Double) -> String {
        var out: [UInt8] = []
        appendFloat(v, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
