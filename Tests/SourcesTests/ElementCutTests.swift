import Pipeline
@testable import Redis
import Testing

/// `ElementCut` on RESP streams fed in every chunk size: what passes is byte for byte the
/// stream with each oversized array element replaced by its stand-in.
@Suite struct ElementCutTests {
    static let limit = 70_000

    static func bulk(_ b: [UInt8]) -> [UInt8] { Array("$\(b.count)\r\n".utf8) + b + [13, 10] }
    static func standIn(_ b: [UInt8]) -> [UInt8] {
        bulk(OversizedElement.header(size: b.count) + b.prefix(OversizedElement.kept))
    }
    static let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
    static let small = Array("{\"type\":\"counter\",\"name\":\"c_total\",\"value\":1}".utf8)
    static let edge = [UInt8](repeating: 65, count: limit)

    /// (stream, what hiredis must be fed)
    static let cases: [(String, [UInt8], [UInt8])] = [
        ("a pop: the big element cut, the others whole",
         Array("*3\r\n".utf8) + bulk(small) + bulk(big) + bulk(small),
         Array("*3\r\n".utf8) + bulk(small) + standIn(big) + bulk(small)),
        ("an element of exactly the limit passes", Array("*1\r\n".utf8) + bulk(edge), Array("*1\r\n".utf8) + bulk(edge)),
        ("a top-level bulk (BLMOVE's element)", bulk(big), standIn(big)),
        ("BLMPOP's nested reply, then a top-level bulk after the array",
         Array("*2\r\n".utf8) + bulk(Array("queue".utf8)) + Array("*2\r\n".utf8) + bulk(big) + bulk(small) + bulk(big),
         Array("*2\r\n".utf8) + bulk(Array("queue".utf8)) + Array("*2\r\n".utf8) + standIn(big) + bulk(small) + standIn(big)),
        ("nulls, empty arrays, statuses, errors and integers between",
         Array("+OK\r\n:5\r\n$-1\r\n*-1\r\n*0\r\n-ERR no\r\n*4\r\n$-1\r\n:1\r\n$0\r\n\r\n".utf8) + bulk(big) + bulk(big),
         Array("+OK\r\n:5\r\n$-1\r\n*-1\r\n*0\r\n-ERR no\r\n*4\r\n$-1\r\n:1\r\n$0\r\n\r\n".utf8) + standIn(big) + standIn(big)),
        ("two pipelined pops", Array("*1\r\n".utf8) + bulk(big) + Array("*1\r\n".utf8) + bulk(big),
         Array("*1\r\n".utf8) + standIn(big) + Array("*1\r\n".utf8) + standIn(big)),
    ]

    @Test(arguments: [1, 2, 3, 7, 4096, 1 << 30])
    func everyChunkSize(chunk: Int) throws {
        for (name, stream, expected) in Self.cases {
            var cut = ElementCut(limit: Self.limit)
            var fed: [UInt8] = []
            var i = 0
            while i < stream.count {
                let end = min(stream.count, i + chunk)
                try stream[i..<end].withUnsafeBytes { c in try cut.feed(c) { fed += $0 } }
                i = end
            }
            #expect(fed == expected, "\(name), chunks of \(chunk)")
        }
    }

    /// A raised limit (a shard state's GET) applies from the next header; the walk goes on.
    @Test func theLimitRaisedBetweenReplies_passesTheNextWhole() throws {
        var cut = ElementCut(limit: Self.limit)
        var fed: [UInt8] = []
        try (Array("*1\r\n".utf8) + Self.bulk(Self.big)).withUnsafeBytes { c in try cut.feed(c) { fed += $0 } }
        cut.limit = .max
        try Self.bulk(Self.big).withUnsafeBytes { c in try cut.feed(c) { fed += $0 } }
        cut.limit = Self.limit
        try Self.bulk(Self.big).withUnsafeBytes { c in try cut.feed(c) { fed += $0 } }
        #expect(fed == Array("*1\r\n".utf8) + Self.standIn(Self.big) + Self.bulk(Self.big) + Self.standIn(Self.big))
    }

    @Test func theStandIn_readsBackAsTheElementsSizeAndFirstBytes() throws {
        let s = OversizedElement.header(size: Self.big.count) + Self.big.prefix(OversizedElement.kept)
        let parsed = s.withUnsafeBytes { b in OversizedElement.parse(b).map { ($0.size, Array($0.prefix)) } }
        #expect(parsed?.0 == Self.big.count && parsed?.1 == Array(Self.big.prefix(OversizedElement.kept)))
        for notOne in [Self.small, [0], OversizedElement.marker, OversizedElement.marker + Array("12".utf8), OversizedElement.marker + [0, 1]] {
            #expect(notOne.withUnsafeBytes { OversizedElement.parse($0) } == nil)
        }
    }

    @Test func aHeaderLineWithoutEnd_isAProtocolViolation() {
        var cut = ElementCut(limit: Self.limit)
        let line = [UInt8](repeating: 43, count: ElementCut.longestLine + 1)
        #expect(throws: RedisError.self) { try line.withUnsafeBytes { try cut.feed($0) { _ in } } }
    }
}
