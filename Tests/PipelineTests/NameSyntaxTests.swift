import Pipeline
import Testing

@Suite struct NameSyntaxTests {
    /// The bit-set classes against the regular expressions, byte by byte.
    @Test func everyByte_isClassifiedAsTheRegexSays() {
        func letter(_ c: UInt8) -> Bool { (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) }
        func digit(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) }
        func check(_ bytes: [UInt8], _ f: (UnsafeRawBufferPointer) -> Bool) -> Bool { bytes.withUnsafeBytes(f) }
        for c in UInt8.min...UInt8.max {
            let labelFirst = letter(c) || c == 0x5F, labelRest = labelFirst || digit(c)
            let metricFirst = labelFirst || c == 0x3A, metricRest = labelRest || c == 0x3A
            #expect(check([c], NameSyntax.isValidLabelName) == labelFirst, "label first byte \(c)")
            #expect(check([0x61, c], NameSyntax.isValidLabelName) == labelRest, "label byte \(c)")
            #expect(check([c], NameSyntax.isValidMetricName) == metricFirst, "metric first byte \(c)")
            #expect(check([0x61, c], NameSyntax.isValidMetricName) == metricRest, "metric byte \(c)")
        }
        #expect(!check([], NameSyntax.isValidLabelName))
        #expect(!check([], NameSyntax.isValidMetricName))
        // Long names are checked eight bytes at a time: every byte at every place of a word.
        for c in UInt8.min...UInt8.max {
            let labelRest = letter(c) || digit(c) || c == 0x5F, metricRest = labelRest || c == 0x3A
            for at in 1..<19 {
                var name = [UInt8](repeating: 0x61, count: 19)
                name[at] = c
                #expect(check(name, NameSyntax.isValidLabelName) == labelRest, "label byte \(c) at \(at)")
                #expect(check(name, NameSyntax.isValidMetricName) == metricRest, "metric byte \(c) at \(at)")
            }
        }
        #expect(NameSyntax.isValidMetricName("http_requests_total:rate5m"))
        #expect(!NameSyntax.isValidLabelName("a:b"))
    }
}
