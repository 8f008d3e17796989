import Pipeline
import Testing
import TestSupport
@testable import Aggregation

@Suite struct SeriesKeyTests {
    static let cases: [(labels: [(String, String)], key: String)] = [
        ([], ""),
        ([("a", "1")], #"a="1""#),
        ([("b", "2"), ("a", "1")], #"a="1",b="2""#),                       // sorted by name
        ([("ab", "2"), ("a", "1"), ("b", "3")], #"a="1",ab="2",b="3""#),   // a prefix sorts first
        ([("a", ""), ("b", "2")], #"b="2""#),                               // an empty value is no label
        ([("p", "a\\b\"c\nd")], #"p="a\\b\"c\nd""#),                        // escaped as the page escapes
        ([("z", String(repeating: "\"", count: 300)), ("y", "x")], #"y="x",z=""# + String(repeating: #"\""#, count: 300) + #"""#),
    ]

    @Test(arguments: cases.indices)
    func key_isTheSortedEscapedLabelText(_ i: Int) {
        let (labels, expected) = Self.cases[i]
        let batch = sampleBatch([TestSample(.gauge, "g", 1, labels: labels)])
        var order: [Int] = [], buffer: [UInt8] = []
        let n = batch.samples.bytes.withUnsafeBytes { arena in
            SeriesKey.write(batch.samples.records[0], batch: batch.samples, arena: arena, order: &order, into: &buffer)
        }
        #expect(String(decoding: buffer[0..<n], as: UTF8.self) == expected)
    }
}
