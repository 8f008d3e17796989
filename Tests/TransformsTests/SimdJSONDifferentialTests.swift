import CSimdJSON
import Foundation
import Fuzzing
import Logging
import Pipeline
import Synthetic
import Testing
import TestSupport
@testable import Transforms

/// `parser: simdjson` must decode every input exactly as `parser: jansson` does:
/// the same samples (type, origin, value bits, name, help, labels in order,
/// buckets, quantiles, epsilons, exemplar) and the same drops with the same notes.
@Suite struct SimdJSONDifferentialTests {
    /// A fresh pair per call: tests run in parallel, a decoder's worker slot may not.
    static func check(_ elements: [[UInt8]], _ comment: Comment? = nil) {
        let difference = ParserDifferential().difference(elements)
        #expect(difference == nil, "\(comment ?? "")\n\(difference ?? "")")
    }

    /// One call decodes the whole batch: fallbacks keep their place in the order, each
    /// array is held to max_samples_per_payload on its own, other spellings of a type
    /// fall back, and an element too large is jansson's to drop.
    @Test func aBatchMixingFastAndFallback_decodesAlike_inOrder() {
        let array = "[" + (0..<10_000).map { #"{"type":"gauge","name":"g","value":\#($0)}"# }.joined(separator: ",") + "]"
        let elements = [
            #"{"type":"gauge","name":"g","value":1}"#,
            #"{"type":"Gauge","name":"g","value":2}"#,                                  // another spelling: jansson
            array, array,                                                                // each at the limit
            #"{"type":"gauge","name":"g","value":3,"exemplar":{"labels":{},"value":1}}"#, // an exemplar: jansson
            #"{"type":"gauge","name":"g","value":"#,                                     // invalid: jansson drops it
            #"{"type":"gauge","name":"g","value":4}"#,
        ].map { Array($0.utf8) } + [Array(repeating: 0x20, count: (1 << 20) + 1)]         // too large: jansson drops it
        let d = ParserDifferential()
        #expect(d.difference(elements) == nil)
        #expect(d.fallbacks == 4, "the two arrays and the plain gauges take the fast path")
    }

    @Test func decoderTable_decodesAlike() {
        for c in JSONDecodeTransformTests.cases { Self.check([Array(c.payload.utf8)], "\(c.payload)") }
    }

    /// simdjson parses an element in place, reading up to 64 bytes of the next one as
    /// padding: what follows must never complete, extend or end the element before it.
    @Test(arguments: [
        [#"{"type":"counter","name":"a","value":1"#, "}"],
        [#"{"type":"counter","name":"a","value":12"#, #"3}"#],
        [#"{"type":"counter","name":"a","value":1}"#, #",{"type":"counter","name":"b","value":2}]"#],
        [#"[{"type":"counter","name":"a","value":1}"#, "]"],
        [#"{"type":"counter","name":"a","value":1,"labels":{"k":"v"#, #""}}"#],
        [#"{"type":"counter","name":"a","value":1}"#, #"{"type":"counter","name":"b","value":2}"#],
        [#"{"type":"counter","name":"a","value":1} "#, String(repeating: " ", count: 100)],
        [#"{"type":"counter","name":"a","value":1}"#, "\u{0}" + #"{"type":"counter","name":"b","value":2}"#],
    ])
    func elementParsedInPlace_ignoresTheBytesAfterIt(_ elements: [String]) {
        // The next element padded past 64 bytes (JSON whitespace): the first is parsed in place.
        let padded = [elements[0], elements[1] + String(repeating: " ", count: 80)]
        Self.check(padded.map { Array($0.utf8) }, "\(padded)")
    }

    @Test func syntheticMix_decodesAlike_andTakesTheFastPath() {
        let elements = SyntheticPayloads(series: 2_000, samplesPerElement: 1).elements()
        let batched = SyntheticPayloads(series: 500, samplesPerElement: 7).elements()
        Self.check(Array(elements.prefix(5_000)))
        Self.check(Array(batched.prefix(500)))
        let d = ParserDifferential()
        #expect(d.difference(Array(elements.prefix(5_000)) + Array(batched.prefix(500))) == nil)
        #expect(d.fallbacks == 0, "every well-formed synthetic element took the fast path")
    }

    /// Strings without escapes are read in place, eight bytes at a time: every length and
    /// every place of a quote or backslash within a word decodes as jansson does, on the fast path.
    @Test func strings_readInPlace_decodeAlike_atEveryLengthAndEscapePosition() {
        var elements: [[UInt8]] = []
        for length in 0...20 {
            let plain = String((0..<length).map { Character(UnicodeScalar(UInt8(0x61 + $0 % 26))) })
            var values = [plain]
            for at in 0...length {
                let head = String(plain.prefix(at)), tail = String(plain.dropFirst(at))
                values += [head + #"\""# + tail, head + #"\\"# + tail, head + #"\n"# + tail, head + #"\u00e9"# + tail, head + "é" + tail]
            }
            for v in values {
                let key = length == 0 ? "k" : String(plain.prefix(length))
                elements.append(Array(#"{"type":"gauge","name":"n","value":1,"labels":{"\#(key)":"\#(v)","z\#(v)":"x"},"help":"\#(v)"}"#.utf8))
            }
        }
        let d = ParserDifferential()
        #expect(d.difference(elements) == nil)
        #expect(d.fallbacks == 0)
    }

    /// A NUL fails the document on the fast path, which jansson then rejects: a NUL byte
    /// (stage 1 refuses control characters in strings) or a `\u0000` escape.
    @Test(arguments: [
        (#"{"type":"gauge","name":"a","value":1,"labels":{"b":"x\u0000"}}"#, true),
        (#"{"type":"gauge","name":"a","value":1,"labels":{"b\u0000":"x"}}"#, true),
        (#"{"type":"gauge","name":"a","value":1,"labels":{"b":"x\\u0000"}}"#, false),
        ("{\"type\":\"gauge\",\"name\":\"a\",\"value\":1,\"help\":\"h\u{0}\"}", true),
        ("{\"type\":\"gauge\",\"name\":\"a\",\"value\":1,\"labels\":{\"b\u{0}\":\"x\"}}", true),
    ])
    func nul_fallsBack(_ payload: String, fallsBack: Bool) {
        let d = ParserDifferential()
        #expect(d.difference([Array(payload.utf8)]) == nil, "\(payload)")
        #expect((d.fallbacks == 1) == fallsBack, "\(payload)")
    }

    @Test(arguments: [
        #"{"type":"counter","name":"a","value":-0}"#,
        #"{"type":"gauge","name":"a","value":100000000000000000000}"#,
        #"{"type":"gauge","name":"a","value":-18446744073709551616}"#,
        #"{"type":"gauge","name":"a","value":1.7976931348623157e308}"#,
        #"{"type":"gauge","name":"a","value":4.9e-324}"#,
        #"{"type":"gauge","name":"a","value":1e-400}"#,
        #"{"type":"Gauge","name":"a","value":1,"labels":{"b":"x","a":"y","c":"\u00e9\ud83d\ude00"}}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"b":"x","b":"y"}}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"b":"\ud800"}}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"b\u0000":"x"}}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"b":"x\u0000"}}"#,
        #"{"type":"gauge","name":"a","value":1,"help":"h\u0000"}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"b":"x\\u0000"}}"#,
        "{\"type\":\"gauge\",\"name\":\"a\",\"value\":1,\"labels\":{\"b\":\"x\u{0}y\"}}",
        "{\"type\":\"gauge\",\"name\":\"a\",\"value\":1}\u{0}",
        #"{"type":"gauge","name":"a","value":1,"extra":{"a":1,"a":2}}"#,
        #"{"type":"gauge","name":"a","value":1} x"#,
        // A string value followed by `:` (make fuzz-diff, minimised): simdjson skips a value left
        // unconsumed by bracket depth alone and would take the rest as more fields.
        #"{"type":"gauge","name":"","value":0,"labels":{"":"":}}}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"b":"x":"y","c":"z"}}"#,
        #"{"type":"gauge","name":"a":"n","value":1}"#,
        // The type is read, not kept: escaped, followed by `:`, not a string, too long, with a NUL.
        #"{"type":"c\u006funter","name":"a","value":1}"#,
        #"{"type":"gauge":"x","name":"a","value":1}"#,
        #"{"type":1,"name":"a","value":1}"#,
        #"{"type":"histogramx","name":"a","value":1}"#,
        #"{"type":"gauge\u0000","name":"a","value":1}"#,
        #"{"name":"a","value":1,"type":"summary"}"#,
        // Keys told apart by their raw bytes: near misses and escaped spellings of the known ones.
        #"{"typ":"gauge","type":"gauge","name":"a","value":1}"#,
        #"{"types":"gauge","name":"a","value":1}"#,
        #"{"type":"gauge","nam\u0065":"a","value":1}"#,
        #"{"type":"gauge","name":"a","valu":1,"value":1}"#,
        #"{"type":"gauge","name":"a","value":1,"labelss":{}}"#,
        #"{"type":"histogram","name":"a","value":1,"bucket":[1],"buckets":[1]}"#,
        #"{"type":"histogram","name":"a","value":1,"bucketsx":[1]}"#,
        #"{"type":"summary","name":"a","value":1,"quantile":[0.5],"epsilons":[0.1]}"#,
        #"{"type":"summary","name":"a","value":1,"quantiles":[0.5],"epsilon":[0.1]}"#,
        #"{"type":"summary","name":"a","value":1,"quantilesx":[0.5],"epsilonsx":[0.1]}"#,
        #"{"type":"summary","name":"a","value":1,"quantiles":[0.5],"epsilons":[0.1],"help":"h","hel":"x"}"#,
        // Numbers: not a number, long tokens with and without whitespace after them.
        #"{"type":"gauge","name":"a","value":"1"}"#,
        #"{"type":"gauge","name":"a","value":true}"#,
        #"{"type":"gauge","name":"a","value":1.0000000000000000001}"#,
        #"{"type":"gauge","name":"a","value":1.00000000000000001                 }"#,
        #"{"type":"histogram","name":"a","value":1,"buckets":[1, 2 ,"3"]}"#,
        // Repeated label names longer than a word (compared eight bytes at a time), and near misses.
        #"{"type":"gauge","name":"a","value":1,"labels":{"abcdefghijk":"x","abcdefghijk":"y"}}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"abcdefghijk":"x","abcdefghijK":"y","abcdefgh":"z","abcdefgH":"w"}}"#,
        #"{"type":"gauge","name":"a","value":1}   "#,
        #" [ {"type":"gauge","name":"a","value":1} , {"type":"counter","name":"b","value":2,"help":""} ] "#,
        #"[]"#,
        #"[1]"#,
        #"{"type":"histogram","name":"h","value":1,"buckets":[]}"#,
        #"{"type":"histogram","name":"h","value":1,"buckets":[1,2,1e308,-0]}"#,
        #"{"type":"summary","name":"s","value":1,"quantiles":[0.5],"epsilons":[0.05,0.01]}"#,
        #"{"type":"counter","name":"a","value":1,"exemplar":{"labels":{"t":"x"}}}"#,
        #"{"type":"counter","name":"a","value":1,"labels":[]}"#,
        #"{"type":"counter","name":"a","value":1,"labels":{"n":1.5,"b":true}}"#,
        #"{"type":"counter","name":"a\"\\\/\b\f\n\r\t","value":1}"#,
        "{\"type\":\"counter\",\"name\":\"a\",\"value\":1,\"labels\":{\"x\":\"\u{FF}\"}}",
    ])
    func edgeCases_decodeAlike(_ payload: String) {
        Self.check([Array(payload.utf8)], "\(payload)")
    }

    @Test func fuzzCorpus_decodesAlike() throws {
        let dir = packageRoot.appendingPathComponent("Tests/Fixtures/fuzz-corpus")
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() {
            let data = try Data(contentsOf: dir.appendingPathComponent(file))
            let difference = data.withUnsafeBytes { ParserDifferential().difference($0) }
            #expect(difference == nil, "\(file)\n\(difference ?? "")")
        }
    }
}

/// The C parser's reused buffers: kept through a backlog drain's mix of full and small
/// batches (regrowing them mapped and faulted in fresh pages each time), given back once
/// 32 batches in a row were much smaller than them.
@Suite struct SimdJSONParserBufferTests {
    let limits = psg_simd_limits(max_samples: 100_000, max_labels: 64, max_name: 1024, max_label_name: 1024, max_label_value: 4096,
                                 max_help: 4096, max_buckets: 256, max_quantiles: 32)

    func decode(_ parser: SimdJSONParser, _ elements: [String]) {
        var p = PayloadBatch()
        for e in elements { p.append(Array(e.utf8), origin: 0) }
        var out = SampleBatch()
        parser.decode(p, maxPayload: 1 << 20, limits: limits, into: &out) { _, _, _ in Issue.record("fell back") }
        #expect(out.records.count == elements.count)
    }

    @Test func buffers_areKeptThrough31SmallBatches_andAFullOneBetween_andGoBackAtThe32nd() {
        let parser = SimdJSONParser()
        let value = String(repeating: "v", count: 1000)
        let full = (0..<2000).map { #"{"type":"gauge","name":"g","value":\#($0),"labels":{"a":"\#(value)"}}"# }   // 2 MB of strings
        let small = [#"{"type":"gauge","name":"g","value":1}"#]
        decode(parser, full)
        let held = parser.heldBytes
        #expect(held > 2 << 20)
        for _ in 0..<31 { decode(parser, small) }
        #expect(parser.heldBytes == held, "kept through 31 much smaller batches")
        decode(parser, full)
        for _ in 0..<31 { decode(parser, small) }
        #expect(parser.heldBytes == held, "a full batch between starts the count again")
        decode(parser, small)
        #expect(parser.heldBytes < 64 << 10, "given back at the 32nd small batch in a row: \(parser.heldBytes) bytes held")
    }
}
