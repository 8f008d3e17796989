import Testing
@testable import Pipeline

/// RFC 4648's test vectors, both ways (basic auth, OTLP bytes attributes).
@Suite struct Base64Tests {
    @Test(arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
                      ("foobar", "Zm9vYmFy"), ("gw:pass", "Z3c6cGFzcw==")])
    func rfc4648Vectors(plain: String, encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.decode(encoded.utf8) == Array(plain.utf8))
    }

    @Test func decode_refusesOtherCharacters_andTakesAllBytes() {
        #expect(Base64.decode("Zm9v!".utf8) == nil)
        #expect(Base64.decode("Zm9vYg".utf8) == Array("foob".utf8), "padding is optional")
        let all = (0...255).map(UInt8.init)
        #expect(Base64.decode(Base64.encode(all).utf8) == all)
        #expect(Base64.encode([0xfb, 0xff]) == "+/8=")
    }
}
