import Pipeline
import Testing
import TestSupport
@testable import Aggregation

/// The series key (a family's label-name list number and the values) against the label
/// text it stands for: written from a sample, read back, parsed from a state file's text,
/// and ordered as that text orders.
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

    /// The key of one sample with schema number `schema`, and its names.
    static func key(_ labels: [(String, String)], schema: Int = 0) -> (key: [UInt8], names: [UInt8]) {
        let batch = sampleBatch([TestSample(.gauge, "g", 1, labels: labels)])
        var order: [Int] = [], buffer: [UInt8] = []
        let w = batch.samples.bytes.withUnsafeBytes { arena in
            batch.samples.labels.withUnsafeBufferPointer {
                SeriesKey.write(batch.samples.records[0], labels: $0, arena: arena, order: &order, into: &buffer)
            }
        }
        let start = buffer.withUnsafeMutableBytes { SeriesKey.prefix(schema, $0.baseAddress!) }
        return (Array(buffer[start..<w.valuesEnd]), Array(buffer[w.valuesEnd..<w.namesEnd]))
    }

    static func text(_ key: [UInt8], names: [UInt8]) -> String {
        key.withUnsafeBytes { k in
            names.withUnsafeBytes { n in
                let values = SeriesKey.split(k).values
                var out = [UInt8](repeating: 0, count: SeriesKey.textBound(values: values, names: n) + 1)
                let length = out.withUnsafeMutableBytes { SeriesKey.writeText(values: values, names: n, to: $0.baseAddress!) }
                return String(decoding: out[0..<length], as: UTF8.self)
            }
        }
    }

    @Test(arguments: cases.indices)
    func key_readsBackAsTheSortedEscapedLabelText(_ i: Int) {
        let (labels, expected) = Self.cases[i]
        let (key, names) = Self.key(labels, schema: 300)   // a two-byte schema number
        #expect(SeriesKey.split(key.withUnsafeBytes { UnsafeRawBufferPointer($0) }).schema == 300)
        #expect(Self.text(key, names: names) == expected)
        let parsed = SeriesKey.parse(text: Array(expected.utf8))
        #expect(parsed?.signature == names)
        #expect(parsed?.values == Array(key.dropFirst(2)))   // what follows the schema number
    }

    /// Label names are ordered bytewise, a prefix first: every pair of names of length
    /// 0–19 that differ at one position (or only in length), against the standard library.
    @Test func precedes_ordersNamesBytewise() {
        var names: [[UInt8]] = []
        for n in 0..<20 {
            let base = (0..<n).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            names.append(base)
            for at in 0..<n {
                for c: UInt8 in [0x30, 0x5F, 0x7A, 0xFF] { var v = base; v[at] = c; names.append(v) }
            }
        }
        for a in names {
            for b in names where a.count + b.count < 24 || a.count == b.count {
                let got = a.withUnsafeBytes { x in b.withUnsafeBytes { y in bytesPrecede(x, y) } }
                #expect(got == a.lexicographicallyPrecedes(b), "\(a) vs \(b)")
            }
        }
    }

    @Test func parse_refusesWhatIsNotLabelText() {
        for bad in [#"a"#, #"a="x"#, #"="x""#, #"a="x"b="y""#, #"a=x"#, #"a="x\""#] {
            #expect(SeriesKey.parse(text: Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    /// Keys order as their label text orders, bytewise — the page's series order.
    @Test func textPrecedes_ordersAsTheText() {
        let sets: [[(String, String)]] = [
            [("a", "x")], [("a", "x y")], [("a", "x!")], [("a", "x\"")], [("a", "xa")], [("a", "x\t")], [("a", "x\\")], [("a", "x\n")],
            [("a", "x"), ("b", "1")], [("a", "x"), ("c", "1")], [("b", "1")], [], [("a", "")], [("a", "x "), ("b", "0")],
        ]
        var lists: [[UInt8]] = []
        var table = ByteKeyTable()
        var keys: [[UInt8]] = [], texts: [String] = []
        for labels in sets {
            let names = Self.key(labels).names
            let schema = names.withUnsafeBytes { n in table.find(n, hash: hashBytes(n)) ?? table.insert(n, hash: hashBytes(n))! }
            if schema == lists.count { lists.append(names) }
            let key = Self.key(labels, schema: schema).key
            keys.append(key)
            texts.append(Self.text(key, names: names))
        }
        var scratch: ([UInt8], [UInt8]) = ([], [])
        for i in keys.indices {
            for j in keys.indices {
                let precedes = keys[i].withUnsafeBytes { a in
                    keys[j].withUnsafeBytes { b in SeriesKey.textPrecedes(a, b, schemas: table, scratch: &scratch) }
                }
                #expect(precedes == Array(texts[i].utf8).lexicographicallyPrecedes(Array(texts[j].utf8)), "\(texts[i]) < \(texts[j])")
            }
        }
    }

    /// Removing series renumbers the name lists still used and forgets the others (a sender
    /// churning label names does not grow a family's lists for ever); the page is the same.
    @Test func removingSeries_keepsOnlyTheNameListsInUse() {
        let store = MetricStore()
        var scratch: [UInt8] = []
        var samples: [TestSample] = []
        for i in 0..<50 { samples.append(TestSample(.counter, "c", 1, labels: [("n\(i)", "v"), ("path", "/\(i)")])) }
        samples.append(TestSample(.counter, "c", 2, labels: [("path", "/x")]))
        var batch = sampleBatch(samples)
        store.apply(&batch, scratch: &scratch)
        #expect(store.snapshot()[0].schemas.count == 51)
        let selector = try! SeriesSelector(parsing: #"c{path=~"/[0-9].*"}"#)
        #expect(store.delete(matching: [selector]).count == 50)
        let f = store.snapshot()[0]
        #expect(f.schemas.count == 1)
        #expect(f.withLabelText(0) { String(decoding: $0, as: UTF8.self) } == #"path="/x""#)
        var again = sampleBatch([TestSample(.counter, "c", 3, labels: [("path", "/x")]), TestSample(.counter, "c", 1, labels: [("n1", "v")])])
        store.apply(&again, scratch: &scratch)
        let g = store.snapshot()[0]
        #expect(g.seriesCount == 2 && g.values == [5, 1])
    }
}

extension SeriesKeyTests {
    /// The state file keeps label text (files move both ways between builds); a key that
    /// is not label text is skipped alone, the series after it keep their values.
    @Test func stateFile_keepsLabelText_andSkipsAKeyThatIsNot() {
        let store = MetricStore()
        var scratch: [UInt8] = []
        var batch = sampleBatch([TestSample(.counter, "c", 1, labels: [("b", "2"), ("a", "x\"y")]), TestSample(.counter, "c", 2, labels: []),
                                 TestSample(.counter, "c", 3, labels: [("a", "z")])])
        store.apply(&batch, scratch: &scratch)
        var state = store.captureState()
        #expect(state.families[0].series.map { String(decoding: $0.key, as: UTF8.self) } == [#"a="x\"y",b="2""#, "", #"a="z""#])
        state.families[0].series[0].key = Array(#"a="unterminated"#.utf8)
        let restored = MetricStore()
        restored.restore(state)
        let page = String(decoding: Exposition(store: restored, meta: { [] }).render(), as: UTF8.self)
        #expect(page.contains("c 2\n") && page.contains(#"c{a="z"} 3"#) && !page.contains("unterminated"))
        #expect(restored.seriesCount == 2)
    }
}
