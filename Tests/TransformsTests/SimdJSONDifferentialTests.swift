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
        #"{"type":"histogram","name":"h","value":12.5,"buckets":[0.1,0.5,1],"counts":[3,5,1,2]}"#,
        #"[{"type":"histogram","name":"h","value":1,"buckets":[1],"counts":[1,0]},{"type":"counter","name":"c","value":1}]"#,
        #"{"type":"histogram","name":"h","value":1,"counts":[1,"x"]}"#,
        #"{"counts":[2,1e0,0.5,-1],"type":"histogram","name":"h","value":1,"buckets":[1,2,3]}"#,
        #"{"type":"counter","name":"c","value":1,"counts":[1,2]}"#,
        #"{"type":"histogram","name":"h","value":1,"counts":null}"#,
        #"{"type":"histogram","name":"h","value":1,"counts":[]}"#,
        #"{"type":"histogram","name":"h","value":1,"counts":[1],"counts":[2]}"#,
        #"{"type":"histogram","name":"h","value":1,"counts":[0.1,0.2,0.3,1e16,1]}"#,
        #"{"type":"histogram","name":"h","value":1,"counts":[1],"exemplar":{"labels":{"t":"x"}}}"#,
        #"[{"type":"histogram","name":"h","value":1,"counts":[1]},{"type":"summary","name":"s","value":1,"counts":[1]}]"#,
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

    /// The scanner takes the shape senders write — single samples and arrays, the four
    /// types, help, empty labels and buckets, whitespace anywhere JSON allows it.
    @Test func scanner_takesTheCommonShape() {
        var elements = Array(SyntheticPayloads(series: 1_000, samplesPerElement: 1).elements().prefix(1_000))
        elements += Array(SyntheticPayloads(series: 1_000, samplesPerElement: 50).elements().prefix(20))
        elements += [
            #" { "type" : "counter" , "name" : "a" , "value" : 1 , "labels" : { } , "help" : "" }"# + "\t\r\n ",
            "{\"type\":\"histogram\",\n\"name\":\"h\",\t\"value\":1,\"buckets\":[ ],\"labels\":{\"k\":\"~\u{7F}\"}}",
            #"[ {"type":"gauge","name":"g","value":-0.5e-3} ,{"type":"summary","name":"s","value":0,"quantiles":[],"epsilons":[]} ]"#,
            // What the client libraries send: a histogram series as its bucket counts.
            #"[{"type":"counter","name":"c","value":50},"#
                + #"{"type":"histogram","name":"h","value":4950,"buckets":[10.0,50.0],"counts":[11,40,49],"labels":{"q":"a"}}]"#,
        ].map { Array($0.utf8) }
        let d = ParserDifferential()
        #expect(d.difference(elements) == nil)
        #expect(d.scanned == elements.count)
        #expect(d.fallbacks == 0)
    }

    /// Numbers the scanner converts (an integer of digits m ≤ 2^53 and a power of ten
    /// within 10^±22: one rounding) and those it leaves to On-Demand or jansson, all alike.
    @Test(arguments: [
        ("0", true), ("-0", true), ("-0.0", true), ("0.0", true), ("0e5", true), ("1", true), ("-1", true),
        ("9007199254740992", true), ("9007199254740993", false), ("123456789012345678", false),
        ("9999999999999999999", false), ("99999999999999999999", false), ("0.1", true), ("0.3", true), ("4.35", true),
        ("1e22", true), ("1e23", false), ("1e-22", true), ("1.5e-22", false), ("2.5E+3", true), ("1e-0", true),
        ("1e0005", true), ("1e00005", false), ("123.456e-10", true), ("0.000001", true), ("1e308", false),
        ("0.0000000000000000001", true), ("1.7976931348623157e308", false), ("4.9e-324", false),
        // Digits that would overflow the mantissa, the exponent or their counts: refused, never wrapped into a value.
        ("1e-0000", true), ("1e99999999999999999999999", false), ("1e-99999999999999999999999", false),
        (String(repeating: "9", count: 5_000), false), ("0." + String(repeating: "0", count: 5_000) + "1", false),
        ("18446744073709551617", false), ("184467440737095516170e-20", false),
    ])
    func scanner_numbers_decodeAlike(_ token: String, scanned: Bool) {
        let d = ParserDifferential()
        let payload = #"{"type":"gauge","name":"a","value":\#(token),"labels":{}}"#
        #expect(d.difference([Array(payload.utf8)]) == nil, "\(token)")
        #expect((d.scanned == 1) == scanned, "\(token)")
    }

    /// What is not JSON, or not the common shape: the scanner leaves it, and the element
    /// decodes (or is dropped) exactly as jansson decides.
    @Test(arguments: [
        "01", "1.", ".5", "-", "1e", "1e+", "+1", "--1", "1.e5", "0x10", "Infinity", "NaN", "-NaN", "1.0e", "1f", "1 2", "1,",
    ])
    func scanner_invalidNumbers_decodeAlike(_ token: String) {
        let d = ParserDifferential()
        let payload = #"{"type":"gauge","name":"a","value":\#(token)}"#
        #expect(d.difference([Array(payload.utf8)]) == nil, "\(token)")
        #expect(d.scanned == 0, "\(token)")
    }

    @Test(arguments: [
        #"{"type":"gauge","name":"a","value":1,}"#,
        #"[{"type":"gauge","name":"a","value":1},]"#,
        #"[{"type":"gauge","name":"a","value":1} {"type":"gauge","name":"a","value":1}]"#,
        #"[[{"type":"gauge","name":"a","value":1}]]"#,
        #"{}"#, #"{"labels":{}}"#, #"{"type":"gauge","name":"a"}"#, #"{"type":"gauge","value":1}"#, #"{"name":"a","value":1}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"k":"v",}}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"k" "v"}}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"k":"v"}"#,
        #"{"type":"gauge","name":"a","value":1,"buckets":[1,]}"#,
        #"{"type":"gauge","name":"a","value":1,"buckets":[1 2]}"#,
        #"{"type":"gauge","name":"a","value":1,"buckets":{}}"#,
        #"{"type":"gauge","name":"a","value":1,"type":"gauge"}"#,
        #"{"type":"gauge","name":"a","value":1,"value":2}"#,
        #"{"type":"gauge","name":"a","value":1,"labels":{"k":"v"},"labels":{"k":"v"}}"#,
        #"{"type":"gauge","name":"a","value":1,"help":null}"#,
        #"{"type":"gauge","name":"a","value":1}{"type":"gauge","name":"a","value":1}"#,
        #"{"type":"gauge","name":"a","value":1}]"#,
        #"{'type':"gauge","name":"a","value":1}"#,
        "{\"type\":\"gauge\",\"name\":\"a\tb\",\"value\":1}",
        "{\"type\":\"gauge\",\"name\":\"a\",\"value\":1,\"labels\":{\"k\":\"\u{1F}\"}}",
        "\u{FEFF}{\"type\":\"gauge\",\"name\":\"a\",\"value\":1}",
        "{\"type\":\"gauge\",\"name\":\"a\",\"value\":1}\u{0C}",
    ])
    func scanner_notTheCommonShape_decodesAlike(_ payload: String) {
        Self.check([Array(payload.utf8)], "\(payload)")
    }

    /// UTF-8 in strings: every sequence RFC 3629 allows is taken by the scanner, at every
    /// place in and across an eight-byte word; every one it forbids (overlong, surrogate, above
    /// U+10FFFF, a lone or missing continuation byte) is left to the others, and all decode alike.
    @Test func scanner_utf8_decodesAlike() {
        let valid: [[UInt8]] = [[0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xEF, 0xBF, 0xBF], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80],
                                [0xE1, 0x80, 0x80], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xF3, 0xBF, 0xBF, 0xBF],
                                Array("é😀€".utf8)]
        let invalid: [[UInt8]] = [[0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x9F, 0xBF], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x8F, 0xBF, 0xBF],
                                  [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xFE], [0x80], [0xBF], [0xC2], [0xC2, 0x41],
                                  [0xE0, 0xA0], [0xE1, 0x80, 0x41], [0xF0, 0x90, 0x80], [0xF1, 0x80, 0x80, 0xC0], [0xC2, 0x80, 0x80]]
        func payload(_ text: [UInt8], at offset: Int) -> [UInt8] {
            let head = Array(#"{"type":"gauge","name":"a","value":1,"labels":{"k":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: offset)
            return head + text + Array(#"y"},"help":"h"#.utf8) + text + Array(#""}"#.utf8)
        }
        let d = ParserDifferential()
        for offset in 0...10 {
            for text in valid { #expect(d.difference([payload(text, at: offset)]) == nil, "\(text) at \(offset)") }
        }
        #expect(d.scanned == 11 * valid.count)
        for offset in 0...10 {
            for text in invalid { #expect(d.difference([payload(text, at: offset)]) == nil, "\(text) at \(offset)") }
        }
        #expect(d.scanned == 11 * valid.count, "no invalid sequence on the scanner")
    }

    /// Every prefix of a document is decoded alike — as the batch's last element (nothing
    /// after it to read) and followed by another: the scanner reads only inside the element.
    @Test func scanner_everyPrefix_decodesAlike() {
        let whole = #"[{"type":"histogram","name":"h_seconds","value":0.25,"labels":{"path":"/api/v1/x","code":"200"},"#
            + #""buckets":[0.005,0.1,1,1e1],"help":"Latency."},{"type":"summary","name":"s","value":-3,"quantiles":[0.5,0.99],"#
            + #""epsilons":[0.05,0.001]}]"#
        let bytes = Array(whole.utf8)
        let d = ParserDifferential()
        for n in 0...bytes.count {
            let prefix = Array(bytes.prefix(n))
            #expect(d.difference([prefix]) == nil, "\(String(decoding: prefix, as: UTF8.self))")
            #expect(d.difference([prefix, Array(#"{"type":"gauge","name":"g","value":1}"#.utf8)]) == nil)
        }
        // No proper prefix is a document: the scanner took the whole one twice, and the gauge after every prefix.
        #expect(d.scanned == 2 + bytes.count + 1)
    }

    /// Each limit at its value and one past it: the scanner holds it as On-Demand and jansson do.
    @Test func scanner_limits_decodeAlike() {
        func labels(_ n: Int) -> String { (0..<n).map { #""l\#($0)":"v""# }.joined(separator: ",") }
        func numbers(_ n: Int) -> String { (0..<n).map { "\($0)" }.joined(separator: ",") }
        let long = { (n: Int) in String(repeating: "a", count: n) }
        let payloads = [64, 65].map { #"{"type":"gauge","name":"a","value":1,"labels":{\#(labels($0))}}"# }
            + [1024, 1025].map { #"{"type":"gauge","name":"\#(long($0))","value":1}"# }
            + [1024, 1025].map { #"{"type":"gauge","name":"a","value":1,"labels":{"\#(long($0))":"v"}}"# }
            + [4096, 4097].map { #"{"type":"gauge","name":"a","value":1,"labels":{"k":"\#(long($0))"}}"# }
            + [4096, 4097].map { #"{"type":"gauge","name":"a","value":1,"help":"\#(long($0))"}"# }
            + [256, 257].map { #"{"type":"histogram","name":"a","value":1,"buckets":[\#(numbers($0))]}"# }
            + [257, 258].map { #"{"type":"histogram","name":"a","value":1,"counts":[\#(numbers($0))]}"# }
            + [32, 33].map { #"{"type":"summary","name":"a","value":1,"quantiles":[\#(numbers($0))],"epsilons":[\#(numbers($0))]}"# }
        let d = ParserDifferential()
        for p in payloads { #expect(d.difference([Array(p.utf8)]) == nil, "\(p.prefix(120))") }
        #expect(d.scanned == payloads.count / 2, "each limit's value on the scanner, one past it not")
    }

    /// Random decimals, both signs and a range of exponents: every one alike, most on the scanner.
    @Test func scanner_randomNumbers_decodeAlike() {
        var g = SystemRandomNumberGenerator()
        var elements: [[UInt8]] = []
        for _ in 0..<4_000 {
            let digits = String((0..<Int.random(in: 1...20, using: &g)).map { _ in Character(String(Int.random(in: 0...9, using: &g))) })
            let mantissa = digits.count > 1 && digits.first == "0" ? "1" + digits.dropFirst() : digits
            let dot = Int.random(in: 0...mantissa.count, using: &g)
            var token = (Bool.random(using: &g) ? "-" : "") + mantissa
            if dot > 0 && dot < mantissa.count {
                token = (token.hasPrefix("-") ? "-" : "") + mantissa.prefix(dot) + "." + mantissa.dropFirst(dot)
            }
            if Bool.random(using: &g) { token += "e\(Int.random(in: -30...30, using: &g))" }
            elements.append(Array(#"{"type":"gauge","name":"a","value":\#(token)}"#.utf8))
        }
        let d = ParserDifferential()
        #expect(d.difference(elements) == nil)
        #expect(d.scanned > elements.count / 3)
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
