import Testing
@testable import Aggregation
@testable import Sinks

@Suite struct TextFormatTests {
    /// Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints.
    @Test(arguments: [
        (0.0, "0"), (-0.0, "-0"), (1, "1"), (3, "3"), (-3, "-3"), (0.75, "0.75"), (0.1, "0.1"),
        (123456, "123456"), (999999, "999999"), (1e6, "1e+06"), (1234567, "1.234567e+06"), (-2.5e6, "-2.5e+06"),
        (0.0001, "0.0001"), (0.00001, "1e-05"), (0.000123, "0.000123"), (1.5e-7, "1.5e-07"),
        (1e21, "1e+21"), (1e100, "1e+100"), (123456.5, "123456.5"), (Double.leastNonzeroMagnitude, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"), (0.30000000000000004, "0.30000000000000004"),
        (100, "100"), (2.5, "2.5"), (1e15, "1e+15"), (12345678901234567168.0, "1.2345678901234567e+19"),
        (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"), (Double.nan, "NaN"),
    ] as [(Double, String)])
    func floats_formatLikeGoStrconvG(_ v: Double, _ expected: String) {
        #expect(TextFormat.formatFloat(v) == expected)
    }

    /// Any finite double prints as digits that parse back to it exactly, in the
    /// shortest form (no trailing zeros in the mantissa).
    @Test func randomDoubles_roundTrip() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let v = Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF) * (Bool.random() ? 1 : -1)
            let text = TextFormat.formatFloat(v)
            #expect(Double(text) == v, "\(v) printed as \(text)")
            let mantissa = text.split(separator: "e").first ?? ""
            #expect(!mantissa.contains(".") || !mantissa.hasSuffix("0"), "\(text)")
        }
    }

    /// The short-decimal fast path prints what the general path prints: every decimal of
    /// one to seven places around the range's edges and at random, their neighbours one
    /// ulp away, and random doubles in the range, positive and negative.
    @Test func shortDecimals_printAsTheGeneralPathDoes() {
        func general(_ v: Double) -> String {
            var out: [UInt8] = []
            TextFormat.appendShortest(v, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        var values: [Double] = [1e-4, 0.1, 0.2, 0.3, 0.1 + 0.2, 0.5, 1.5, 2.675, 123.456, 999999.5, 999999.999999, 999999.9999999999,
                                0.00010000000000000002, 0.00015, 0.000123456, 1.0000001, Double.leastNonzeroMagnitude, 1e-5, 1e6 - 0.1, 0.30000000000000004]
        var rng = SystemRandomNumberGenerator()
        for places in 1...7 {
            let scale = (0..<places).reduce(1.0) { x, _ in x * 10 }
            for _ in 0..<3_000 {
                let m = Double(UInt64.random(in: 1...UInt64(1e6 * scale), using: &rng))
                values.append(m / scale)
            }
            for m in [1.0, 9, 10, 11, 99, 100, 101] { values.append(m / scale) }
        }
        for _ in 0..<20_000 { values.append(Double.random(in: 1e-4..<1e6, using: &rng)) }
        values += values.flatMap { [$0.nextUp, $0.nextDown] }
        for v in values where v != v.rounded(.towardZero) {
            for x in [v, -v] { #expect(TextFormat.formatFloat(x) == general(x), "\(x)") }
        }
    }

    @Test func labelValues_escapeBackslashQuoteAndNewlineOnly() {
        var out: [UInt8] = []
        Array("a\\b\"c\nd\te".utf8).withUnsafeBytes { TextFormat.appendLabelValue($0, to: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "a\\\\b\\\"c\\nd\te")
    }

    @Test func help_escapesBackslashAndNewlineButNotQuotes() {
        var out: [UInt8] = []
        Array("a\\b\"c\nd".utf8).withUnsafeBytes { TextFormat.appendHelp($0, to: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "a\\\\b\"c\\nd")
    }
}
