import Foundation
import Pipeline
import Testing

/// `jsonEscape`: what JSON needs escaped, nothing else, read back by an independent decoder;
/// and the cut at `limit`, never inside an escape or a character.
@Suite struct JSONEscapeTests {
    static func decoded(_ escaped: String) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(("\"" + escaped + "\"").utf8), options: .fragmentsAllowed)) as? String
    }

    @Test(arguments: [
        ("plain", "plain"),
        ("a\"b\\c", #"a\"b\\c"#),
        ("line\nnext", #"line\nnext"#),
        ("\u{01}\t\u{1f}", #"\u0001\u0009\u001f"#),
        ("é✓😀", "é✓😀"),
        ("", ""),
    ])
    func escapes_andReadsBack(_ input: String, _ expected: String) {
        #expect(jsonEscape(input) == expected)
        #expect(Self.decoded(jsonEscape(input)) == input)
    }

    @Test(arguments: [
        ("abcdef", 4, "abcd"),
        ("ab\u{01}", 7, "ab"),          // the escape does not fit whole
        ("ab\u{01}", 8, #"ab\u0001"#),
        ("a\"", 2, "a"),
        ("a✓b", 3, "a"),               // ✓ is 3 bytes: not cut in the middle
        ("a✓b", 4, "a✓"),
        ("😀", 3, ""),
        ("x", 0, ""),
    ])
    func cutsAtTheLimit_betweenEscapesAndCharacters(_ input: String, _ limit: Int, _ expected: String) {
        let out = jsonEscape(input, limit: limit)
        #expect(out == expected)
        #expect(out.utf8.count <= limit)
        #expect(Self.decoded(out) != nil)
    }

    @Test func aHostileLetter_isCutToItsLimit() {
        let out = jsonEscape(String(repeating: "\u{01}", count: 60_000), limit: 64 * 1024)
        #expect(out.utf8.count <= 64 * 1024 && out.utf8.count > 64 * 1024 - 6)
        #expect(Self.decoded(out)?.unicodeScalars.allSatisfy { $0 == "\u{01}" } == true)
    }
}
